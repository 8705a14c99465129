"""The README's downstream one-liners run as written (fastavro, khabar cat, pandas, DuckDB)."""

from __future__ import annotations

import re
import shutil
import subprocess

import fastavro
import pytest

from tests.conftest import ROOT


def readme_oneliners() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### Reading the output elsewhere", 1)[1]
    block = re.search(r"```\n(.*?)```", section, re.S)
    assert block, "the README lost its one-liners"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_oneliners_run_as_written(seeds_run: dict, tmp_path) -> None:
    pytest.importorskip("pandas", reason="make downstream (extra 'downstream') installs pandas")
    pytest.importorskip("duckdb", reason="make downstream (extra 'downstream') installs duckdb")
    lines = readme_oneliners()
    assert len(lines) == 4 and all(line.startswith(".venv/bin/") for line in lines)
    # run them in a copy of the repository's layout: .venv -> this venv, out/demo -> a run
    work = tmp_path / "repo"
    (work / "out").mkdir(parents=True)
    shutil.copytree(seeds_run["out"], work / "out" / "demo")
    (work / ".venv").symlink_to(ROOT / ".venv")
    outputs = []
    for line in lines:
        done = subprocess.run(line, shell=True, cwd=work, capture_output=True, text=True)
        assert done.returncode == 0, (line, done.stderr)
        outputs.append(done.stdout + done.stderr)
    articles = [
        r
        for f in sorted((seeds_run["out"] / "articles").glob("*.avro"))
        for r in fastavro.reader(open(f, "rb"))
    ]
    persian = sum(1 for r in articles if r["language"] == "fa")
    assert outputs[0].strip() == str(len(articles))  # fastavro: articles written from seeds/
    assert f"{len(articles)} record(s) -> out/articles.parquet" in outputs[1]
    assert re.search(rf"fa\s+{persian}\b", outputs[2]), outputs[2]  # pandas value_counts
    assert re.search(rf"│\s*fa\s*│\s*{persian}\s*│", outputs[3]), outputs[3]  # DuckDB
