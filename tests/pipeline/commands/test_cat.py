"""`khabar cat`: a real run's Avro as JSON Lines and Parquet, checked against fastavro."""

from __future__ import annotations

import base64
import datetime as dt
import json
import shutil
from pathlib import Path

import fastavro
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from khabar.pipeline.commands.cat import main
from khabar.pipeline.errors import CliError
from tests.conftest import ROOT, read_avro


@pytest.fixture(scope="module")
def run_dir(seeds_run: dict) -> Path:
    return seeds_run["out"]


def cat_lines(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict]:
    assert main(list(argv)) == 0
    out = capsys.readouterr().out
    return [json.loads(line) for line in out.splitlines()]


def test_jsonl_articles_match_the_avro(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expected = {r["id"]: r for r in read_avro(run_dir / "articles")}
    rows = cat_lines(capsys, str(run_dir))
    assert len(rows) == len(expected) == 25
    for row in rows:
        want = expected[row["id"]]
        assert row["title"] == want["title"] and row["body"] == want["body"]
        # floats without float32 noise (0.9978, not 0.9977999925613403), the same 32-bit value
        for got, avro in zip(row["entities"], want["entities"], strict=True):
            assert {**got, "confidence": 0} == {**avro, "confidence": 0}
            assert np.float32(got["confidence"]) == np.float32(avro["confidence"])
            assert len(repr(got["confidence"])) <= 10
        assert np.float32(row["language_confidence"]) == np.float32(want["language_confidence"])
        assert row["ingested_at"].endswith("Z")
        parsed = dt.datetime.fromisoformat(row["ingested_at"].replace("Z", "+00:00"))
        assert abs(parsed - want["ingested_at"]) < dt.timedelta(milliseconds=1)
        if want["published_at"] is None:
            assert row["published_at"] is None
        else:
            assert dt.datetime.fromisoformat(row["published_at"]) == want["published_at"]
    # Persian stays readable (not \\u-escaped)
    assert any("ی" in json.dumps(r, ensure_ascii=False) for r in rows)


def test_jsonl_dead_letters_keep_bytes_as_base64(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = {(r["input_uri"], r["position"]): r for r in read_avro(run_dir / "dead_letter")}
    rows = cat_lines(capsys, str(run_dir), "--kind", "dead_letter", "--jsonl")
    assert len(rows) == len(expected) == 2
    for row in rows:
        want = expected[(row["input_uri"], row["position"])]
        assert base64.b64decode(row["raw_payload"]) == want["raw_payload"]
        assert row["attributes"] == want["attributes"] and row["attributes"]["format"]
        assert row["stage"] == want["stage"] and row["error_type"] == want["error_type"]


def test_duplicates_folder_and_explicit_files(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    by_kind = cat_lines(capsys, str(run_dir), "--kind", "duplicates")
    by_folder = cat_lines(capsys, str(run_dir / "duplicates"))
    by_glob = cat_lines(capsys, str(run_dir / "duplicates" / "*.avro"))
    assert len(by_kind) == 5 and all(r["duplicate_of"] for r in by_kind)
    assert by_kind == by_folder == by_glob


def test_parquet_articles_and_dead_letters(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "articles.parquet"
    assert main([str(run_dir), "--parquet", "--out", str(out)]) == 0
    table = pq.read_table(out)
    expected = {r["id"]: r for r in read_avro(run_dir / "articles")}
    assert table.num_rows == len(expected)
    assert table.schema.field("published_at").type == pa.timestamp("ms", tz="UTC")
    assert table.schema.field("id").nullable is False
    assert table.schema.field("entities").type.value_type.field("start").type == pa.int32()
    assert b"doc" in table.schema.field("canonical_id").metadata
    for row in table.to_pylist():
        want = expected[row["id"]]
        assert row["published_at"] == want["published_at"]
        assert row["language"] == want["language"] and row["word_count"] == want["word_count"]

    dl = tmp_path / "dead.parquet"
    assert main([str(run_dir), "--kind", "dead_letter", "--parquet", "--out", str(dl)]) == 0
    dead = {(r["input_uri"], r["position"]): r for r in read_avro(run_dir / "dead_letter")}
    rows = pq.read_table(dl).to_pylist()
    assert len(rows) == 2
    for row in rows:
        want = dead[(row["input_uri"], row["position"])]
        assert row["raw_payload"] == want["raw_payload"]
        assert dict(row["attributes"]) == want["attributes"]


def test_jsonl_to_a_file(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "a.jsonl"
    assert main([str(run_dir), "--out", str(out)]) == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 25 and all(json.loads(line)["id"] for line in lines)


def test_older_schema_files_come_out_in_the_current_shape(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    v1 = json.loads((ROOT / "schemas" / "history" / "article.v1.avsc").read_text(encoding="utf-8"))
    names = [f["name"] for f in v1["fields"]]
    records = [
        {k: r[k] for k in names} | {"schema_version": 1} for r in read_avro(run_dir / "articles")
    ]
    folder = tmp_path / "old"
    folder.mkdir()
    with open(folder / "articles-00000-of-00001.avro", "wb") as handle:
        fastavro.writer(handle, fastavro.parse_schema(v1), records)
    rows = cat_lines(capsys, str(folder))
    assert len(rows) == len(records)
    assert all(r["entities"] == [] and r["cluster_id"] is None for r in rows)
    assert {r["schema_version"] for r in rows} == {1}
    out = tmp_path / "old.parquet"
    assert main([str(folder), "--parquet", "--out", str(out)]) == 0
    assert pq.read_table(out).num_rows == len(records)


def test_user_errors_are_one_line(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(CliError, match="--parquet needs --out"):
        main([str(run_dir), "--parquet"])
    with pytest.raises(CliError, match="does not match"):
        main([str(run_dir / "articles"), "--kind", "dead_letter"])
    with pytest.raises(CliError, match="no khabar Avro files"):
        main([str(tmp_path / "nothing-here")])
    with pytest.raises(CliError, match="mix articles and dead letters"):
        main([str(run_dir / "articles" / "*.avro"), str(run_dir / "dead_letter" / "*.avro")])
    partial = tmp_path / "no-dups"
    shutil.copytree(run_dir / "articles", partial / "articles")
    with pytest.raises(CliError, match="--emit_duplicates"):
        main([str(partial), "--kind", "duplicates"])
    with pytest.raises(CliError):
        main([str(run_dir), "--jsonl", "--parquet", "--out", "x"])
