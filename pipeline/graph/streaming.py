"""The streaming job: Pub/Sub -> the batch stages unchanged -> stateful dedup with a TTL
-> arrival-time windows -> one Avro file per window, pane and shard.

    ReadFromPubSub(with_attributes) -> ExpandUnits(MessageReader) -> CoreStages
        -> DeduplicateStreaming (global window, state with a TTL)
        -> FixedWindows on the arrival time (late panes batched, counted)
        -> WritePanes (fastavro): OUTPUT/articles/date=YYYY-MM-DD/...

Windows are on the **arrival time**: the timestamp the read gives each message (its
Pub/Sub publish time, on Dataflow as locally), the time the read's watermark follows.
Nothing re-stamps a record, so in normal operation no record is behind the watermark
and each window is written once, in one file per shard, as soon as the watermark passes
its end. (Windows on ``published_at`` made every record late whose feed date was older
than the open window: every item of a real feed, and on a 1 s poll about one in four of
the items of a live one; each late record then fired a pane, and a file, of its own.)
``published_at`` stays a field of the record.

Locally this runs on the BundleBasedDirectRunner against the Pub/Sub emulator (real
streaming: files appear as windows close); on Dataflow against Pub/Sub itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms import trigger, window
from apache_beam.utils.timestamp import Duration

from khabar.pipeline.dedup.compose import deduplicate_stream
from khabar.pipeline.graph.batch import CoreStages, JobSettings
from khabar.pipeline.stages.read import ExpandUnits, ReadFailure
from khabar.pipeline.stages.sinks import (
    ARTICLES_DIR,
    DEAD_LETTER_DIR,
    DUPLICATES_DIR,
    WriteAvroWindowed,
)
from khabar.transforms import metrics as M
from khabar.transforms.common import (
    ARTICLES,
    DEAD_LETTER,
    DEFAULT_MAX_RECORD_BYTES,
    DUPLICATES,
    InvalidRecord,
    StageError,
)
from khabar.transforms.split import FORMATS, RawRecord, detect_format, split_all

# Message attributes set by `khabar poll` (any publisher may set them).
ATTR_URI = "input_uri"
ATTR_POSITION = "position"
ATTR_FORMAT = "format"
ATTR_UNIT = "unit"  # "record" (default), "file" (the pipeline splits it) or "ref"
#: The poller's deterministic item key. On Dataflow it is the Pub/Sub ``id_label``
#: (publisher retries within 10 minutes are dropped by the service); everywhere the
#: stateful dedup drops a redelivered record with the same key (``delivery_id``).
ATTR_ITEM = "khabar_item"
#: Largest file a ``unit=ref`` message may name (the pipeline reads it itself).
MAX_REFERENCE_BYTES = 512 * 1024 * 1024

def read_reference(uri: str, limit: int = MAX_REFERENCE_BYTES) -> bytes:
    """The bytes of the file a ``unit=ref`` message names (local path or any FileSystems
    URI); ValueError above ``limit``."""
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(uri, compression_type="uncompressed") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"referenced file above {limit} bytes")
    return data


def message_records(
    data: bytes, attributes: dict[str, str], max_record_bytes: int
) -> tuple[list[RawRecord], BaseException | None]:
    """The raw records one message carries, and the failure that ended them if any (never
    raises): a record; a whole file, split here (JSON Lines chunks keep their line
    numbers through ``line_offset``); or a reference to a big file, read here."""
    uri = attributes.get(ATTR_URI, "")
    unit = attributes.get(ATTR_UNIT)
    try:
        fmt = attributes.get(ATTR_FORMAT) or detect_format(uri, data[:4096])
    except Exception as exc:  # noqa: BLE001 - an unreadable message is dead-lettered
        return [], exc
    if unit == "ref":
        try:
            data = read_reference(data.decode("utf-8"))
        except (OSError, ValueError) as exc:
            return [], InvalidRecord(f"cannot read the referenced file: {exc}")
        unit = "file"
    if unit == "file" or fmt == "feed":
        records, error = split_all(uri, data, fmt, max_record_bytes)
        offset = int(attributes.get("line_offset", "0") or 0)
        for record in records:
            record.position += offset
        return records, error
    position = int(attributes.get(ATTR_POSITION, "0") or 0)
    return [RawRecord(uri, position, fmt, data)], None


class MessageReader:
    """The reader of Pub/Sub messages (``stages/read.py``): a message -> raw record(s),
    whole-file messages split here, or a failure of the message."""

    def __init__(self, subscription: str, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES):
        self.subscription = subscription
        self.max_record_bytes = max_record_bytes
        self.messages = Metrics.counter(M.RUN, M.MESSAGES_IN)

    def __call__(self, message: Any) -> Iterator[RawRecord | ReadFailure]:
        self.messages.inc()
        attrs = {str(k): str(v) for k, v in (getattr(message, "attributes", None) or {}).items()}
        data: bytes = bytes(getattr(message, "data", b"") or b"")
        message_id = getattr(message, "message_id", None) or ""
        uri = attrs.get(ATTR_URI) or f"pubsub://{self.subscription}/{message_id}"
        try:
            position = int(attrs.get(ATTR_POSITION, "0"))
        except ValueError:
            position = 0
        fmt = attrs.get(ATTR_FORMAT) or ""
        try:
            fmt = attrs.get(ATTR_FORMAT) or detect_format(uri, data[:4096])
            if attrs.get(ATTR_UNIT) in ("file", "ref") or fmt == "feed":
                context = {**attrs, ATTR_FORMAT: fmt, ATTR_URI: uri}
                records, error = message_records(data, context, self.max_record_bytes)
            elif fmt not in FORMATS:
                records, error = [], StageError(f"unknown format attribute {fmt!r}")
            else:
                records, error = [RawRecord(uri, position, fmt, data)], None
        except Exception as exc:  # noqa: BLE001 - one bad message never stops the stream
            records, error = [], exc
        for record in records:
            record.attributes = {**attrs, **record.attributes}
            yield record
        if error is not None:
            where = len(records) if records else position
            yield ReadFailure(error, data, uri, where, attrs)


#: Late records (behind the watermark, within the allowed lateness) that arrive within
#: this many seconds of the first go into one late pane, written as one file.
LATE_PANE_SECONDS = 10


def windowing(window_seconds: int, allowed_lateness: int) -> beam.WindowInto:
    """Fixed windows on the element timestamps (arrival). The on-time pane fires when
    the watermark passes the window's end; late records, if any, are gathered for
    ``LATE_PANE_SECONDS`` (at most one window) into one more pane per window."""
    late_delay = min(LATE_PANE_SECONDS, window_seconds)
    return beam.WindowInto(
        window.FixedWindows(window_seconds),
        trigger=trigger.AfterWatermark(late=trigger.AfterProcessingTime(late_delay)),
        allowed_lateness=Duration(seconds=allowed_lateness),
        accumulation_mode=trigger.AccumulationMode.DISCARDING,
    )


class ProcessStream(beam.PTransform):
    """Raw records (timestamped with arrival time) -> windowed survivors, duplicates and
    dead letters. The per-record stages are the batch ones (``CoreStages``)."""

    def __init__(self, settings: JobSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or JobSettings()
        self.window_seconds = self.settings.window_seconds
        self.allowed_lateness = self.settings.allowed_lateness

    def expand(self, raw):
        articles, dead = raw | "Stages" >> CoreStages(self.settings)
        deduped = deduplicate_stream(articles, self.settings.ttl_seconds, self.settings.near)
        return {
            ARTICLES: deduped[ARTICLES]
            | "WindowArticles" >> windowing(self.window_seconds, self.allowed_lateness),
            DUPLICATES: deduped[DUPLICATES]
            | "WindowDuplicates" >> windowing(self.window_seconds, self.allowed_lateness),
            DEAD_LETTER: dead
            | "WindowDeadLetters" >> windowing(self.window_seconds, self.allowed_lateness),
        }


def build_streaming(
    p: beam.Pipeline,
    subscription: str,
    output: str,
    settings: JobSettings | None = None,
    *,
    id_label: str | None = None,
) -> None:
    """``id_label``: Pub/Sub attribute Dataflow deduplicates publisher retries by (the
    DirectRunner refuses one; pass ``ATTR_ITEM`` on Dataflow)."""
    from apache_beam.io.gcp.pubsub import ReadFromPubSub

    settings = settings or JobSettings()
    expanded = (
        p
        | "ReadPubSub"
        >> ReadFromPubSub(subscription=subscription, with_attributes=True, id_label=id_label)
        | "Expand"
        >> beam.ParDo(
            ExpandUnits(MessageReader(subscription, settings.max_record_bytes))
        ).with_outputs(DEAD_LETTER, main=ARTICLES)
    )
    out = expanded[ARTICLES] | "Process" >> ProcessStream(settings)
    read_dead = expanded[DEAD_LETTER] | "WindowReadDead" >> windowing(
        settings.window_seconds, settings.allowed_lateness
    )
    dead = (read_dead, out[DEAD_LETTER]) | "AllDeadLetters" >> beam.Flatten()
    out[ARTICLES] | "WriteArticles" >> WriteAvroWindowed(output, ARTICLES_DIR)
    dead | "WriteDeadLetters" >> WriteAvroWindowed(output, DEAD_LETTER_DIR)
    # Streaming always writes duplicates (linked to their survivor): the files are the
    # audit trail that accounts for every message (see khabar.pipeline.job.run.run_streaming).
    out[DUPLICATES] | "WriteDuplicates" >> WriteAvroWindowed(output, DUPLICATES_DIR)
