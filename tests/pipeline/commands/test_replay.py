"""`khabar replay`: dead letters of a real run go back through the graph after a fix.

The "fix" is a configuration one: seeds/ is run with a size limit so small that most
inputs become ``read``/``TooLarge`` dead letters (whole text and HTML files, whole feeds,
single JSON lines), then replayed with the default limit.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import fastavro
import pytest

from khabar import schemas
from khabar.pipeline.commands.replay import main
from khabar.pipeline.errors import CliError
from khabar.pipeline.graph.replay import SourceChanged, SourceUnavailable, raw_records_for
from khabar.pipeline.stages.sources import expand_inputs
from khabar.transforms.parse import record_id
from khabar.transforms.split import detect_format, split_records
from tests.conftest import SEEDS, read_avro, read_summary, run_khabar

SMALL_LIMIT = "1200"
BAD = 2  # seeds' own dead letters: empty HTML app shell, invalid JSON (an unreadable date
# leaves published_at empty and keeps the article)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """seeds/ copied (so tests may change inputs) and run with a tiny size limit."""
    base = tmp_path_factory.mktemp("replay")
    inputs = base / "seeds"
    shutil.copytree(SEEDS, inputs)
    out = base / "small"
    result = run_khabar(
        "run",
        "--input",
        str(inputs),
        "--output",
        str(out),
        "--emit_duplicates",
        "--max_article_bytes",
        SMALL_LIMIT,
    )
    assert result.returncode == 0, result.stderr
    return {"base": base, "inputs": inputs, "out": out}


def expected_ids(inputs: Path) -> dict[str, tuple[str, int]]:
    """id -> (input_uri, position) of every raw record in ``inputs`` (Beam-free split)."""
    ids = {}
    for path in expand_inputs([str(inputs)]):
        data = Path(path).read_bytes()
        for raw in split_records(path, data, detect_format(path, data[:4096])):
            ids[record_id(raw.input_uri, raw.position, raw.payload)] = (path, raw.position)
    return ids


@pytest.fixture(scope="module")
def replayed(small_run: dict) -> Path:
    out = small_run["base"] / "replayed"
    args = [str(small_run["out"] / "dead_letter"), "--output", str(out), "--emit_duplicates"]
    assert main([*args, "--quiet"]) == 0
    return out


def test_replay_recovers_everything_but_the_truly_bad(small_run: dict, replayed: Path) -> None:
    out = small_run["out"]
    first = read_avro(out / "articles") + read_avro(out / "duplicates")
    dead = read_avro(out / "dead_letter")
    assert sum(d["stage"] == "read" and d["error_type"] == "TooLarge" for d in dead) >= 10

    summary = read_summary(replayed)
    assert summary["conservation"]["ok"] and summary["replay"]["records_in_ok"]
    assert summary["replay"]["dead_letters_in"] == len(dead)
    assert summary["replay"]["refetched"] >= 10
    counts = summary["counts"]
    assert (
        counts["records_in"] == counts["articles"] + counts["duplicates"] + counts["dead_letters"]
    )
    assert counts["dead_letters"] == BAD

    second = read_avro(replayed / "articles") + read_avro(replayed / "duplicates")
    assert len(second) == counts["articles"] + counts["duplicates"]
    ids_first = {r["id"] for r in first}
    ids_second = {r["id"] for r in second}
    assert not ids_first & ids_second  # nothing written twice
    # every good record of seeds/ is now written once, with the id a clean run gives it
    expected = expected_ids(small_run["inputs"])
    assert len(expected) == 32
    still = {(d["input_uri"], d["position"]) for d in read_avro(replayed / "dead_letter")}
    assert ids_first | ids_second == {i for i, where in expected.items() if where not in still}
    assert len(ids_first | ids_second) == 32 - BAD
    for record in second:  # provenance kept
        assert expected[record["id"]] == (record["input_uri"], record["input_position"])
    # feeds fit their container budget; their items above the small limit were replayed
    feeds = [r for r in first + second if r["input_format"] in ("rss", "atom")]
    assert len(feeds) == 7 and {r["feed"] for r in feeds if r["input_format"] == "rss"} != {None}
    assert any(r["input_format"] in ("rss", "atom") for r in second)


def test_still_dead_letters_keep_their_provenance(small_run: dict, replayed: Path) -> None:
    # (feed items above the small limit are parse-stage TooLarge: feeds get a larger
    # budget as containers, their items the per-article limit; the replay recovers them)
    original = {
        (d["input_uri"], d["position"]): d
        for d in read_avro(small_run["out"] / "dead_letter")
        if d["stage"] != "read" and d["error_type"] != "TooLarge"
    }
    still = read_avro(replayed / "dead_letter")
    assert len(still) == BAD == len(original)
    for d in still:
        was = original[(d["input_uri"], d["position"])]
        assert d["stage"] == was["stage"] and d["error_type"] == was["error_type"]
        assert d["raw_payload"] == was["raw_payload"]
        assert d["attributes"]["format"] == was["attributes"]["format"]
        assert d["attributes"]["replay_count"] == "1"


def test_truncated_inputs_that_changed_or_vanished_stay_dead(
    small_run: dict, replayed: Path, tmp_path: Path
) -> None:
    dead = [
        d
        for d in read_avro(small_run["out"] / "dead_letter")
        if d["stage"] == "read" and d["error_type"] == "TooLarge" and d["position"] is None
    ]
    changed_file = tmp_path / "changed.txt"
    changed_file.write_bytes(b"something else entirely\n\n" + b"x" * 2000)
    changed = dict(dead[0], input_uri=str(changed_file))
    vanished = dict(dead[1], input_uri=str(tmp_path / "gone.txt"))
    with pytest.raises(SourceChanged):
        raw_records_for(changed)
    with pytest.raises(SourceUnavailable):
        raw_records_for(vanished)
    records, how = raw_records_for(dead[0])
    assert how == "refetched" and records and records[0].input_uri == dead[0]["input_uri"]

    folder = tmp_path / "dl"
    folder.mkdir()
    with open(folder / "dead_letter-00000-of-00001.avro", "wb") as handle:
        fastavro.writer(handle, schemas.dead_letter_schema(), [changed, vanished])
    out = tmp_path / "out"
    # these two, and the replay's own still-dead letters replayed a second time
    assert main([str(folder), str(replayed / "dead_letter"), "--output", str(out)]) == 0
    still = read_avro(out / "dead_letter")
    rebuilt_failed = sorted(
        (d for d in still if d["stage"] == "read"), key=lambda d: d["error_type"]
    )
    assert [d["error_type"] for d in rebuilt_failed] == ["SourceChanged", "SourceUnavailable"]
    assert rebuilt_failed[0]["raw_payload"] == changed["raw_payload"]  # stored bytes kept
    assert {d["attributes"]["replay_count"] for d in rebuilt_failed} == {"1"}
    again = [d for d in still if d["stage"] != "read"]
    assert len(again) == BAD and {d["attributes"]["replay_count"] for d in again} == {"2"}
    summary = read_summary(out)
    assert summary["conservation"]["ok"] and summary["replay"]["not_rebuilt"] == 2
    assert summary["counts"]["records_in"] == 2 + BAD


def test_user_errors(small_run: dict, tmp_path: Path) -> None:
    out = small_run["out"]
    with pytest.raises(CliError, match="new directory"):
        main([str(out / "dead_letter"), "--output", str(out)])
    with pytest.raises(CliError, match="give the dead letters first"):
        main(["--output", str(tmp_path / "x"), str(out)])
    with pytest.raises(CliError, match="not --input"):
        main([str(out), "--input", "seeds", "--output", str(tmp_path / "x")])
    with pytest.raises(CliError, match="--output is required"):
        main([str(out)])
    with pytest.raises(CliError, match="not dead letters"):
        main([str(out / "articles" / "*.avro"), "--output", str(tmp_path / "x")])
    with pytest.raises(CliError, match="unrecognized arguments"):
        main([str(out), "--output", str(tmp_path / "x"), "--no_such_flag"])
    with pytest.raises(CliError, match="no dead-letter Avro files"):
        main([str(tmp_path / "empty"), "--output", str(tmp_path / "x")])


def test_replay_deduplicates_against_the_run_it_replays(tmp_path: Path) -> None:
    # b.jsonl's first line is a copy of a.jsonl's article, too large for the first run
    # (an extra field pads it); its second line is a new story, also too large
    body = (
        "The harbour authority reopened the northern docks after the storm, and ships that "
        "had queued outside the breakwater for two days began to come in with the pilots."
    )
    other = (
        "Primary schools moved their classes online because the air quality index reached "
        "unhealthy levels in most districts of the capital for the third day this week."
    )
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a.jsonl").write_text(json.dumps({"title": "Docks reopen", "body": body}) + "\n")
    pad = "x" * 800
    lines = [
        {"title": "Harbour open again", "body": body, "notes": pad},
        {"title": "Schools go online", "body": other, "notes": pad},
    ]
    (inputs / "b.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    run = tmp_path / "run"
    first = run_khabar(
        "run", "--input", str(inputs), "--output", str(run), "--max_article_bytes", "700"
    )
    assert first.returncode == 0, first.stderr
    (kept,) = read_avro(run / "articles")
    assert len(read_avro(run / "dead_letter")) == 2

    out = tmp_path / "replay"
    assert main([str(run / "dead_letter"), "--output", str(out), "--emit_duplicates"]) == 0
    summary = read_summary(out)
    assert summary["conservation"]["ok"]
    assert summary["replay"]["duplicates_of_earlier_run"] == 1
    known = sorted(str(p) for p in (run / "articles").glob("*.avro"))
    assert summary["replay"]["deduplicated_against"] == known
    (dup,) = read_avro(out / "duplicates")
    assert (dup["title"], dup["duplicate_of"], dup["duplicate_reason"]) == (
        "Harbour open again",
        kept["id"],
        "content",
    )
    assert dup["cluster_id"] == kept["cluster_id"] == kept["id"]
    assert [a["title"] for a in read_avro(out / "articles")] == ["Schools go online"]

    alone = tmp_path / "alone"
    args = [str(run / "dead_letter"), "--output", str(alone), "--dedup_against", "none"]
    assert main(args) == 0
    assert sorted(a["title"] for a in read_avro(alone / "articles")) == [
        "Harbour open again",
        "Schools go online",
    ]
    with pytest.raises(CliError, match="no articles"):
        main([args[0], "--output", str(tmp_path / "x"), "--dedup_against", str(tmp_path)])
    with pytest.raises(CliError, match="names --output"):
        main([args[0], "--output", str(out), "--overwrite", "--dedup_against", str(out)])
    assert (out / "articles").is_dir()  # refused before anything was removed
