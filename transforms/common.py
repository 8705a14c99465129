"""Shared plumbing for khabar's stages: the in-flight article shape and dead letters.

Every stage is a Beam-free *core* (a callable built once per worker) wrapped by
:class:`StageFn`, which runs the core on one article and turns any exception into a
``DeadLetter`` record on the ``dead_letter`` tagged output, so a bad record never
crashes the job and is never silently dropped.

In flight an article is a ``records.Article`` (a typed dict: the Avro ``Article`` fields
plus private keys starting with ``_``; ``_raw``: the raw payload bytes, kept so a later
stage can still dead-letter the record with its original bytes). Private keys are removed
by the sink. The parse stage takes a ``records.RawRecordDict`` instead; each shape has its
own dead-letter builder.
"""

from __future__ import annotations

import datetime as _dt
import threading
import time
import traceback
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.pvalue import TaggedOutput

from khabar.schemas.version import PIPELINE_VERSION
from khabar.transforms import metrics as M
from khabar.transforms.records import Article, RawRecordDict

ARTICLES = "articles"
DEAD_LETTER = "dead_letter"
DUPLICATES = "duplicates"

Core = Callable[[Any], Article | None]

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


class StageError(Exception):
    """An expected, named failure of a stage on one record (bad input, not a bug)."""


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


#: Stage cores built in this thread, by ``StageFn.cache_key`` (least recently used
#: dropped beyond ``MAX_CACHED_CORES``: one job has a handful of stages).
_CORES = threading.local()
MAX_CACHED_CORES = 12


class StageFn(beam.DoFn):
    """Run a Beam-free core on each article; exceptions become dead letters.

    ``core_factory`` is called once per DoFn instance in ``setup()`` (heavy objects
    such as hazm's Normalizer or a language model are built there, never per element).
    The core returns the (possibly new) article, or ``None`` when it consumed it.
    """

    def __init__(
        self,
        stage: str,
        core_factory: Callable[[], Core],
        dead_letter_of: DeadLetterOf = dead_letter_from_article,
    ) -> None:
        self.stage = stage
        self.core_factory = core_factory
        self.dead_letter_of = dead_letter_of
        self.core: Core | None = None
        # one key per stage as built: every copy of this DoFn unpickled in a process
        # finds the core its thread already built
        self.cache_key = f"{stage}/{uuid.uuid4().hex}"
        self.ok = Metrics.counter(M.stage(stage), M.OK)
        self.failed = Metrics.counter(M.stage(stage), M.DEAD_LETTER)
        self.retried = Metrics.counter(M.stage(stage), M.RETRIED)

    def setup(self) -> None:
        # The local streaming runner (BundleBasedDirectRunner) unpickles a fresh DoFn and
        # calls setup() for every bundle: rebuilding hazm's tables and the models each
        # time was 71% of its CPU (py-spy) and held it to about an item a second. The
        # core is built once per thread and stage and reused.
        cores: OrderedDict[str, Core] = _CORES.__dict__.setdefault("cores", OrderedDict())
        core = cores.get(self.cache_key)
        if core is None:
            core = cores[self.cache_key] = self.core_factory()
            while len(cores) > MAX_CACHED_CORES:  # pipelines built one after another
                cores.popitem(last=False)
        cores.move_to_end(self.cache_key)
        self.core = core

    def process(self, article: Article) -> Iterable[Any]:
        assert self.core is not None
        for attempt in range(1, TRANSIENT_ATTEMPTS + 1):
            try:
                out = self.core(article)
                break
            except TRANSIENT_ERRORS as exc:
                # flaky filesystem or network: retry in place, then dead-letter (replayable)
                if attempt < TRANSIENT_ATTEMPTS:
                    self.retried.inc()
                    time.sleep(TRANSIENT_BACKOFF * attempt)
                    continue
                self.failed.inc()
                yield TaggedOutput(DEAD_LETTER, self.dead_letter_of(self.stage, exc, article))
                return
            except Exception as exc:  # noqa: BLE001 - every failure becomes a dead letter
                self.failed.inc()
                yield TaggedOutput(DEAD_LETTER, self.dead_letter_of(self.stage, exc, article))
                return
        self.ok.inc()
        if out is not None:
            yield out


def run_stage(
    pcoll: beam.PCollection,
    label: str,
    stage: str,
    core_factory: Callable[[], Core],
    dead_letter_of: DeadLetterOf = dead_letter_from_article,
):
    """Apply a stage; returns a ``DoOutputsTuple`` with ``.articles`` and ``.dead_letter``.
    ``dead_letter_of`` builds a failure's dead letter from the stage's input shape."""
    return pcoll | label >> beam.ParDo(StageFn(stage, core_factory, dead_letter_of)).with_outputs(
        DEAD_LETTER, main=ARTICLES
    )
