"""feedparser's own feed corpus (2,106 files, ../shared/data/feeds-feedparser): the
whole corpus in one job, and khabar's fields against feedparser's where its Expect holds."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tests.conftest import needs_shared_data, read_avro, run_khabar, shared_data

CORPUS = shared_data("feeds-feedparser")
pytestmark = needs_shared_data("feeds-feedparser")


@pytest.mark.slow
def test_whole_corpus_in_one_job(tmp_path: Path) -> None:
    import feedparser

    files = sorted(CORPUS.rglob("*.xml"))
    entries = sum(len(feedparser.parse(io.BytesIO(p.read_bytes())).entries) for p in files)
    out = tmp_path / "out"
    result = run_khabar("run", "--input", str(CORPUS), "--output", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "conservation" in result.stdout and "[OK]" in result.stdout
    summary = json.loads((out / "_SUMMARY.json").read_text())
    counts = summary["counts"]
    assert summary["conservation"]["ok"]
    assert counts["files"] == len(files) == 2106
    dead = read_avro(out / "dead_letter")
    whole_files = [d for d in dead if d["stage"] == "read"]
    assert counts["files_dead_lettered"] == len(whole_files)
    # every item feedparser finds is a record, but for the two files khabar refuses:
    # an entity declaration (entity_in_doctype.xml) and broken UTF-8 (bozo_linenoise.xml)
    assert counts["records_in"] - len(whole_files) == entries - 2
    refused = {Path(d["input_uri"]).name: d["error_type"] for d in whole_files}
    assert refused["entity_in_doctype.xml"] == "XMLSecurityError"
    assert refused["bozo_linenoise.xml"] == "DecodeError"
    # a file is only dead-lettered whole for a reason that concerns the whole file
    assert {d["error_type"] for d in whole_files} <= {
        "EmptyInput",  # a feed without items
        "MalformedXML",  # not a feed at all
        "XMLSecurityError",
        "DecodeError",
    }
    for d in dead:
        assert d["raw_payload"] or d["error_type"] == "EmptyInput"


def test_fields_agree_with_feedparser_where_its_expectation_holds() -> None:
    from khabar.pipeline.bench.feeds import FIELDS, compare

    report = compare(CORPUS)
    assert report["eligible_files"] > 1900 and report["items"] > 1100
    for name in (*FIELDS, "date core"):
        total, agree = report["total"][name], report["agree"].get(name, 0)
        assert total > 25, name
        assert agree >= 0.98 * total, (name, report["differences"].get(name, [])[:5])
