"""Avro sinks: articles, duplicates and dead letters.

Batch output goes through ``WriteToAvro``, which writes to temporary files and renames
them into place when the write finalizes, so a killed job never leaves a partial file
where readers look. (In streaming, ``WriteToAvro`` loses records; the streaming sinks
use ``fileio.WriteToFiles`` instead: see docs/BEAM-NOTES.md.)
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from typing import Any

import apache_beam as beam
import fastavro
import fastavro.write
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.options.value_provider import StaticValueProvider

from khabar import schemas
from khabar.schemas.version import PIPELINE_VERSION
from khabar.transforms import metrics as M
from khabar.transforms.common import Article, utcnow

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
    record["tags"] = [str(t) for t in article.get("tags") or []]
    record["extra"] = {str(k): str(v) for k, v in (article.get("extra") or {}).items()}
    return record


def to_dead_letter_record(dead: dict[str, Any]) -> dict[str, Any]:
    record = {name: dead.get(name) for name in schemas.field_names("dead_letter")}
    record["schema_version"] = schemas.DEAD_LETTER_SCHEMA_VERSION
    record["attributes"] = {str(k): str(v) for k, v in (dead.get("attributes") or {}).items()}
    return record


class _Count(beam.DoFn):
    def __init__(self, name: str) -> None:
        self.counter = Metrics.counter(M.RUN, name)

    def process(self, element):
        self.counter.inc()
        yield element


def kind_spec(kind: str) -> tuple[dict[str, Any], Callable[[dict], dict], str]:
    """(schema, record converter, written counter) for an output kind."""
    if kind == DEAD_LETTER_DIR:
        return schemas.dead_letter_schema(), to_dead_letter_record, M.WRITTEN_DEAD_LETTERS
    if kind == DUPLICATES_DIR:
        return schemas.article_schema(), to_article_record, M.WRITTEN_DUPLICATES
    return schemas.article_schema(), to_article_record, M.WRITTEN_ARTICLES


class WriteAvro(beam.PTransform):
    """What both writers do: ``ToRecord`` (the Avro record of ``kind``), ``Count`` (as
    written), then ``Write`` with the writer a subclass gives for the schema."""

    #: shards when none are given (0: the runner decides)
    default_shards = 0

    def __init__(self, output: str, kind: str, shards: int | None = None) -> None:
        super().__init__()
        self.output = output
        self.kind = kind
        self.shards = self.default_shards if shards is None else shards

    def writer(self, schema: dict[str, Any]) -> beam.PTransform:
        raise NotImplementedError

    def expand(self, pcoll):
        schema, convert, counter = kind_spec(self.kind)
        records = pcoll | "ToRecord" >> beam.Map(convert) | "Count" >> beam.ParDo(_Count(counter))
        return records | "Write" >> self.writer(schema)


class WriteAvroBatch(WriteAvro):
    """Write records to ``DIR/<kind>/<kind>-SSSSS-of-NNNNN.avro`` with the package schema."""

    def writer(self, schema: dict[str, Any]) -> beam.PTransform:
        return beam.io.WriteToAvro(
            join(self.output, self.kind, self.kind),
            schema=schema,
            file_name_suffix=".avro",
            num_shards=self.shards,
            codec="deflate",
        )


# --------------------------------------------------------------------------- streaming


class AvroFileSink(fileio.FileSink):
    """A ``fileio.FileSink`` writing Avro with fastavro (one container file per shard)."""

    def __init__(self, schema: dict[str, Any], codec: str = "deflate") -> None:
        self.schema = schema
        self.codec = codec
        self._writer: Any = None

    def open(self, fh) -> None:
        self._writer = fastavro.write.Writer(fh, self.schema, codec=self.codec)

    def write(self, record) -> None:
        self._writer.write(record)

    def flush(self) -> None:
        self._writer.flush()


def _stamp(ts) -> str:
    return dt.datetime.fromtimestamp(float(ts), dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def window_file_naming(output_dir: str, kind: str) -> Callable[..., str]:
    """``date=YYYY-MM-DD/<kind>-<start>-<end>-P<pane>-SS-of-NN.avro`` (window start's
    UTC date; window, pane and shard readable from the name, like Dataflow's
    Pub/Sub-to-Avro template). Creates the date folder: ``WriteToFiles`` renames into
    ``path/<name>`` and silently skips a rename whose folder does not exist."""
    base = join(output_dir, kind)

    def naming(window, pane, shard_index, total_shards, compression, destination) -> str:
        start = getattr(window, "start", None)
        end = getattr(window, "end", None)
        if start is None or end is None:  # global window
            day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
            span = "global"
        else:
            day = dt.datetime.fromtimestamp(float(start), dt.UTC).strftime("%Y-%m-%d")
            span = f"{_stamp(start)}-{_stamp(end)}"
        pane_index = getattr(pane, "index", 0) if pane is not None else 0
        folder = f"date={day}"
        if "://" not in base:
            os.makedirs(os.path.join(base, folder), exist_ok=True)
        shards = total_shards or 1
        shard = shard_index or 0
        return f"{folder}/{kind}-{span}-P{pane_index}-{shard:02d}-of-{shards:02d}.avro"

    return naming


class WriteAvroWindowed(WriteAvro):
    """Windowed Avro for streaming: ``fileio.WriteToFiles`` with a fastavro sink, one
    file per window, pane and shard (``WriteToAvro`` loses records in streaming)."""

    default_shards = 1

    def writer(self, schema: dict[str, Any]) -> beam.PTransform:
        return fileio.WriteToFiles(
            path=join(self.output, self.kind),
            file_naming=window_file_naming(self.output, self.kind),
            sink=lambda _dest: AvroFileSink(schema),
            shards=self.shards,
            max_writers_per_bundle=0,
            temp_directory=StaticValueProvider(str, join(self.output, ".tmp", self.kind)),
        )


def streaming_files(output: str, kind: str) -> list[str]:
    """The closed Avro files of one kind in a streaming output (``date=*`` partitions; the
    writers' ``.temp`` folders are skipped); none when nothing was written yet."""
    pattern = join(output, kind, "date=*", "*.avro")
    try:
        return [m.path for m in FileSystems.match([pattern])[0].metadata_list]
    except Exception:  # noqa: BLE001 - nothing written yet
        return []
