"""Avro sinks: articles, duplicates and dead letters.

Batch output goes through ``WriteToAvro``, which writes to temporary files and renames
them into place when the write finalizes, so a killed job never leaves a partial file
where readers look. (In streaming, ``WriteToAvro`` loses records; the streaming sinks
use ``fileio.WriteToFiles`` instead: see BEAM-NOTES.md.)
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

import schemas
from pipeline.version import PIPELINE_VERSION
from transforms.common import Article, utcnow

ARTICLES_DIR = "articles"
DUPLICATES_DIR = "duplicates"
DEAD_LETTER_DIR = "dead_letter"
OUTPUT_DIRS = (ARTICLES_DIR, DUPLICATES_DIR, DEAD_LETTER_DIR)


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


def to_article_record(article: Article) -> dict[str, Any]:
    """The Avro ``Article`` record: private keys dropped, run fields stamped."""
    record = {name: article.get(name) for name in schemas.field_names("article")}
    record["ingested_at"] = article.get("ingested_at") or utcnow()
    record["pipeline_version"] = PIPELINE_VERSION
    record["schema_version"] = schemas.ARTICLE_SCHEMA_VERSION
    record["canonical_id"] = article.get("canonical_id") or article["id"]
    record["word_count"] = int(article.get("word_count") or 0)
    record["language"] = article.get("language") or "und"
    record["language_confidence"] = float(article.get("language_confidence") or 0.0)
    record["script"] = article.get("script") or "Zyyy"
    record["entities"] = list(article.get("entities") or [])
    return record


def to_dead_letter_record(dead: dict[str, Any]) -> dict[str, Any]:
    record = {name: dead.get(name) for name in schemas.field_names("dead_letter")}
    record["schema_version"] = schemas.DEAD_LETTER_SCHEMA_VERSION
    record["attributes"] = {str(k): str(v) for k, v in (dead.get("attributes") or {}).items()}
    return record


class _Count(beam.DoFn):
    def __init__(self, name: str) -> None:
        self.counter = Metrics.counter("khabar", name)

    def process(self, element):
        self.counter.inc()
        yield element


class WriteAvroBatch(beam.PTransform):
    """Write records to ``DIR/<kind>/<kind>-SSSSS-of-NNNNN.avro`` with the package schema."""

    def __init__(self, output: str, kind: str, num_shards: int = 0) -> None:
        super().__init__()
        self.output = output
        self.kind = kind
        self.num_shards = num_shards

    def expand(self, pcoll):
        if self.kind == DEAD_LETTER_DIR:
            schema, convert, counter = (
                schemas.dead_letter_schema(),
                to_dead_letter_record,
                "written_dead_letters",
            )
        else:
            schema, convert = schemas.article_schema(), to_article_record
            counter = "written_" + self.kind
        return (
            pcoll
            | "ToRecord" >> beam.Map(convert)
            | "Count" >> beam.ParDo(_Count(counter))
            | "Write"
            >> beam.io.WriteToAvro(
                join(self.output, self.kind, self.kind),
                schema=schema,
                file_name_suffix=".avro",
                num_shards=self.num_shards,
                codec="deflate",
            )
        )
