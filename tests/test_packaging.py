"""The wheel alone: built, installed into a fresh venv without extras, it reads seeds/
(HTML included) with no ImportError dead letters (trafilatura's jusText needs
lxml_html_clean, which only an optional extra used to pull in)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, read_avro


@pytest.mark.slow
def test_wheel_without_extras_parses_html(tmp_path: Path) -> None:
    def run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
        result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    wheels = tmp_path / "wheels"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), str(ROOT))
    (wheel,) = wheels.glob("khabar-*.whl")
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", str(venv))
    # the pip cache makes this a local install; no extras: only the declared dependencies
    pip = (str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-compile")
    run(*pip, str(wheel), timeout=900)
    out = tmp_path / "out"
    run(str(venv / "bin" / "khabar"), "run", "--input", str(ROOT / "seeds"), "--output", str(out))
    dead = read_avro(out / "dead_letter")
    assert not [d for d in dead if d["error_type"] in ("ImportError", "ModuleNotFoundError")]
    html = [a for a in read_avro(out / "articles") if a["input_format"] == "html"]
    assert len(html) >= 2
