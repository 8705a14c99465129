"""Running a Beam-free core as a Beam stage: ``StageFn`` and ``run_stage``.

``StageFn`` builds the core once per worker thread (``setup()``), runs it on each
element, retries flaky I/O in place and turns any other exception into a ``DeadLetter``
record on the ``dead_letter`` output, counted as ``stage.<name>/dead_letter``. Every stage
module here (parse, clean, language, normalize, entities) is a thin PTransform over it.
``beam_count`` is the ``Count`` a core is given in a job: one Beam counter per name.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.pvalue import TaggedOutput
from apache_beam.utils.windowed_value import WindowedValue

from khabar.transforms import metrics as M
from khabar.transforms.common import (
    ARTICLES,
    DEAD_LETTER,
    TRANSIENT_ATTEMPTS,
    TRANSIENT_BACKOFF,
    TRANSIENT_ERRORS,
    Core,
    Count,
    DeadLetterOf,
    dead_letter_from_article,
)
from khabar.transforms.records import Article


def beam_count() -> Count:
    """A core's ``Count`` as Beam counters (each made once, on first use)."""
    counters: dict[tuple[str, str], Any] = {}

    def count(namespace: str, name: str) -> None:
        counter = counters.get((namespace, name))
        if counter is None:
            counter = counters[namespace, name] = Metrics.counter(namespace, name)
        counter.inc()

    return count


#: Stage cores built in this thread, by ``StageFn.cache_key`` (least recently used
#: dropped beyond ``MAX_CACHED_CORES``: one job has a handful of stages).
_CORES = threading.local()
MAX_CACHED_CORES = 12
#: Cores that are safe to call from several threads at once, one per process and stage:
#: a runner's threads and DoFn copies share one language model and one normalizer.
_SHARED_CORES: OrderedDict[str, Core] = OrderedDict()
_SHARED_LOCK = threading.Lock()


def _cached(cores: OrderedDict[str, Core], key: str, factory: Callable[[], Core]) -> Core:
    core = cores.get(key)
    if core is None:
        core = cores[key] = factory()
        while len(cores) > MAX_CACHED_CORES:  # pipelines built one after another
            cores.popitem(last=False)
    cores.move_to_end(key)
    return core


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
        thread_safe: bool = False,
    ) -> None:
        self.stage = stage
        self.core_factory = core_factory
        self.dead_letter_of = dead_letter_of
        self.thread_safe = thread_safe
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
        # core is built once and reused: once per process when it is thread-safe (its
        # state is read-only after it is built), else once per thread. Beam's
        # ``utils.shared.Shared`` holds its objects weakly, so a runner that drops its
        # DoFns after each bundle would rebuild them: this cache holds them strongly.
        if self.thread_safe:
            with _SHARED_LOCK:
                self.core = _cached(_SHARED_CORES, self.cache_key, self.core_factory)
            return
        cores: OrderedDict[str, Core] = _CORES.__dict__.setdefault("cores", OrderedDict())
        self.core = _cached(cores, self.cache_key, self.core_factory)

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


class BatchStageFn(StageFn):
    """A ``StageFn`` whose core also takes several articles at once (its ``many``
    attribute: a list of articles -> a list of results, in order), for cores that are
    cheaper per article in groups (the entity networks read many sentences per step).

    Articles are held until ``batch_size`` of them have arrived or the bundle ends, each
    with its own timestamp, window and pane, and every result goes out with them (so a
    batch may mix windows). If the group call fails, each article of the group is run
    alone through ``StageFn.process``: one bad article is one dead letter, as without
    batching."""

    def __init__(
        self,
        stage: str,
        core_factory: Callable[[], Core],
        dead_letter_of: DeadLetterOf = dead_letter_from_article,
        thread_safe: bool = False,
        batch_size: int = 32,
    ) -> None:
        super().__init__(stage, core_factory, dead_letter_of, thread_safe)
        self.batch_size = batch_size
        self._held: list[tuple[Article, Any, Any, Any]] = []

    def start_bundle(self) -> None:
        self._held = []

    def process(  # type: ignore[override]
        self,
        article: Article,
        timestamp=beam.DoFn.TimestampParam,
        window=beam.DoFn.WindowParam,
        pane=beam.DoFn.PaneInfoParam,
    ) -> Iterable[Any]:
        self._held.append((article, timestamp, window, pane))
        if len(self._held) >= self.batch_size:
            yield from self._flush()

    def finish_bundle(self) -> Iterable[Any]:
        yield from self._flush()

    def _flush(self) -> Iterable[Any]:
        held, self._held = self._held, []
        if not held:
            return
        many = getattr(self.core, "many", None)
        outs: list[Any] | None = None
        if many is not None and len(held) > 1:
            try:
                outs = many([article for article, _, _, _ in held])
            except Exception:  # noqa: BLE001 - retried one by one below
                outs = None
        for k, (article, timestamp, window, pane) in enumerate(held):
            results = [outs[k]] if outs is not None else list(StageFn.process(self, article))
            if outs is not None:
                self.ok.inc()
            for result in results:
                if result is None:
                    continue
                tag = None
                if isinstance(result, TaggedOutput):
                    tag, result = result.tag, result.value
                value = WindowedValue(result, timestamp, (window,), pane)
                yield value if tag is None else TaggedOutput(tag, value)


def run_stage(
    pcoll: beam.PCollection,
    label: str,
    stage: str,
    core_factory: Callable[[], Core],
    dead_letter_of: DeadLetterOf = dead_letter_from_article,
    thread_safe: bool = False,
    batch_size: int = 0,
):
    """Apply a stage; returns a ``DoOutputsTuple`` with ``.articles`` and ``.dead_letter``.
    ``dead_letter_of`` builds a failure's dead letter from the stage's input shape;
    ``thread_safe`` cores are built once per process and shared by its threads;
    ``batch_size`` > 0 hands the core's ``many`` groups of that many articles
    (``BatchStageFn``)."""
    if batch_size > 0:
        fn: StageFn = BatchStageFn(stage, core_factory, dead_letter_of, thread_safe, batch_size)
    else:
        fn = StageFn(stage, core_factory, dead_letter_of, thread_safe)
    return pcoll | label >> beam.ParDo(fn).with_outputs(DEAD_LETTER, main=ARTICLES)
