"""The replay graph (``khabar replay``): dead letters through the stages again, after a fix.

Each dead letter goes back through the same graph as a normal run (``ProcessArticles``:
parse, clean, language, normalize, dedup) as the raw record it was, with its provenance:

* ``input_uri`` and ``position`` as recorded, so an article gets the same deterministic id
  it would have had in the first run, and a record that fails again keeps pointing at
  its source;
* the original format from ``attributes["format"]`` (sniffed from the bytes when a
  read-level failure happened before the format was known; ``--format`` sets it then),
  and every other attribute (feed title, Pub/Sub attributes) carried through;
* records that failed at the ``read`` stage were whole files (an empty file, malformed
  or refused XML): they are split again (a feed into its items, JSON Lines into lines);
* ``read``/``TooLarge`` dead letters hold only the first bytes of the input, so their
  input is read again from ``input_uri`` (one line for JSON Lines, else the whole file)
  under the new ``--max_article_bytes``; only if what is there now still starts with the
  stored bytes (else it stays dead as ``SourceChanged``; ``SourceUnavailable`` if gone);
* ``attributes["replay_count"]`` counts how often a record has been replayed.

The output is a normal run directory (``articles/``, ``dead_letter/``, ``duplicates/`` with
``--emit_duplicates``, ``_SUMMARY.json``), so ``khabar inspect``, ``report``, ``cat`` and a
later replay work on it. Deduplication runs among the replayed records and against the
articles the first run wrote (``--dedup_against``; by default the run directories the
dead letters sit in): a replayed record that another copy already brought into that run
(same content fingerprint, then same canonical URL) becomes a duplicate of it, in its
story cluster, so the two outputs together hold each article once (near-duplicate story
clusters are found among the replayed records only). Its conservation check: records in
(dead letters read, whole files counted as the records they split into) = articles
written + duplicates + dead letters still dead.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.io.avroio import ReadAllFromAvro
from apache_beam.metrics import Metrics

from khabar.pipeline.graph.batch import JobSettings, process_and_write
from khabar.pipeline.job.progress import ProgressChannel
from khabar.pipeline.stages.read import ExpandUnits, ReadFailure
from khabar.pipeline.stages.sources import iter_lines_limited, open_input, read_limited
from khabar.transforms import metrics as M
from khabar.transforms.common import (
    ARTICLES,
    DEAD_LETTER,
    DEFAULT_MAX_RECORD_BYTES,
    EmptyInput,
    StageError,
    TooLarge,
)
from khabar.transforms.split import FEED_FORMATS, FORMATS, RawRecord, detect_format, split_records

REPLAY_COUNT = "replay_count"


class SourceUnavailable(StageError):
    """A truncated dead letter's input can no longer be read."""


class SourceChanged(StageError):
    """A truncated dead letter's input no longer starts with the stored bytes."""


# --------------------------------------------------------------------------- dead letter -> raw


def _replay_count(attrs: dict[str, str]) -> str:
    try:
        previous = int(attrs.get(REPLAY_COUNT, "0"))
    except ValueError:
        previous = 0
    return str(previous + 1)


def _refetch(uri: str, fmt: str | None, position: int | None, limit: int) -> bytes:
    """The input of a truncated read-stage dead letter, read again under ``limit``."""
    try:
        handle = open_input(uri)  # decompressed a bounded chunk at a time
    except Exception as exc:  # noqa: BLE001 - any storage error: the input is gone
        raise SourceUnavailable(f"cannot read {uri} again: {type(exc).__name__}: {exc}") from None
    with handle:
        if fmt == "jsonl" and position is not None:
            for lineno, line, truncated in iter_lines_limited(handle, limit):
                if lineno == position:
                    if truncated:
                        raise TooLarge(
                            f"JSON line above the limit of {limit} bytes (truncated here)"
                        )
                    return line
            raise SourceUnavailable(f"{uri} has no line {position} any more")
        data, more = read_limited(handle, limit)
    if more:
        raise TooLarge(f"file above the limit of {limit} bytes; raw_payload holds the first part")
    return data


