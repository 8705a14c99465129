"""Shared test helpers and fixtures, in one place: paths (the repository, seeds, the
shared data a fresh clone lacks), reading a run's Avro and summary, starting the installed
``khabar`` (in the foreground or the background), the seeds runs, and a real
GCS-protocol server on loopback."""

from __future__ import annotations

import filecmp
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import fastavro
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SEEDS = ROOT / "seeds"
VENV_BIN = Path(sys.executable).parent


def shared_data(name: str) -> Path:
    """``../shared/data/NAME`` (a data set with a README there); absent in a fresh clone,
    so a test that needs it skips with :func:`needs_shared_data`."""
    return SHARED / "data" / name


def needs_shared_data(name: str) -> pytest.MarkDecorator:
    """Skip (with the reason) where ``../shared/data/NAME`` is absent."""
    path = shared_data(name)
    return pytest.mark.skipif(
        not path.exists(), reason=f"{name} not found at {path} (shared data is not in a clone)"
    )


def read_avro(folder: Path, pattern: str = "*.avro") -> list[dict]:
    """Every record of the Avro files in ``folder`` matching ``pattern``, files in name
    order (a batch output kind: ``*.avro``; a streaming one: ``date=*/*.avro``)."""
    records: list[dict] = []
    for path in sorted(folder.glob(pattern)):
        with open(path, "rb") as handle:
            records += list(fastavro.reader(handle))
    return records


def read_summary(out: Path) -> dict:
    """A run's ``_SUMMARY.json``."""
    return json.loads((out / "_SUMMARY.json").read_text(encoding="utf-8"))


def khabar_args(*args: str) -> list[str]:
    """The command line of the installed ``khabar`` console command."""
    return [str(VENV_BIN / "khabar"), *args]


def stream_args(url: str, out: Path, *extra: str) -> list[str]:
    """``khabar stream`` of one loopback feed as the stream tests run it: polled every
    second, 5 s windows, output in ``out``."""
    return khabar_args(
        "stream",
        "--feed",
        url,
        "--allow-address-range",
        "127.0.0.1/32",
        "--interval",
        "1",
        "--window_seconds",
        "5",
        "--output",
        str(out),
        *extra,
    )


def start_khabar(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start ``args`` (from :func:`khabar_args`) in the background, stdout and stderr
    piped as text, to be signalled or waited for."""
    return subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not start")


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[str]:
    """gcp-storage-emulator (a real GCS JSON-API server) on loopback, in memory.

    Sets STORAGE_EMULATOR_HOST for this process and the khabar processes tests start."""
    port = free_port()
    exe = VENV_BIN / "gcp-storage-emulator"
    proc = subprocess.Popen(
        [str(exe), "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        host = f"http://127.0.0.1:{port}"
        old = os.environ.get("STORAGE_EMULATOR_HOST")
        os.environ["STORAGE_EMULATOR_HOST"] = host
        from khabar.pipeline.job.gcs import use_emulator_if_configured

        use_emulator_if_configured()
        yield host
        if old is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = old
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def write_news_corpus(folder: Path, files: int = 4, per_file: int = 500) -> int:
    """Write ``files`` JSON Lines files of ``per_file`` distinct Persian news records, made
    from the repository's seeds (words of each body shuffled by a seeded generator), so
    tests that need a corpus that takes a while to process need no ../shared. Returns the
    number of records."""
    seeds = []
    for line in (SEEDS / "jsonl" / "news.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # the seeds hold broken lines on purpose
        if isinstance(record, dict) and record.get("body") and record.get("title"):
            seeds.append(record)
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    for k in range(files):
        lines = []
        for _ in range(per_file):
            base = seeds[n % len(seeds)]
            words = str(base["body"]).split()
            random.Random(n).shuffle(words)
            record = {
                "title": f"{base['title']} {n}",
                "body": " ".join(words),
                "url": f"https://example.ir/news/{n}",
            }
            lines.append(json.dumps(record, ensure_ascii=False))
            n += 1
        (folder / f"part{k}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return n


def run_khabar(*args: str, env: dict[str, str] | None = None, timeout: int = 300):
    """Run the installed ``khabar`` console command in a subprocess."""
    return subprocess.run(
        khabar_args(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
    )


@pytest.fixture(scope="session")
def seeds_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`khabar run` on seeds/ with --emit_duplicates, once per test session, for every test
    that only reads a finished run: {"out": the run directory, "stdout": what it printed}.
    Tests must not write into it."""
    out = tmp_path_factory.getbasetemp() / "khabar-seeds-emit-duplicates"
    result = run_khabar("run", "--input", str(SEEDS), "--output", str(out), "--emit_duplicates")
    assert result.returncode == 0, result.stderr
    return {"out": out, "stdout": result.stdout}


# Record ids hash the absolute input path, so the golden run reads seeds/ from a fixed path.
GOLDEN_SEEDS = Path(tempfile.gettempdir()) / "khabar-golden" / "seeds"


def _same_tree(a: Path, b: Path) -> bool:
    cmp = filecmp.dircmp(a, b)
    return (
        not (cmp.left_only or cmp.right_only or cmp.diff_files or cmp.funny_files)
        and filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)[0] == cmp.common_files
        and all(_same_tree(a / d, b / d) for d in cmp.common_dirs)
    )


@pytest.fixture(scope="session")
def golden_seeds_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`khabar run --emit_duplicates` on a copy of seeds/ at GOLDEN_SEEDS (the path the
    golden records were made from); returns the run directory."""
    if not (GOLDEN_SEEDS.is_dir() and _same_tree(SEEDS, GOLDEN_SEEDS)):
        staging = Path(tempfile.mkdtemp(dir=GOLDEN_SEEDS.parent.parent))
        shutil.copytree(SEEDS, staging / "seeds")
        GOLDEN_SEEDS.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(GOLDEN_SEEDS, ignore_errors=True)
        os.replace(staging / "seeds", GOLDEN_SEEDS)
        shutil.rmtree(staging, ignore_errors=True)
    out = tmp_path_factory.getbasetemp() / "khabar-golden-seeds"
    result = run_khabar(
        "run", "--input", str(GOLDEN_SEEDS), "--output", str(out), "--emit_duplicates"
    )
    assert result.returncode == 0, result.stderr
    return out
