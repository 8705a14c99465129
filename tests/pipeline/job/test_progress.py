"""The live progress line: when it shows, and that its counts are live and exact."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from khabar.pipeline.job.progress import (
    CountProgress,
    Progress,
    ProgressChannel,
    count_progress,
    format_line,
)
from khabar.pipeline.job.runner import make_runner
from tests.conftest import ROOT


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def frames(stream: io.StringIO) -> list[str]:
    return [f.removesuffix("\x1b[K") for f in stream.getvalue().split("\r") if f]


def run_counted(progress: Progress, n: int, options: list[str] | None = None) -> None:
    """A small job with a read, a written and a dead-letter count (evens written, odds dead)."""
    opts = PipelineOptions(options or [])
    p = beam.Pipeline(runner=make_runner(opts), options=opts)
    nums = p | beam.Create(range(n)) | "Slow" >> beam.Map(lambda x: (time.sleep(0.001), x)[1])
    count_progress(nums, "CountRead", progress.channel, "read")
    evens = nums | "Evens" >> beam.Filter(lambda x: x % 2 == 0)
    odds = nums | "Odds" >> beam.Filter(lambda x: x % 2 == 1)
    count_progress(evens, "CountWritten", progress.channel, "written")
    count_progress(odds, "CountDead", progress.channel, "dead_letters")
    p.run().wait_until_finish()


def test_modes_terminal_log_lines_or_quiet() -> None:
    tty = FakeTTY()
    with Progress(stream=tty, quiet=True) as progress:
        assert not progress.enabled and progress.channel is None
    with Progress(stream=tty) as progress:  # a terminal: the redrawn line
        assert progress.enabled and progress.terminal and progress.channel is not None
    plain = io.StringIO()
    with Progress(stream=plain, log_seconds=0) as progress:  # a log, lines turned off
        assert not progress.enabled and progress.channel is None
    assert plain.getvalue() == ""
    with Progress(stream=plain, log_seconds=10) as progress:  # a log: plain lines
        assert progress.enabled and not progress.terminal and progress.channel is not None
    assert "khabar run: started" in plain.getvalue() and "\r" not in plain.getvalue()


def test_log_lines_when_not_a_terminal(tmp_path) -> None:
    """Piped or in a log file: a plain line every few seconds with the figures, the size
    of the input (percentage, ETA) and the UTC time; JSON with log_format="json"."""
    data = tmp_path / "in.jsonl"
    data.write_bytes(b"x" * 10_000)
    for log_format in ("text", "json"):
        stream = io.StringIO()
        with Progress(
            stream=stream, log_seconds=0.05, log_format=log_format, input_files=[str(data)]
        ) as progress:
            assert progress.total_bytes == 10_000
            run_counted(progress, 600)
            time.sleep(0.2)
        lines = stream.getvalue().splitlines()
        assert len(lines) >= 3 and "\r" not in stream.getvalue()
        if log_format == "json":
            records = [json.loads(line) for line in lines]
            assert records[0]["event"] == "started" and records[0]["input_bytes"] == 10_000
            last = records[-1]
            assert last["event"] == "progress" and last["read"] == 600
            assert last["written"] == 300 and last["dead_letters"] == 300
            assert "elapsed_s" in last and last["ts"].endswith("Z")
        else:
            assert lines[0].endswith("khabar run: started: 1 input file(s), 10 KB; "
                                     "progress every 0.05 s")
            assert "read 600" in lines[-1] and "written 300" in lines[-1]
            assert lines[-1][:4].isdigit() and "Z khabar run: " in lines[-1]


def test_line_shows_share_of_input_eta_and_phases() -> None:
    counts = {"read": 1234, "read_bytes": 2_100_000, "written": 0, "duplicates": 0,
              "dead_letters": 3}
    line = format_line("khabar run", counts, 29.4, 42, total_bytes=6_800_000, eta=93)
    assert line == (
        "khabar run  0:42  read 1,234 (2.1 of 6.8 MB, 31%)  dead 3  29 rec/s  ETA 1:33"
    )
    done = dict(counts, read=4000, read_bytes=6_800_000)
    assert format_line("khabar run", done, None, 60, 6_800_000).endswith("deduplicating")
    written = dict(done, written=3931, duplicates=69)
    line = format_line("khabar run", written, 1210, 235, 6_800_000)
    assert "written 3,931  duplicates 69  dead 3  1,210 rec/s" in line
    small = dict(counts, read=3, read_bytes=26_000)
    assert "read 3 (26 of 84 KB, 31%)  dead 3  0.4 rec/s" in format_line(
        "khabar run", small, 0.42, 9, total_bytes=84_000
    )
    assert "ETA" not in line and "deduplicating" not in line


def test_eta_from_the_bytes_read_per_second() -> None:
    progress = Progress(enabled=True, stream=FakeTTY())
    progress.total_bytes = 1000
    progress._started = 0.0
    assert progress.rate(0, 0.0, 0, 0) == (None, None)
    rate, byte_rate = progress.rate(50, 10.0, 0, 250)  # 250 bytes in 10 s
    assert rate == 5.0 and byte_rate == 25.0


def test_no_channel_means_no_counting_steps() -> None:
    def names(channel: ProgressChannel | None) -> set[str]:
        p = beam.Pipeline()
        nums = p | beam.Create([1, 2])
        count_progress(nums, "CountRead", channel, "read")
        return {t.unique_name for t in p.to_runner_api().components.transforms.values()}

    assert "CountRead" not in names(None)
    assert "CountRead" in names(ProgressChannel("t", "/nonexistent"))
    with pytest.raises(ValueError, match="unknown progress kind"):
        CountProgress(None, "nonsense")


def test_in_process_counts_are_live_and_exact() -> None:
    stream = FakeTTY()
    with Progress(enabled=True, stream=stream, interval=0.05) as progress:
        run_counted(progress, 600)
        time.sleep(0.15)
        assert progress.counts() == {
            "read": 600,
            "written": 300,
            "dead_letters": 300,
            "duplicates": 0,
            "read_bytes": 0,  # the elements are numbers, not raw records
        }
    shown = frames(stream)
    assert any("read 600" in f and "written 300" in f and "dead 300" in f for f in shown)
    assert any("rec/s" in f for f in shown)
    # frames were drawn while the job ran, not only at the end
    reads = [int(f.split("read ", 1)[1].split()[0].replace(",", "")) for f in shown if "read " in f]
    assert any(0 < n < 600 for n in reads), reads
    assert stream.getvalue().endswith("\r\x1b[K")  # the line is cleared for the summary


def test_worker_processes_report_through_the_spool_directory(tmp_path) -> None:
    stream = FakeTTY()
    with Progress(enabled=True, stream=stream, interval=0.05) as progress:
        channel = progress.channel
        assert channel is not None
        script = (
            "import sys, json\n"
            "from khabar.pipeline.job.progress import CountProgress, ProgressChannel\n"
            "c = ProgressChannel(**json.loads(sys.argv[1]))\n"
            "fn = CountProgress(c, 'duplicates', flush_seconds=0)\n"
            "fn.setup()\n"
            "for i in range(37):\n"
            "    list(fn.process(i))\n"
            "fn.finish_bundle(); fn.teardown()\n"
        )
        arg = json.dumps({"token": channel.token, "spool_dir": channel.spool_dir})
        done = subprocess.run(
            [sys.executable, "-c", script, arg], cwd=ROOT, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert progress.counts()["duplicates"] == 37
        time.sleep(0.15)
    assert any("duplicates 37" in f for f in frames(stream))


def test_multi_processing_runner_counts_through_files() -> None:
    with Progress(enabled=True, stream=FakeTTY(), interval=0.05) as progress:
        run_counted(
            progress,
            200,
            ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
        )
        counts = progress.counts()
    assert counts["read"] == 200 and counts["written"] == 100 and counts["dead_letters"] == 100


def test_unreachable_channel_degrades_to_elapsed_time_only(tmp_path) -> None:
    gone = ProgressChannel("no-such-run", str(tmp_path / "missing"))
    fn = CountProgress(gone, "read")
    fn.setup()
    assert list(fn.process("x")) == ["x"]  # passes elements through, counts nothing
    fn.finish_bundle()
    assert list(tmp_path.iterdir()) == []
    assert format_line("khabar run", None, None, 75) == "khabar run  1:15  waiting for counts"
    line = format_line("khabar run", {"read": 12345, "written": 1}, 2310.4, 3725)
    assert line == (
        "khabar run  1:02:05  read 12,345  written 1  duplicates 0  dead 0  2,310 rec/s"
    )
