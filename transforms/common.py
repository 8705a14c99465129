"""Shared plumbing for khabar's stage cores: the in-flight article shape and dead letters.

Every stage is a Beam-free *core* (a callable built once per worker, here in
``transforms/``) wrapped by ``khabar.pipeline.stages.stage.StageFn``, which runs the core
on one article and turns any exception into a ``DeadLetter`` record (built here) on the
``dead_letter`` tagged output, so a bad record never crashes the job and is never
silently dropped. A core counts what it saw through a ``Count`` it is given (Beam
counters in a job, nothing in a plain loop); nothing under ``transforms/`` imports Beam.

In flight an article is a ``records.Article`` (a typed dict: the Avro ``Article`` fields
plus private keys starting with ``_``; ``_raw``: the raw payload bytes, kept so a later
stage can still dead-letter the record with its original bytes). Private keys are removed
by the sink. The parse stage takes a ``records.RawRecordDict`` instead; each shape has its
own dead-letter builder.
"""

from __future__ import annotations

import datetime as _dt
import traceback
from collections.abc import Callable
from typing import Any

from khabar.schemas.version import PIPELINE_VERSION
from khabar.transforms.records import Article, RawRecordDict

ARTICLES = "articles"
DEAD_LETTER = "dead_letter"
DUPLICATES = "duplicates"

Core = Callable[[Any], Article | None]
#: How a core counts what it saw: ``count(namespace, name)`` adds one to that counter
#: (names from ``transforms.metrics``).
Count = Callable[[str, str], None]


def no_count(namespace: str, name: str) -> None:
    """The ``Count`` of a core run outside a job: counts nothing."""


MAX_MESSAGE_CHARS = 2000

#: Errors worth retrying in place (a flaky disk, network or service), not bad input.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    InterruptedError,
    BlockingIOError,
)
TRANSIENT_ATTEMPTS = 3
TRANSIENT_BACKOFF = 0.2


#: The largest raw record (article, JSON line, feed file) read and parsed.
DEFAULT_MAX_RECORD_BYTES = 5 * 1024 * 1024
#: The most records read from one file (feed items, JSON lines).
DEFAULT_MAX_ITEMS = 1_000_000


class StageError(Exception):
    """An expected, named failure of a stage on one record (bad input, not a bug)."""


class TooLarge(StageError):
    """The record is above the configured size limit."""


class EmptyInput(StageError):
    """An empty file or an article without text."""


class InvalidRecord(StageError):
    """A record with the wrong shape (e.g. a JSON line that is not an object)."""


def utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def make_dead_letter(
    stage: str,
    error: BaseException | str,
    *,
    raw_payload: bytes,
    input_uri: str,
    position: int | None = None,
    error_type: str | None = None,
    attributes: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Build a ``DeadLetter`` record (see ``schemas/dead_letter.avsc``)."""
    if isinstance(error, BaseException):
        etype = error_type or type(error).__name__
        message = str(error) or etype
        if not isinstance(error, StageError):
            tb = traceback.format_exception_only(type(error), error)
            message = "".join(tb).strip()
    else:
        etype = error_type or "Error"
        message = error
    return {
        "stage": stage,
        "error_type": etype,
        "error_message": message[:MAX_MESSAGE_CHARS],
        "input_uri": input_uri,
        "position": position,
        "raw_payload": bytes(raw_payload),
        "attributes": dict(attributes or {}),
        "failed_at": utcnow(),
        "pipeline_version": PIPELINE_VERSION,
    }


def _dead_letter(
    stage: str,
    error: BaseException,
    payload: bytes,
    uri: str,
    position: int | None,
    attributes: dict[str, str] | None,
    fmt: str | None,
) -> dict[str, Any]:
    """A dead letter whose attributes also say the input's format (when known)."""
    attributes = dict(attributes or {})
    if fmt:
        attributes.setdefault("format", fmt)
    return make_dead_letter(
        stage, error, raw_payload=payload, input_uri=uri, position=position, attributes=attributes
    )


def dead_letter_from_raw(stage: str, error: BaseException, raw: RawRecordDict) -> dict[str, Any]:
    """Dead letter for a raw record (the parse stage's input)."""
    return _dead_letter(
        stage,
        error,
        raw.get("payload", b""),
        raw.get("input_uri", ""),
        raw.get("position"),
        raw.get("attributes"),
        raw.get("format"),
    )


def dead_letter_from_article(stage: str, error: BaseException, article: Article) -> dict[str, Any]:
    """Dead letter for an in-flight article, with the raw bytes it was parsed from."""
    raw = article.get("_raw")
    return _dead_letter(
        stage,
        error,
        b"" if raw is None else raw,
        article.get("input_uri", ""),
        article.get("input_position"),
        article.get("_attributes"),
        article.get("input_format"),
    )


DeadLetterOf = Callable[[str, BaseException, Any], dict[str, Any]]
