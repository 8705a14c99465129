"""Wire khabar's batch graph: read, process, write.

    files -> Read -> Parse -> Clean -> Language -> Normalize -> SetAside --keys--> Dedup
               |       |       |         |            |           |                 |
               +-------+-------+--- dead letters -----+       work files        decisions
                                                                  |                 |
                       sinks <- Entities <- survivors/duplicates <- ApplyDecisions <-+

Whole articles never cross a shuffle: each is written once to a work file
(``pipeline/stages/spill.py``), deduplication (exact, then near-duplicate clusters) runs
on small keys (id, date, URL, fingerprint, shingles), and the decisions are applied when
the work files are read back, so memory does not grow with the batch (issue #23). Entity
tagging, the costliest stage, runs only on what will be written.
"""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass, field

import apache_beam as beam
from apache_beam.metrics import Metrics

from khabar.pipeline.dedup.compose import (
    DedupKey,
    NearDupSettings,
    SurvivorFields,
    decision,
    deduplicate_batch,
)
from khabar.pipeline.dedup.exact import DEFAULT_TTL_SECONDS
from khabar.pipeline.job.progress import ProgressChannel, count_progress
from khabar.pipeline.stages.clean import CleanArticles
from khabar.pipeline.stages.entities import TagEntities
from khabar.pipeline.stages.language import DetectLanguage
from khabar.pipeline.stages.normalize import NormalizeArticles
from khabar.pipeline.stages.parse import ParseArticles
from khabar.pipeline.stages.sinks import (
    ARTICLES_DIR,
    DEAD_LETTER_DIR,
    DUPLICATES_DIR,
    WriteAvroBatch,
)
from khabar.pipeline.stages.sources import ReadArticleFiles
from khabar.pipeline.stages.spill import (
    WORK_DIR_PREFIX,
    WORK_FILES,
    ApplyDecisions,
    RemoveWorkDir,
    SetAside,
)
from khabar.transforms import metrics as M
from khabar.transforms.common import (
    DEAD_LETTER,
    DEFAULT_MAX_ITEMS,
    DEFAULT_MAX_RECORD_BYTES,
    DUPLICATES,
)


@dataclass
class ProcessedOutputs:
    articles: beam.PCollection
    duplicates: beam.PCollection
    dead_letters: beam.PCollection


@dataclass(frozen=True)
class JobSettings:
    """What every job builder takes from the options, built once
    (:func:`khabar.pipeline.job.run.job_settings`) and passed whole to every builder and
    composite (``khabar run`` batch and streaming, ``khabar replay``, ``khabar deploy``).
    A new option is a field here (named as the option, or mapped in ``job_settings``) plus
    its use. ``emit_duplicates`` and ``num_shards`` apply to batch sinks (streaming always
    writes its duplicates, one file per window); the window fields to streaming."""

    input_format: str | None = None
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    max_records_per_file: int = DEFAULT_MAX_ITEMS
    max_feed_bytes: int | None = None
    emit_duplicates: bool = False
    num_shards: int = 0
    near: NearDupSettings = field(default_factory=NearDupSettings)
    entities_model: str | None = None
    limit: int | None = None
    window_seconds: int = 60
    allowed_lateness: int = 3600
    ttl_seconds: int = DEFAULT_TTL_SECONDS

    @property
    def format(self) -> str | None:
        """The input format forced, or None to detect it per file."""
        return None if self.input_format in (None, "auto") else self.input_format


