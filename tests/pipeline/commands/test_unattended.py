"""Unattended runs (cron, containers, nohup): exit codes a scheduler can act on, a real
signal at a random moment, log lines when nobody watches, files khabar does not read."""

from __future__ import annotations

import hashlib
import io
import json
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import types
from pathlib import Path

import pytest

from khabar.pipeline.commands.run import stdin_input
from khabar.transforms.split import UnsupportedFormat, detect_format
from tests.conftest import ROOT, SEEDS, VENV_BIN, read_avro, run_khabar, write_news_corpus


def test_files_khabar_does_not_read_are_recognised() -> None:
    for name, head in [
        ("report.pdf", b"%PDF-1.7\n%\xe2\xe3"),
        ("data.csv", b"title,body,url\nx,y,z\n"),
        ("noext", b"%PDF-1.4"),
        ("photo.txt", b"\x89PNG\r\n\x1a\n\x00\x00"),
        ("blob", bytes(range(256)) * 2),
        ("sheet.xlsx", b"PK\x03\x04\x14\x00"),
    ]:
        with pytest.raises(UnsupportedFormat):
            detect_format(name, head)
    # text in UTF-16 (with or without BOM) has NUL bytes and is still text
    assert detect_format("a.txt", "سلام hello".encode("utf-16")) == "text"
    assert detect_format("noext", "hello world, news".encode("utf-16-le")) == "text"
    utf16 = (SEEDS / "text" / "004_yazd_library_utf16le.txt").read_bytes()[:4096]
    assert detect_format("x", utf16) == "text"
    # --format forces a format: the user knows better
    assert detect_format("data.csv", b"a,b", override="text") == "text"


def _dead_letter_inputs(folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.pdf").write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n")
    (folder / "table.csv").write_text("title,body,url\nx,y,https://e.x/1\n", encoding="utf-8")
    (folder / "blob.bin").write_bytes(bytes(range(256)) * 4)
    return [str(folder / n) for n in ("report.pdf", "table.csv", "blob.bin")]


def test_exit_codes_for_a_scheduler(tmp_path: Path) -> None:
    bad = _dead_letter_inputs(tmp_path / "in")
    args = [a for path in bad for a in ("--input", path)]
    only_bad = run_khabar("run", *args, "--output", str(tmp_path / "bad"))
    # nothing written and dead letters: non-zero, with the reason on stderr
    assert only_bad.returncode == 3, only_bad.stderr
    assert "no article written; all 3 record(s) dead letters" in only_bad.stderr
    dead = read_avro(tmp_path / "bad" / "dead_letter")
    assert sorted(d["error_type"] for d in dead) == ["UnsupportedFormat"] * 3
    assert {d["error_message"].split(" file:")[0] for d in dead} == {"PDF", "CSV", "binary"}
    assert read_avro(tmp_path / "bad" / "articles") == []

    good = str(SEEDS / "text" / "001_tabriz_metro.txt")
    mixed_args = ["run", "--input", good, "--input", bad[0], "--output", str(tmp_path / "mixed")]
    strict = run_khabar(*mixed_args, "--max-dead-letter-rate", "0.4")
    assert strict.returncode == 3, strict.stderr
    assert "dead-letter rate 50.0% (1 of 2) is above --max_dead_letter_rate 0.4" in strict.stderr
    assert "articles written         1" in strict.stdout  # the output is still complete
    # the same run allowed more dead letters passes; --overwrite replaces the output
    lenient = run_khabar(*mixed_args, "--overwrite", "--max_dead_letter_rate=0.5")
    assert lenient.returncode == 0, lenient.stderr

    # inspect NEW --against OLD: alerts are printed; --fail-on-alerts makes them an exit code
    against = ["inspect", str(tmp_path / "bad"), "--against", str(tmp_path / "mixed")]
    shown = run_khabar(*against)
    assert shown.returncode == 0 and "no articles in the new run" in shown.stdout
    failing = run_khabar(*against, "--fail-on-alerts")
    assert failing.returncode == 3
    assert "drift alert(s); exit 3 (--fail-on-alerts)" in failing.stderr
    same = run_khabar("inspect", str(tmp_path / "mixed"), "--against", str(tmp_path / "mixed"),
                      "--fail-on-alerts")
    assert same.returncode == 0, same.stdout


