"""Avro sinks: articles, duplicates and dead letters.

Batch output goes through ``WriteToAvro``, which writes to temporary files and renames
them into place when the write finalizes, so a killed job never leaves a partial file
where readers look. (In streaming, ``WriteToAvro`` loses records; the streaming sink
writes one file per window, pane and shard itself: ``WriteAvroWindowed``.)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import uuid
from collections.abc import Callable
from typing import Any

import apache_beam as beam
import fastavro
import fastavro.write
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.typehints import typehints
from apache_beam.utils.windowed_value import PaneInfoTiming

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


def counted_records(pcoll: beam.PCollection, kind: str) -> tuple[dict[str, Any], Any]:
    """(schema, the Avro records of ``kind``, each counted as written): the first two steps
    of both writers, applied in the caller's scope (step names ``ToRecord``, ``Count``)."""
    schema, convert, counter = kind_spec(kind)
    records = pcoll | "ToRecord" >> beam.Map(convert) | "Count" >> beam.ParDo(_Count(counter))
    return schema, records


class WriteAvro(beam.PTransform):
    """What both writers take: the output directory, the kind of record, the shards."""

    #: shards when none are given (0: the runner decides)
    default_shards = 0

    def __init__(self, output: str, kind: str, shards: int | None = None) -> None:
        super().__init__()
        self.output = output
        self.kind = kind
        self.shards = self.default_shards if shards is None else shards


class WriteAvroBatch(WriteAvro):
    """Write records to ``DIR/<kind>/<kind>-SSSSS-of-NNNNN.avro`` with the package schema."""

    def expand(self, pcoll):
        schema, records = counted_records(pcoll, self.kind)
        return records | "Write" >> beam.io.WriteToAvro(
            join(self.output, self.kind, self.kind),
            schema=schema,
            file_name_suffix=".avro",
            num_shards=self.shards,
            codec="deflate",
        )


# --------------------------------------------------------------------------- streaming


def _stamp(ts) -> str:
    return dt.datetime.fromtimestamp(float(ts), dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def window_file_naming(output_dir: str, kind: str) -> Callable[..., str]:
    """``date=YYYY-MM-DD/<kind>-<start>-<end>-P<pane>-SS-of-NN.avro`` (window start's
    UTC date; window, pane and shard readable from the name, like Dataflow's
    Pub/Sub-to-Avro template). Creates the local date folder the file is renamed into."""
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


def pane_shard(shards: int) -> Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]:
    """Record -> (shard, record): shard by a hash of the record's id (deterministic, so a
    retried bundle sends each record to the same file)."""

    def key(record: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if shards <= 1:
            return 0, record
        digest = hashlib.sha256(str(record.get("id", "")).encode()).digest()
        return int.from_bytes(digest[:4], "big") % shards, record

    return key


class _WritePaneFn(beam.DoFn):
    """One firing of one window and shard -> one Avro file, written under a temporary
    name and renamed into place (readers never see a partial file; a retried bundle
    writes the same name again). Counts the files, and the late panes and records."""

    def __init__(self, output: str, kind: str, schema: dict[str, Any], shards: int) -> None:
        self.output = output
        self.kind = kind
        self.schema = schema
        self.shards = shards
        self.files = Metrics.counter(M.WINDOWS, M.PANE_FILES)
        self.late_panes = Metrics.counter(M.WINDOWS, M.LATE_PANES)
        self.late_records = Metrics.counter(M.WINDOWS, M.LATE_RECORDS)

    def setup(self) -> None:
        self.naming = window_file_naming(self.output, self.kind)

    def process(
        self,
        element: tuple[int, Any],
        window=beam.DoFn.WindowParam,
        pane=beam.DoFn.PaneInfoParam,
    ):
        shard, records = element
        name = self.naming(window, pane, shard, self.shards, "", None)
        final = join(self.output, self.kind, name)
        temp = join(self.output, ".tmp", self.kind, f"{uuid.uuid4().hex}.avro")
        count = 0
        with FileSystems.create(temp) as handle:
            writer = fastavro.write.Writer(handle, self.schema, codec="deflate")
            for record in records:
                writer.write(record)
                count += 1
            writer.flush()
        FileSystems.rename([temp], [final])
        self.files.inc()
        # Our windows have no early firings, so any pane but the on-time one is late
        # (Beam's trigger driver labels a late pane fired by a processing-time timer
        # EARLY when that timer's time is before the window's end: TestStream's clock).
        if pane is not None and pane.timing in (PaneInfoTiming.LATE, PaneInfoTiming.EARLY):
            self.late_panes.inc()
            self.late_records.inc(count)
        yield final


class WriteAvroWindowed(WriteAvro):
    """Windowed Avro for streaming: one file per window, pane and shard, written when
    the pane fires (one grouping step: ``Shard`` -> ``GroupPanes`` -> ``WritePanes``).

    Not ``WriteToAvro``, which loses records in streaming (docs/BEAM-NOTES.md); and not
    ``fileio.WriteToFiles``, which groups twice per firing (records, then its temporary
    files) through about seven steps per record, and whose sink never sees the pane, so
    late records could not be counted. On the local runner every step costs each bundle
    a few milliseconds of CPU."""

    default_shards = 1

    def expand(self, pcoll):
        schema, records = counted_records(pcoll, self.kind)
        return (
            records
            | "Shard"
            >> beam.Map(pane_shard(self.shards)).with_output_types(
                typehints.Tuple[int, typehints.Any]
            )
            | "GroupPanes" >> beam.GroupByKey()
            | "WritePanes"
            >> beam.ParDo(_WritePaneFn(self.output, self.kind, schema, self.shards))
        )


def streaming_files(output: str, kind: str) -> list[str]:
    """The closed Avro files of one kind in a streaming output (``date=*`` partitions; the
    writers' ``.temp`` folders are skipped); none when nothing was written yet."""
    pattern = join(output, kind, "date=*", "*.avro")
    try:
        return [m.path for m in FileSystems.match([pattern])[0].metadata_list]
    except Exception:  # noqa: BLE001 - nothing written yet
        return []
