"""Behaviour stays byte-identical: `khabar run` on seeds/ writes the records of the golden
run (tests/golden/seeds.jsonl), apart from wall-clock fields. Ids hash the absolute input
path, so the run reads a copy of seeds/ at a fixed path (conftest.GOLDEN_SEEDS).

The golden was checked against main 5b4f95e (the layout before issue 18) with
``python -m tests.compare_runs --rename transforms.=khabar.transforms. OLD NEW``: identical.
A change that is *meant* to change records regenerates it (and says so in its commit):
``khabar run --input /tmp/khabar-golden/seeds --output OUT --emit_duplicates`` then
``python -m tests.compare_runs --dump OUT > tests/golden/seeds.jsonl``."""

from __future__ import annotations

import shutil
from pathlib import Path

import fastavro

from tests.compare_runs import differences, load_golden, run_records

GOLDEN = Path(__file__).resolve().parent / "golden" / "seeds.jsonl"


def test_seeds_give_the_golden_records(golden_seeds_run: Path) -> None:
    found = differences(load_golden(GOLDEN), run_records(golden_seeds_run))
    assert not found, "\n".join(found)


def test_the_check_sees_a_changed_record_but_not_a_new_ingested_at(
    golden_seeds_run: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(golden_seeds_run, run)
    path = sorted((run / "articles").glob("*.avro"))[0]
    with path.open("rb") as handle:
        reader = fastavro.reader(handle)
        schema, records = reader.writer_schema, list(reader)
    records[0]["ingested_at"] = records[0]["ingested_at"].replace(year=2001)
    with path.open("wb") as handle:
        fastavro.writer(handle, schema, records, codec="deflate")
    assert differences(load_golden(GOLDEN), run_records(run)) == []

    records[0]["title"] = (records[0]["title"] or "") + "!"
    with path.open("wb") as handle:
        fastavro.writer(handle, schema, records, codec="deflate")
    found = differences(load_golden(GOLDEN), run_records(run))
    assert found and found[0].startswith("articles:"), found