class CoreStages(beam.PTransform):
    """Raw records -> normalized articles and dead letters: every per-record stage
    (parse, clean, language, normalize, and entities unless ``entities=False``). Batch and
    streaming share it; streaming tags entities here, batch after deduplication."""

    def __init__(self, settings: JobSettings | None = None, entities: bool = True) -> None:
        super().__init__()
        self.settings = settings or JobSettings()
        self.entities = entities

    def expand(self, raw):
        parsed = raw | "Parse" >> ParseArticles(self.settings.max_record_bytes)
        cleaned = parsed.articles | "Clean" >> CleanArticles()
        detected = cleaned.articles | "Language" >> DetectLanguage()
        normalized = detected.articles | "Normalize" >> NormalizeArticles()
        dead = [
            parsed[DEAD_LETTER],
            cleaned[DEAD_LETTER],
            detected[DEAD_LETTER],
            normalized[DEAD_LETTER],
        ]
        articles = normalized.articles
        if self.entities:
            tagged = articles | "Entities" >> TagEntities(self.settings.entities_model)
            articles = tagged.articles
            dead.append(tagged[DEAD_LETTER])
        return articles, tuple(dead) | "StageDeadLetters" >> beam.Flatten()


def work_dir_under(output: str) -> str:
    """A fresh work directory for one run's set-aside articles, inside ``output`` (so it
    is on the same file system, local or ``gs://``); removed when the run ends."""
    return f"{output.rstrip('/')}/{WORK_DIR_PREFIX}{uuid.uuid4().hex[:12]}"


