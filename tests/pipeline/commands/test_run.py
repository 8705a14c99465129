"""End to end: `khabar run` on seeds/ as a user runs it, Avro read back with fastavro."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import SEEDS, read_avro, read_summary, run_khabar

ZWNJ = "\u200c"
SEED_NAME = "000_3016482c832c8a52.txt"


@pytest.fixture(scope="module")
def demo(seeds_run: dict) -> dict:
    out = seeds_run["out"]
    return {
        "out": out,
        "stdout": seeds_run["stdout"],
        "articles": read_avro(out / "articles"),
        "duplicates": read_avro(out / "duplicates"),
        "dead": read_avro(out / "dead_letter"),
        "summary": read_summary(out),
    }


def test_conservation_and_summary(demo: dict) -> None:
    counts = demo["summary"]["counts"]
    assert counts["records_in"] == (
        len(demo["articles"]) + len(demo["duplicates"]) + len(demo["dead"])
    )
    assert demo["summary"]["conservation"]["ok"]
    assert "[OK]" in demo["stdout"] and "FnApiRunner" in demo["stdout"]
    assert counts["articles"] == len(demo["articles"])
    # seeds/README.md: 32 records; 5 duplicates (2 by URL, 2 by content, 1 near); 2 dead
    assert (counts["records_in"], counts["articles"], counts["duplicates"]) == (32, 25, 5)
    assert (counts["duplicates_by_url"], counts["duplicates_by_content"]) == (2, 2)
    assert counts["duplicates_near"] == 1
    assert len(demo["dead"]) == 2
    assert counts["dates_left_empty"] == 1  # the unreadable date: article kept, date empty


def test_seed_article_fields(demo: dict) -> None:
    (seed,) = [a for a in demo["articles"] if a["input_uri"].endswith(SEED_NAME)]
    # the normalizer restores the ZWNJ the source dropped (گفتوگوی -> گفت‌وگوی)
    assert seed["title"].startswith(f"دیدار و گفت{ZWNJ}وگوی نماینده پوتین")
    assert seed["source"] == "آران نیوز"
    assert seed["language"] == "fa" and seed["script"] == "Arab"
    assert seed["language_confidence"] > 0.9
    assert "«اسماعیل هنیه»" in seed["body"] and "«میخائیل بوگدانف»" in seed["body"]
    assert f"رئیس{ZWNJ}جمهوری" in seed["lead"]  # joined with a ZWNJ (a lexicon compound)
    assert not seed["body"].startswith("آران نیوز")  # dateline moved to source
    assert seed["input_format"] == "text" and seed["input_position"] == 0
    assert seed["word_count"] > 400
    assert seed["schema_version"] == 3 and seed["canonical_id"] == seed["id"]
    assert seed["ingested_at"].tzinfo is not None


def test_seed_entities_with_offsets(demo: dict) -> None:
    (seed,) = [a for a in demo["articles"] if a["input_uri"].endswith(SEED_NAME)]
    assert seed["entity_model"] and "research use only" in seed["entity_model"]
    found = {(e["text"], e["type"]) for e in seed["entities"]}
    for name in ("میخائیل بوگدانف", "اسماعیل هنیه", "خالد مشعل", "موسی ابو مرزوق"):
        assert (name, "PERSON") in found, name
    assert ("حماس", "ORGANIZATION") in found
    assert {("دوحه", "LOCATION"), ("قطر", "LOCATION")} <= found
    for entity in seed["entities"]:
        field = seed[entity["field"]]
        assert field[entity["start"] : entity["end"]] == entity["text"]
    arabic = [a for a in demo["articles"] if a["language"] == "ar"]
    assert arabic and all(a["entities"] == [] and a["entity_model"] is None for a in arabic)


def test_languages_and_scripts_kept_apart(demo: dict) -> None:
    langs = {a["language"] for a in demo["articles"]}
    assert {"fa", "ar", "en", "ur"} <= langs
    for article in demo["articles"]:
        if article["language"] == "ar":
            assert "ي" in article["title"] + article["body"]  # Arabic yeh not "Persianized"
        if article["language"] == "fa":
            assert "ي" not in article["body"] and "ك" not in article["body"]


def test_every_record_points_back_to_its_input(demo: dict) -> None:
    for record in demo["articles"] + demo["duplicates"]:
        assert Path(record["input_uri"]).exists()
        assert len(record["id"]) == 32 and len(record["raw_sha256"]) == 64
    for dead in demo["dead"]:
        assert Path(dead["input_uri"]).exists()
        assert dead["stage"] and dead["error_type"] and dead["error_message"]


def test_duplicates_are_linked_to_written_survivors(demo: dict) -> None:
    ids = {a["id"] for a in demo["articles"]}
    assert demo["duplicates"], "seeds/ holds duplicates"
    reasons = set()
    for dup in demo["duplicates"]:
        assert dup["canonical_id"] in ids
        assert dup["duplicate_of"]
        reasons.add(dup["duplicate_reason"])
    assert reasons == {"url", "content", "near"}
    # the Shiraz story republished with a new headline, dateline, Arabic letters and Latin
    # digits, its closing paragraph cut: a near-duplicate in the same story cluster
    (near,) = [d for d in demo["duplicates"] if d["duplicate_reason"] == "near"]
    (original,) = [a for a in demo["articles"] if a["id"] == near["duplicate_of"]]
    assert original["input_position"] == 8 and near["input_position"] == 17
    assert near["cluster_id"] == original["cluster_id"] == original["id"]
    assert 0.5 < near["similarity"] < 1.0 and original["similarity"] == 1.0
    # the football story: JSONL line 6 survives, its RSS copy (tracking params) is linked
    (football,) = [d for d in demo["duplicates"] if d["input_format"] == "rss"]
    (survivor,) = [a for a in demo["articles"] if a["id"] == football["duplicate_of"]]
    assert survivor["input_format"] == "jsonl" and survivor["input_position"] == 6
    assert football["canonical_url"] == survivor["canonical_url"]
    # Tabriz metro: the same text with Arabic letters and no ZWNJ is caught by content
    tabriz = [d for d in demo["duplicates"] if "tabriz_metro" in d["input_uri"]]
    assert len(tabriz) == 1 and tabriz[0]["duplicate_reason"] == "content"


def test_html_and_encodings(demo: dict) -> None:
    by_file = {Path(a["input_uri"]).name: a for a in demo["articles"]}
    isfahan = by_file["fa_isfahan_zayandehrud.html"]
    assert f"دریچه{ZWNJ}های" in isfahan["title"] and f"زاینده{ZWNJ}رود" in isfahan["body"]
    assert isfahan["published_at"] is not None
    assert by_file["en_cheetah_touran.html"]["language"] == "en"
    assert by_file["004_yazd_library_utf16le.txt"]["language"] == "fa"
    assert by_file["002_saffron_harvest_utf8_bom.txt"]["title"][0] != "\ufeff"


def test_dead_letters_keep_raw_bytes(demo: dict) -> None:
    by_type = {d["error_type"]: d for d in demo["dead"]}
    assert {"JSONDecodeError", "EmptyInput"} == set(by_type)
    bad_json = by_type["JSONDecodeError"]
    line = Path(bad_json["input_uri"]).read_bytes().split(b"\n")[bad_json["position"] - 1]
    assert bad_json["raw_payload"] == line


def test_inspect_reads_the_run(demo: dict) -> None:
    result = run_khabar("inspect", str(demo["out"]), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["articles"] == len(demo["articles"])
    assert report["dead_letters"] == len(demo["dead"])
    assert report["run"]["conservation_ok"] is True
    assert report["languages"]["fa"] >= 5
    human = run_khabar("inspect", str(demo["out"]))
    assert "dead letters by stage" in human.stdout and "sample articles" in human.stdout


def test_rerun_gives_same_ids_and_refuses_to_mix(demo: dict, tmp_path: Path) -> None:
    again = run_khabar("run", "--input", str(SEEDS), "--output", str(tmp_path / "again"))
    assert again.returncode == 0, again.stderr
    assert {a["id"] for a in read_avro(tmp_path / "again" / "articles")} == {
        a["id"] for a in demo["articles"]
    }
    refused = run_khabar("run", "--input", str(SEEDS), "--output", str(tmp_path / "again"))
    assert refused.returncode == 2
    assert "already holds the output of a run" in refused.stderr
    assert refused.stderr.count("\n") == 1


def test_bad_command_lines_are_one_line_errors(tmp_path: Path) -> None:
    for args in (
        ["run", "--output", str(tmp_path)],
        ["run", "--input", str(SEEDS), "--output", str(tmp_path), "--no-such-flag"],
        ["run", "--input", str(tmp_path / "missing.jsonl"), "--output", str(tmp_path)],
        ["run", "--input", str(SEEDS), "--output", str(tmp_path), "--max_article_bytes", "-5"],
        ["frobnicate"],
    ):
        result = run_khabar(*args)
        assert result.returncode == 2, args
        assert result.stderr.count("\n") == 1 and "error" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
