"""Avro schemas: documented, versioned, and the current version reads every older file."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import fastavro
import pytest

from khabar import schemas
from khabar.pipeline.stages.sinks import to_article_record, to_dead_letter_record
from khabar.transforms.common import make_dead_letter

HISTORY = Path(schemas.__file__).parent / "history"


@pytest.mark.parametrize("name", ["article", "dead_letter"])
def test_every_field_documented_and_times_are_logical(name: str) -> None:
    raw = schemas.load_raw(name)
    assert raw["doc"]
    for field in raw["fields"]:
        assert field.get("doc"), f"{name}.{field['name']} has no doc"
        if field["name"].endswith("_at"):
            types = field["type"] if isinstance(field["type"], list) else [field["type"]]
            logical = [t for t in types if isinstance(t, dict)]
            assert logical and logical[0]["logicalType"] == "timestamp-millis"


@pytest.mark.parametrize("name", ["article", "dead_letter"])
def test_current_schema_reads_every_older_version(name: str) -> None:
    olds = sorted(HISTORY.glob(f"{name}.v*.avsc"))
    assert olds, "every published version is kept in schemas/history/"
    current = schemas.parsed(name)
    for old_path in olds:
        old = fastavro.parse_schema(json.loads(old_path.read_text()))
        record = _example(name)
        buffer = io.BytesIO()
        fastavro.writer(buffer, old, [{k: record.get(k) for k in _names(old)}])
        buffer.seek(0)
        (read,) = list(fastavro.reader(buffer, reader_schema=current))
        assert read["schema_version"] >= 1


def _names(schema: dict) -> list[str]:
    return [f["name"] for f in schema["fields"]]


def _example(name: str) -> dict:
    if name == "dead_letter":
        return to_dead_letter_record(
            make_dead_letter("parse", ValueError("bad"), raw_payload=b"\xff", input_uri="x")
        )
    return to_article_record(
        {
            "id": "a" * 32,
            "title": "t",
            "body": "b",
            "raw_sha256": "0" * 64,
            "published_at": dt.datetime(2026, 11, 28, tzinfo=dt.UTC),
            "content_fingerprint": "f" * 32,
            "input_uri": "mem://x",
            "input_format": "text",
            "input_position": 0,
        }
    )


def test_records_round_trip_with_times_in_utc() -> None:
    buffer = io.BytesIO()
    record = _example("article")
    fastavro.writer(buffer, schemas.article_schema(), [record])
    buffer.seek(0)
    (read,) = list(fastavro.reader(buffer))
    assert read["published_at"] == dt.datetime(2026, 11, 28, tzinfo=dt.UTC)
    assert read["schema_version"] == schemas.ARTICLE_SCHEMA_VERSION
    assert read["language"] == "und" and read["canonical_id"] == "a" * 32


def test_v3_reads_v2_files_and_keeps_what_the_input_carries() -> None:
    """A file written with schema v2 reads with v3 (new fields take their defaults), and
    category, tags, author and the other JSON fields reach the Avro record."""
    v2 = fastavro.parse_schema(json.loads((HISTORY / "article.v2.avsc").read_text()))
    record = dict(_example("article"), schema_version=2)
    buffer = io.BytesIO()
    fastavro.writer(buffer, v2, [{k: record.get(k) for k in _names(v2)}])
    buffer.seek(0)
    (read,) = list(fastavro.reader(buffer, reader_schema=schemas.article_schema()))
    assert read["schema_version"] == 2 and read["title"] == "t"
    assert read["category"] is None and read["tags"] == [] and read["author"] is None
    assert read["extra"] == {}
    assert schemas.ARTICLE_SCHEMA_VERSION == 3
    assert json.loads((HISTORY / "article.v3.avsc").read_text()) == schemas.load_raw("article")

    from khabar.transforms.clean import clean_article
    from khabar.transforms.parse import parse_record
    from khabar.transforms.split import RawRecord

    line = json.dumps(
        {
            "title": "عنوان",
            "body": "متن خبر",
            "category": " ورزشی ",
            "tags": ["استقلال تهران", "تمرینات", "استقلال تهران"],
            "author": [{"name": "Sara"}, "Ali"],
            "views": 12,
            "region": "تهران",
            "meta": {"a": [1, 2]},
        },
        ensure_ascii=False,
    ).encode()
    article = clean_article(parse_record(RawRecord("mem://x", 1, "jsonl", line).to_dict()))
    out = to_article_record(dict(article, content_fingerprint="f", language="fa"))
    assert out["category"] == "ورزشی" and out["tags"] == ["استقلال تهران", "تمرینات"]
    assert out["author"] == "Sara, Ali"
    assert out["extra"] == {"views": "12", "region": "تهران", "meta": '{"a": [1, 2]}'}
    buffer = io.BytesIO()
    fastavro.writer(buffer, schemas.article_schema(), [out])
    buffer.seek(0)
    (back,) = list(fastavro.reader(buffer))
    assert back["extra"]["region"] == "تهران" and back["schema_version"] == 3