def test_stdin_input_and_limit(tmp_path: Path) -> None:
    data = (SEEDS / "jsonl" / "news.jsonl").read_bytes()
    runs = []
    for name in ("a", "b"):
        out = tmp_path / name
        done = subprocess.run(
            [str(VENV_BIN / "khabar"), "run", "--input", "-", "--output", str(out),
             "--limit", "5", "--quiet", "--emit_duplicates"],
            input=data, capture_output=True, timeout=300, cwd=ROOT,
        )
        assert done.returncode == 0, done.stderr
        assert b"--limit: the first 5 records;" in done.stdout
        summary = json.loads((out / "_SUMMARY.json").read_text())
        counts = summary["counts"]
        assert counts["records_in"] == 5 and summary["conservation"]["ok"]
        lines = [ln for ln in data.splitlines() if ln.strip()]
        assert counts["cut_by_limit"] == len(lines) - 5
        kinds = ("articles", "duplicates", "dead_letter")
        records = [r for kind in kinds for r in read_avro(out / kind)]
        positions = sorted(r.get("input_position") or r.get("position") for r in records)
        assert positions == [1, 2, 3, 4, 5]  # the first five lines, in input order
        assert all("khabar-stdin-" in (r["input_uri"]) for r in records)
        runs.append(sorted(r.get("id") or r["input_uri"] for r in read_avro(out / "articles")))
    assert runs[0] == runs[1]  # same bytes on stdin, same ids
    # the spooled copy of stdin (named by the digest of its bytes) is removed
    spooled = Path(tempfile.gettempdir()) / f"khabar-stdin-{hashlib.sha256(data).hexdigest()[:16]}"
    assert not spooled.exists()