class ProcessArticles(beam.PTransform):
    """Raw records -> survivors, duplicates and dead letters (every stage after reading),
    deduplicating over the whole input (batch): exact copies first (URL, fingerprint),
    then near-duplicate story clusters among the exact survivors. With ``known`` (the
    articles an earlier run wrote), copies of those are linked to them first.

    Articles wait in work files under ``work_dir`` while dedup decides on their keys
    (see the module's diagram); entities are tagged on the survivors, and on the
    duplicates only when they are written (``emit_duplicates``)."""

    def __init__(
        self,
        settings: JobSettings | None = None,
        known: beam.PCollection | None = None,
        work_dir: str | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings or JobSettings()
        self.known = known
        # Default: a local temporary directory, which only a local runner's workers share;
        # the jobs pass one under their output (``work_dir_under``), local or gs://.
        self.work_dir = work_dir or work_dir_under(tempfile.gettempdir())

    def expand(self, raw):
        settings = self.settings
        articles, dead = raw | "Stages" >> CoreStages(settings, entities=False)
        aside = articles | "SetAside" >> SetAside(self.work_dir, DedupKey(settings.near))
        survivors, duplicates = deduplicate_batch(
            aside["keys"], settings.near, self.known, keys=True
        )
        defaults = SurvivorFields(settings.near.enabled)
        decisions = (
            survivors | "KeepDecision" >> beam.FlatMap(decision, False, defaults),
            duplicates | "CopyDecision" >> beam.FlatMap(decision, True, defaults),
        ) | "Decisions" >> beam.Flatten()
        applied = (
            aside[WORK_FILES]
            | "SpreadWorkFiles" >> beam.Reshuffle()
            | "Apply" >> ApplyDecisions(decisions, defaults)
        )
        tagged = applied["articles"] | "Entities" >> TagEntities(settings.entities_model)
        dead_letters = [dead, tagged[DEAD_LETTER]]
        duplicates = applied[DUPLICATES]
        if settings.emit_duplicates:
            copies = duplicates | "CopyEntities" >> TagEntities(settings.entities_model)
            duplicates = copies.articles
            dead_letters.append(copies[DEAD_LETTER])
        _ = applied[WORK_FILES] | "RemoveWorkDir" >> RemoveWorkDir(self.work_dir)
        dead = tuple(dead_letters) | "DeadLetters" >> beam.Flatten()
        return ProcessedOutputs(tagged.articles, duplicates, dead)


def build_batch(
    p: beam.Pipeline,
    files: list[str],
    output: str,
    settings: JobSettings | None = None,
    progress: ProgressChannel | None = None,
) -> ProcessedOutputs:
    """The batch job: read ``files``, process, write Avro under ``output``."""
    settings = settings or JobSettings()
    read = p | "Read" >> ReadArticleFiles(
        files,
        settings.format,
        settings.max_record_bytes,
        settings.max_records_per_file,
        settings.max_feed_bytes,
    )
    articles, read_dead = read.articles, read[DEAD_LETTER]
    if settings.limit:
        articles, read_dead = (articles, read_dead) | "Limit" >> FirstRecords(settings.limit)
    return process_and_write(articles, read_dead, output, settings, progress)


def input_order(record: dict) -> tuple[str, int]:
    """Where a raw record or read dead letter sits in the input: (file, position)."""
    position = record.get("position")
    return str(record.get("input_uri") or ""), -1 if position is None else int(position)


def _order_of_tagged(item: tuple[str, dict]) -> tuple[str, int]:
    return input_order(item[1])


def _count_cut(total: int, limit: int) -> None:
    Metrics.counter(M.RUN, M.CUT_BY_LIMIT).inc(max(total - limit, 0))


class FirstRecords(beam.PTransform):
    """``--limit N``: the first N records in input order (files in sorted order, then
    position), raw records and read dead letters together; the rest are counted as
    ``cut_by_limit`` and never processed."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def expand(self, pcolls):
        articles, dead = pcolls
        tagged = (
            articles | "TagRecords" >> beam.Map(lambda r: ("record", r)),
            dead | "TagDead" >> beam.Map(lambda r: ("dead", r)),
        ) | "Together" >> beam.Flatten()
        first = (
            tagged
            | "First"
            >> beam.combiners.Top.Of(self.limit, key=_order_of_tagged, reverse=True)
            | "Unlist" >> beam.FlatMap(lambda items: items)
        )
        _ = (
            tagged
            | "CountAll" >> beam.combiners.Count.Globally()
            | "CountCut" >> beam.Map(_count_cut, self.limit)
        )
        kept_records = first | "Records" >> beam.FlatMap(
            lambda item: [item[1]] if item[0] == "record" else []
        )
        kept_dead = first | "Dead" >> beam.FlatMap(
            lambda item: [item[1]] if item[0] == "dead" else []
        )
        return kept_records, kept_dead


def process_and_write(
    articles,
    read_dead,
    output: str,
    settings: JobSettings | None = None,
    progress: ProgressChannel | None = None,
    known: beam.PCollection | None = None,
) -> ProcessedOutputs:
    """Everything after reading, shared by the batch job and ``khabar replay``: process the
    ``articles`` read, and write articles, duplicates (or count them) and the dead letters
    (``read_dead``: those of reading) as Avro under ``output``. ``known``: articles of an
    earlier run, whose copies become duplicates (see ``DropKnownCopies``)."""
    settings = settings or JobSettings()
    num_shards = settings.num_shards
    out = articles | "Process" >> ProcessArticles(settings, known, work_dir_under(output))
    dead = (read_dead, out.dead_letters) | "AllDeadLetters" >> beam.Flatten()
    count_progress(articles, "ProgressRead", progress, "read")
    count_progress(read_dead, "ProgressReadDead", progress, "read")
    count_progress(out.articles, "ProgressWritten", progress, "written")
    count_progress(dead, "ProgressDead", progress, "dead_letters")
    count_progress(out.duplicates, "ProgressDuplicates", progress, "duplicates")
    out.articles | "WriteArticles" >> WriteAvroBatch(output, ARTICLES_DIR, num_shards)
    dead | "WriteDeadLetters" >> WriteAvroBatch(output, DEAD_LETTER_DIR, num_shards)
    if settings.emit_duplicates:
        out.duplicates | "WriteDuplicates" >> WriteAvroBatch(output, DUPLICATES_DIR, num_shards)
    else:
        out.duplicates | "CountDuplicates" >> beam.Map(_count_skipped_duplicate)
    return ProcessedOutputs(out.articles, out.duplicates, dead)


def _count_skipped_duplicate(article) -> None:
    Metrics.counter(M.RUN, M.SKIPPED_DUPLICATES).inc()
