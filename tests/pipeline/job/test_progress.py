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


def test_quiet_without_a_terminal_or_with_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = io.StringIO()
    with Progress(stream=plain) as progress:  # not a TTY
        assert not progress.enabled and progress.channel is None
    assert plain.getvalue() == ""
    tty = FakeTTY()
    monkeypatch.setattr(sys, "stdout", FakeTTY())
    with Progress(stream=tty, quiet=True) as progress:
        assert not progress.enabled and progress.channel is None
    with Progress(stream=tty) as progress:  # both terminals: on
        assert progress.enabled and progress.channel is not None
    monkeypatch.setattr(sys, "stdout", io.StringIO())  # stdout piped to a file: off
    with Progress(stream=tty) as progress:
        assert not progress.enabled


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
    assert format_line("khabar run", None, None, 75) == "khabar run  waiting for counts  1:15"
    line = format_line("khabar run", {"read": 12345, "written": 1}, 2310.4, 3725)
    assert line == (
        "khabar run  read 12,345  written 1  dead 0  duplicates 0  2,310 rec/s  1:02:05"
    )
