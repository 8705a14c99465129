"""The spool between the poller and the local streaming job, without a job: what counts
as landed, a line cut by a kill, resume versus --overwrite."""

from __future__ import annotations

import hashlib
from pathlib import Path

import fastavro
import pytest

from khabar import schemas
from khabar.pipeline.commands.spool import Spool, SpooledMessage
from khabar.pipeline.commands.stream import local_state_paths, prepare_stream_output
from khabar.pipeline.errors import CliError
from khabar.pipeline.stages.sinks import to_article_record, to_dead_letter_record
from khabar.schemas.version import PIPELINE_VERSION
from khabar.transforms.split import split_records
from tests.feeds import rss

FEED = "http://feeds.example/a.rss"


def item(guid: str) -> bytes:
    (record,) = split_records(FEED, rss("A", [(guid, f"T {guid}", "text")]), "feed")
    return record.payload


def message(guid: str) -> SpooledMessage:
    attrs = {"input_uri": FEED, "position": "0", "format": "rss", "unit": "record"}
    return SpooledMessage(f"key-{guid}", item(guid), attrs)


def write_closed(out: Path, kind: str, records: list[dict]) -> None:
    folder = out / kind / "date=2026-12-02"
    folder.mkdir(parents=True, exist_ok=True)
    schema = schemas.dead_letter_schema() if kind == "dead_letter" else schemas.article_schema()
    for record in records:
        record["pipeline_version"] = PIPELINE_VERSION
    with open(folder / f"{kind}-w-P0-00-of-01.avro", "wb") as handle:
        fastavro.writer(handle, fastavro.parse_schema(schema), records)


def article(payload: bytes) -> dict:
    import datetime as dt

    return to_article_record(
        {
            "id": hashlib.sha256(payload).hexdigest()[:32],
            "title": "t",
            "body": "b",
            "raw_sha256": hashlib.sha256(payload).hexdigest(),
            "content_fingerprint": "f",
            "input_uri": FEED,
            "input_format": "rss",
            "input_position": 3,  # another position than published: still the same record
            "ingested_at": dt.datetime(2026, 12, 2, tzinfo=dt.UTC),
        }
    )


def test_pending_is_what_is_not_in_closed_files_and_the_rest_is_pruned(tmp_path: Path) -> None:
    import datetime as dt

    out = tmp_path / "out"
    spool = Spool(str(out / "_spool.jsonl"))
    spool.append([message("a"), message("b"), message("c"), message("a")])
    with open(spool.path, "ab") as handle:  # a line cut by a kill
        handle.write(b'{"key": "key-d", "data": "PGl0ZW')
    write_closed(out, "articles", [article(item("a"))])
    dead = to_dead_letter_record(
        {
            "stage": "parse",
            "error_type": "X",
            "error_message": "m",
            "input_uri": FEED,
            "position": 0,
            "raw_payload": item("b"),
            "attributes": {},
            "failed_at": dt.datetime(2026, 12, 2, tzinfo=dt.UTC),
        }
    )
    write_closed(out, "dead_letter", [dead])
    # a .temp file of an unfinished window is not a closed file
    (out / "articles" / ".temp-x").mkdir()
    pending, landed = spool.pending(str(out), 10**6)
    assert [m.key for m in pending] == ["key-c"] and landed.records == 2
    assert [m.key for m in spool.read()] == ["key-c"]  # pruned, the cut line dropped


def test_resume_overwrite_and_foreign_outputs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    state, spool_path = local_state_paths(str(out), None)
    assert prepare_stream_output(str(out), False, state, spool_path) is False  # new
    Spool(spool_path).append([message("a")])
    Path(state).write_text('{"seen": {"key-a": 1}}')
    write_closed(out, "articles", [article(item("a"))])
    assert prepare_stream_output(str(out), False, state, spool_path) is True  # resumed
    assert (out / "articles" / "date=2026-12-02").exists()
    # --overwrite: Avro, poller state and spool go together (nothing stays "seen")
    assert prepare_stream_output(str(out), True, state, spool_path) is False
    assert not Path(state).exists() and not Path(spool_path).exists()
    assert not list(out.glob("articles/date=*/*.avro"))
    # the output of another kind of run is refused, as khabar run refuses it
    write_closed(out, "articles", [article(item("z"))])
    with pytest.raises(CliError, match="already holds"):
        prepare_stream_output(str(out), False, state, spool_path)
