"""The streaming job: Pub/Sub -> the batch stages unchanged -> stateful dedup with a TTL
-> event-time windows -> windowed Avro files.

    ReadFromPubSub(with_attributes) -> ExpandUnits(MessageReader) -> CoreStages
        -> DeduplicateStreaming
        -> EventTime(published_at, clamped) -> FixedWindows(+ allowed lateness)
        -> WriteToFiles(fastavro sink): OUTPUT/articles/date=YYYY-MM-DD/...

Locally this runs on the BundleBasedDirectRunner against the Pub/Sub emulator (real
streaming: files appear as windows close); on Dataflow against Pub/Sub itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms import trigger, window
from apache_beam.utils.timestamp import Duration, Timestamp

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
from khabar.transforms.common import ARTICLES, DEAD_LETTER, DUPLICATES, StageError
from khabar.transforms.parse import (
    DEFAULT_MAX_RECORD_BYTES,
    FORMATS,
    RawRecord,
    detect_format,
    split_records,
)

# Message attributes set by `khabar poll` (any publisher may set them).
ATTR_URI = "input_uri"
ATTR_POSITION = "position"
ATTR_FORMAT = "format"
ATTR_UNIT = "unit"  # "record" (default) or "file" (the pipeline splits it)

#: Published dates more than this far ahead of arrival are not trusted as event time.
MAX_FUTURE_SKEW = 300


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
        fmt = attrs.get(ATTR_FORMAT) or detect_format(uri, data[:4096])
        try:
            if attrs.get(ATTR_UNIT) == "file" or fmt == "feed":
                records = list(split_records(uri, data, fmt, self.max_record_bytes))
            elif fmt not in FORMATS:
                raise StageError(f"unknown format attribute {fmt!r}")
            else:
                records = [RawRecord(uri, position, fmt, data)]
        except StageError as exc:
            yield ReadFailure(exc, data, uri, position, attrs)
            return
        for record in records:
            record.attributes = {**attrs, **record.attributes}
            yield record


class AssignEventTime(beam.DoFn):
    """Event time = ``published_at`` when present and sane, else the arrival time.

    Sane: not more than ``MAX_FUTURE_SKEW`` s ahead of arrival and not older than the
    allowed lateness. Older records are counted as late and stamped with their arrival
    time, so they are still written (in the current window), never dropped by windowing.
    """

    def __init__(self, allowed_lateness: int) -> None:
        self.allowed_lateness = allowed_lateness
        self.published = Metrics.counter(M.EVENT_TIME, M.PUBLISHED_AT)
        self.arrival = Metrics.counter(M.EVENT_TIME, M.ARRIVAL_NO_DATE)
        self.late = Metrics.counter(M.EVENT_TIME, M.LATE_RECORDS)
        self.future = Metrics.counter(M.EVENT_TIME, M.FUTURE_DATED)

    def process(self, article: dict, timestamp=beam.DoFn.TimestampParam):
        published: dt.datetime | None = article.get("published_at")
        if published is None:
            self.arrival.inc()
            yield window.TimestampedValue(article, timestamp)
            return
        event = Timestamp.from_utc_datetime(published.astimezone(dt.UTC))
        if event > timestamp + Duration(seconds=MAX_FUTURE_SKEW):
            self.future.inc()
            yield window.TimestampedValue(article, timestamp)
        elif event < timestamp - Duration(seconds=self.allowed_lateness):
            self.late.inc()
            yield window.TimestampedValue(article, timestamp)
        else:
            self.published.inc()
            yield window.TimestampedValue(article, event)


def windowing(window_seconds: int, allowed_lateness: int) -> beam.WindowInto:
    return beam.WindowInto(
        window.FixedWindows(window_seconds),
        trigger=trigger.AfterWatermark(late=trigger.AfterCount(1)),
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
        timed = {
            kind: deduped[kind]
            | f"EventTime{kind.title()}" >> beam.ParDo(AssignEventTime(self.allowed_lateness))
            for kind in ("articles", DUPLICATES)
        }
        return {
            ARTICLES: timed["articles"]
            | "WindowArticles" >> windowing(self.window_seconds, self.allowed_lateness),
            DUPLICATES: timed[DUPLICATES]
            | "WindowDuplicates" >> windowing(self.window_seconds, self.allowed_lateness),
            DEAD_LETTER: dead
            | "WindowDeadLetters" >> windowing(self.window_seconds, self.allowed_lateness),
        }


def build_streaming(
    p: beam.Pipeline,
    subscription: str,
    output: str,
    settings: JobSettings | None = None,
) -> None:
    from apache_beam.io.gcp.pubsub import ReadFromPubSub

    settings = settings or JobSettings()
    expanded = (
        p
        | "ReadPubSub" >> ReadFromPubSub(subscription=subscription, with_attributes=True)
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