def test_two_runs_reading_the_same_stdin_bytes_share_the_spooled_copy(monkeypatch) -> None:
    """The copy is named by the bytes' digest, so two runs fed the same bytes share it:
    the run that ends first must not remove it under the other (it did: the other run
    read a missing file and wrote one dead letter)."""
    data = f"same bytes {time.time_ns()}\n".encode()
    spooled = Path(tempfile.gettempdir()) / f"khabar-stdin-{hashlib.sha256(data).hexdigest()[:16]}"

    class Stdin(io.TextIOWrapper):
        def isatty(self) -> bool:
            return False

    def spool() -> stdin_input:
        monkeypatch.setattr(sys, "stdin", Stdin(io.BytesIO(data)))
        khabar = types.SimpleNamespace(input=["-"])
        entered = stdin_input(khabar).__enter__()
        assert khabar.input == [str(spooled)] == [entered.path]
        return entered

    first, second = spool(), spool()
    first.release()
    assert spooled.read_bytes() == data  # the second run still reads it
    first.release()  # idempotent
    third = spool()
    second.release()
    assert spooled.exists()
    third.release()
    assert not spooled.exists()  # the last run to end removes it
    none = stdin_input(types.SimpleNamespace(input=["x.jsonl"])).__enter__()
    assert none.path is None
    none.release()


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_at_a_random_moment(tmp_path: Path, signum: int) -> None:
    """A real `khabar run` subprocess gets SIGINT or SIGTERM at a random moment while it
    processes: one line, exit 130 or 143, no traceback, no temporary files, the output
    marked interrupted (inspect, cat and report say so), and a rerun refuses clearly."""
    corpus = tmp_path / "in"
    # 3,000 records: after the first records are read the run still has several seconds
    # to go (1,000 left about 3 s once entities were tagged in groups, shorter than the
    # signal's random delay)
    write_news_corpus(corpus, files=4, per_file=750)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [str(VENV_BIN / "khabar"), "run", "--input", str(corpus), "--output", str(out),
         "--progress-seconds", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    deadline = time.time() + 120
    while not any(" read " in ln for ln in lines) and time.time() < deadline:
        time.sleep(0.1)  # records are flowing: the models are loaded, the stages run
    delay = random.Random().uniform(0.0, 4.0)
    print(f"signal {signal.Signals(signum).name} {delay:.2f} s after the first records")
    time.sleep(delay)
    assert proc.poll() is None, "the job finished before the signal"
    proc.send_signal(signum)
    proc.wait(timeout=120)
    reader.join(timeout=10)  # stderr is read by the reader thread only
    stdout = proc.stdout.read()
    assert proc.returncode == 128 + signum, (proc.returncode, "".join(lines), stdout)
    text = "".join(lines)
    assert "Traceback" not in text and "Error" not in text, text
    others = [ln for ln in lines if " khabar run: " not in ln[:40]]  # not progress lines
    name = signal.Signals(signum).name
    assert len(others) == 1, "".join(lines[-6:])
    assert others[0].startswith(f"khabar run: interrupted by {name}"), lines
    assert stdout == ""
    leftovers = [p for p in out.rglob("*") if "beam-temp" in str(p) or ".tmp" in p.parts]
    assert leftovers == []
    summary = json.loads((out / "_SUMMARY.json").read_text())
    assert summary["status"] == "interrupted" and summary["signal"] == name

    inspect = run_khabar("inspect", str(out))
    assert inspect.returncode == 0 and inspect.stdout.startswith("INTERRUPTED run:")
    cat = run_khabar("cat", str(out))
    assert cat.returncode != 0 and "INTERRUPTED run" in cat.stderr
    report = run_khabar("report", str(out))
    assert report.returncode == 0 and "INTERRUPTED run" in report.stderr
    assert "INTERRUPTED" in (out / "report.html").read_text(encoding="utf-8")
    rerun = run_khabar("run", "--input", str(corpus), "--output", str(out))
    assert rerun.returncode == 2
    assert f"holds a run interrupted by {name}" in rerun.stderr
    assert "--overwrite" in rerun.stderr and len(rerun.stderr.strip().splitlines()) == 1


def test_version_and_did_you_mean() -> None:
    from khabar.pipeline.cli import main
    from khabar.schemas.version import PIPELINE_VERSION

    version = run_khabar("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"khabar {PIPELINE_VERSION}"
    typo = run_khabar("run", "--input", "seeds", "--ouptut", "out/x")
    assert typo.returncode == 2 and typo.stdout == ""
    assert typo.stderr.strip().endswith("; did you mean --output?")
    assert main(["inspec", "x"]) == 2
    wrong = run_khabar("inspect", "--jsn", "x")
    assert "did you mean --json?" in wrong.stderr and len(wrong.stderr.splitlines()) == 1
    far = run_khabar("run", "--input", "seeds", "--output", "out/x", "--zzzz")
    assert far.returncode == 2 and "did you mean" not in far.stderr


def test_duplicate_reasons_from_the_summary_and_partitioned_outputs(
    seeds_run: dict, tmp_path: Path
) -> None:
    """Without --emit_duplicates, inspect and report take the duplicate reasons from
    _SUMMARY.json; cat, inspect and report read streaming (date=...) partitions too."""
    import shutil

    from khabar.pipeline.commands.cat import find_files
    from khabar.pipeline.commands.inspect import format_report, inspect_paths
    from khabar.pipeline.commands.report import collect, duplicate_reasons

    written = inspect_paths([str(seeds_run["out"])])
    assert written["duplicates_by_reason_from"] == "written duplicates"
    run = tmp_path / "run"
    shutil.copytree(seeds_run["out"], run)
    shutil.rmtree(run / "duplicates")  # as if the run had no --emit_duplicates
    report = inspect_paths([str(run)])
    assert report["duplicates_written"] == 0
    assert report["duplicates_by_reason"] == written["duplicates_by_reason"]
    assert sum(report["duplicates_by_reason"].values()) == 5
    assert "duplicates by reason (from _SUMMARY.json; not written): " in format_report(report)
    reasons, origin = duplicate_reasons(collect([str(run)]))
    assert reasons == written["duplicates_by_reason"] and origin.startswith("_SUMMARY.json")

    # streaming layout: kind/date=YYYY-MM-DD/*.avro
    for kind in ("articles", "dead_letter"):
        day = run / kind / "date=2026-12-01"
        day.mkdir()
        for path in (run / kind).glob("*.avro"):
            path.rename(day / path.name)
    assert find_files([str(run)], None) and all("date=" in f for f in find_files([str(run)], None))
    assert inspect_paths([str(run)])["articles"] == written["articles"]
    assert collect([str(run)]).articles == written["articles"]
