"""Reading files into raw records: splitting, limits, read-level dead letters."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from khabar.pipeline.stages.sources import (
    InputError,
    ReadArticleFiles,
    expand_inputs,
    iter_lines_limited,
)
from khabar.transforms.common import DEAD_LETTER


def test_expand_inputs_walks_directories_and_skips_readme(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.jsonl").write_text("{}")
    (tmp_path / "b.txt").write_text("t")
    (tmp_path / "README.md").write_text("# not an article")
    (tmp_path / "notes.md").write_text("# skipped: not a supported extension")
    (tmp_path / ".hidden.txt").write_text("t")
    files = expand_inputs([str(tmp_path)])
    assert sorted(Path(f).name for f in files) == ["b.txt", "x.jsonl"]
    assert expand_inputs([str(tmp_path / "b*.txt")]) == [str(tmp_path / "b.txt")]
    with pytest.raises(InputError, match="no input files match"):
        expand_inputs([str(tmp_path / "nothing-*.jsonl")])


def test_iter_lines_limited_skips_oversized_line() -> None:
    data = b"short\n" + b"x" * 50 + b"\nafter\nlast"
    lines = list(iter_lines_limited(io.BufferedReader(io.BytesIO(data)), 10))
    assert lines == [
        (1, b"short", False),
        (2, b"x" * 10, True),
        (3, b"after", False),
        (4, b"last", False),
    ]


def test_read_splits_and_dead_letters(tmp_path: Path) -> None:
    (tmp_path / "good.jsonl").write_text('{"title":"a","body":"b"}\n\n{"title":"c","body":"d"}\n')
    (tmp_path / "long.jsonl").write_bytes(b'{"title":"a","body":"' + b"y" * 500 + b'"}\n{"x":1}\n')
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "big.txt").write_bytes(b"t\n\n" + b"z" * 600)
    bomb = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><rss>&a;</rss>'
    (tmp_path / "bomb.xml").write_bytes(bomb)
    with gzip.open(tmp_path / "feed.rss.gz", "wb") as handle:
        handle.write(b"<rss><channel><item><title>t</title></item></channel></rss>")
    files = sorted(str(p) for p in tmp_path.iterdir())
    with TestPipeline() as p:
        out = p | ReadArticleFiles(files, max_record_bytes=300)
        records = out.articles | "R" >> beam.Map(
            lambda r: (Path(r["input_uri"]).name, r["position"], r["format"])
        )
        dead = out[DEAD_LETTER] | "D" >> beam.Map(
            lambda d: (
                Path(d["input_uri"]).name,
                d["stage"],
                d["error_type"],
                len(d["raw_payload"]),
            )
        )
        assert_that(
            records,
            equal_to(
                [
                    ("good.jsonl", 1, "jsonl"),
                    ("good.jsonl", 3, "jsonl"),
                    ("long.jsonl", 2, "jsonl"),
                    ("feed.rss.gz", 0, "rss"),
                ]
            ),
            label="records",
        )
        assert_that(
            dead,
            equal_to(
                [
                    ("long.jsonl", "read", "TooLarge", 300),
                    ("empty.txt", "read", "EmptyInput", 0),
                    ("big.txt", "read", "TooLarge", 300),
                    ("bomb.xml", "read", "XMLSecurityError", len(bomb)),
                ]
            ),
            label="dead",
        )