def raw_records_for(
    dead: dict[str, Any],
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    format_override: str | None = None,
) -> tuple[list[RawRecord], str]:
    """The raw record(s) to process again for one dead letter, and how they were made
    (``record``, ``resplit`` or ``refetched``). Raises a ``StageError`` when the record
    cannot even be rebuilt (it then stays a dead letter at stage ``read``)."""
    attrs = {str(k): str(v) for k, v in (dead.get("attributes") or {}).items()}
    fmt = attrs.pop("format", None) or format_override
    attrs[REPLAY_COUNT] = _replay_count(attrs)
    uri: str = dead["input_uri"]
    position: int | None = dead.get("position")
    payload = bytes(dead["raw_payload"])
    how = "record"
    if dead["stage"] == "read":
        if dead["error_type"] == "TooLarge":
            fresh = _refetch(uri, fmt, position, max_record_bytes)
            if not fresh.startswith(payload):
                raise SourceChanged(
                    f"{uri} changed since the failure (it no longer starts with the stored "
                    f"{len(payload)} bytes); not replayed"
                )
            payload, how = fresh, "refetched"
            if fmt == "jsonl" and position is not None:
                return [RawRecord(uri, position, "jsonl", payload, attrs)], how
        fmt = detect_format(uri, payload[:4096], fmt)
        records = list(split_records(uri, payload, fmt, max_record_bytes))
        if not records:
            raise EmptyInput("feed without items" if fmt in FEED_FORMATS else "no records")
        for record in records:
            record.attributes = {**attrs, **record.attributes}
        return records, ("resplit" if how == "record" else how)
    fmt = detect_format(uri, payload[:4096], fmt)
    if fmt in FEED_FORMATS and fmt not in FORMATS:  # a whole feed failed past the read stage
        records = list(split_records(uri, payload, fmt, max_record_bytes))
        for record in records:
            record.attributes = {**attrs, **record.attributes}
        return records, "resplit"
    return [RawRecord(uri, position or 0, fmt, payload, attrs)], how


class DeadLetterReader:
    """The reader of dead letters being replayed (``stages/read.py``): a dead letter ->
    raw records; one that cannot be rebuilt fails again (stage ``read``, the stored bytes
    kept, ``replay_count`` raised)."""

    def __init__(self, max_record_bytes: int, format_override: str | None) -> None:
        self.max_record_bytes = max_record_bytes
        self.format_override = format_override
        self.dead_in = Metrics.counter(M.REPLAY, M.DEAD_LETTERS_IN)
        self.resplit = Metrics.counter(M.REPLAY, M.RESPLIT_DEAD_LETTERS)
        self.resplit_records = Metrics.counter(M.REPLAY, M.RESPLIT_RECORDS)
        self.refetched = Metrics.counter(M.REPLAY, M.REFETCHED)
        self.not_rebuilt = Metrics.counter(M.REPLAY, M.NOT_REBUILT)

    def __call__(self, dead: dict[str, Any]) -> Iterator[RawRecord | ReadFailure]:
        self.dead_in.inc()
        Metrics.counter(M.REPLAY, M.replayed_from(dead["stage"], dead["error_type"])).inc()
        try:
            records, how = raw_records_for(dead, self.max_record_bytes, self.format_override)
        except Exception as exc:  # noqa: BLE001 - one bad dead letter never stops a replay
            self.not_rebuilt.inc()
            attrs = {str(k): str(v) for k, v in (dead.get("attributes") or {}).items()}
            attrs[REPLAY_COUNT] = _replay_count(attrs)
            yield ReadFailure(
                exc, bytes(dead["raw_payload"]), dead["input_uri"], dead.get("position"), attrs
            )
            return
        if how == "refetched":
            self.refetched.inc()
        if len(records) != 1 or how != "record":
            self.resplit.inc()
            self.resplit_records.inc(len(records))
        yield from records


def build_replay(
    p: beam.Pipeline,
    files: list[str],
    output: str,
    settings: JobSettings | None = None,
    progress: ProgressChannel | None = None,
    known_files: list[str] | None = None,
) -> None:
    """Dead-letter Avro ``files`` -> the same stages and sinks as ``build_batch``;
    replayed copies of the articles in ``known_files`` (an earlier run's) are duplicates."""
    settings = settings or JobSettings()
    known = None
    if known_files:
        known = (
            p | "KnownFiles" >> beam.Create(known_files) | "ReadKnownArticles" >> ReadAllFromAvro()
        )
    expanded = (
        p
        | "DeadLetterFiles" >> beam.Create(files)
        | "ReadDeadLetters" >> ReadAllFromAvro()
        | "Expand"
        >> beam.ParDo(
            ExpandUnits(DeadLetterReader(settings.max_record_bytes, settings.format))
        ).with_outputs(DEAD_LETTER, main=ARTICLES)
    )
    process_and_write(expanded[ARTICLES], expanded[DEAD_LETTER], output, settings, progress, known)
