"""Shared fixtures: paths, and a real GCS-protocol server on loopback."""

from __future__ import annotations

import filecmp
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SEEDS = ROOT / "seeds"
VENV_BIN = Path(sys.executable).parent


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


def run_khabar(*args: str, env: dict[str, str] | None = None, timeout: int = 300):
    """Run the installed ``khabar`` console command in a subprocess."""
    return subprocess.run(
        [str(VENV_BIN / "khabar"), *args],
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
