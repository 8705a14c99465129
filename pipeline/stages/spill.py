"""Articles set aside in work files while batch dedup decides on small keys.

A batch job must not shuffle whole articles: the local runner holds every PCollection
that crosses a shuffle in memory, so memory would grow with the batch (issue #23). So the
batch graph (``pipeline/graph/batch.py``) writes each normalized article once to a work
file and sends only its dedup key on (id, date, URL, fingerprint, shingles:
``khabar.pipeline.dedup.compose.DedupKey``); once every decision is known, the work files
are read back, each article gets its decision and goes on to entity tagging and the sinks.

- :class:`SetAside`: article -> its key (main output); each bundle writes one work file
  (length-prefixed pickles) under the job's work directory, whose path is emitted on
  ``work_files`` when the bundle finishes. A bundle that is retried writes a new file;
  only the paths of bundles that committed are read.
- :class:`ApplyDecisions`: work file path -> its articles with their decisions (side
  input ``id -> (is_duplicate, fields)``); survivors on the main output, duplicates on
  ``duplicates``, the path on ``work_files`` once read.
- :class:`RemoveWorkDir`: deletes the work directory once every work file was read.

Work files go through Beam's ``FileSystems``: local directories and ``gs://`` alike.
"""

from __future__ import annotations

import pickle
import struct
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.pvalue import TaggedOutput
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from khabar.transforms import metrics as M
from khabar.transforms.common import DUPLICATES, Article

WORK_FILES = "work_files"
#: A run's work directory is ``OUTPUT/.khabar-work-<id>`` (``graph/batch.py``).
WORK_DIR_PREFIX = ".khabar-work-"
#: A bundle starts a new work file after this many articles, so that reading them back
#: spreads over the workers even when one bundle set a whole file's articles aside.
RECORDS_PER_WORK_FILE = 256
_LENGTH = struct.Struct(">I")
#: one pickled article at most (a record is capped far below: --max_record_bytes)
MAX_WORK_RECORD = 1 << 30


def write_record(stream: BinaryIO, article: Article) -> int:
    """Append one article to a work file; returns the bytes written."""
    data = pickle.dumps(article, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(data)))
    stream.write(data)
    return _LENGTH.size + len(data)


def read_records(stream: BinaryIO) -> Iterator[Article]:
    """The articles of a work file, in the order written, one at a time."""
    while True:
        head = stream.read(_LENGTH.size)
        if not head:
            return
        if len(head) != _LENGTH.size:
            raise OSError("work file truncated in a record length")
        (size,) = _LENGTH.unpack(head)
        if size > MAX_WORK_RECORD:
            raise OSError(f"work file record of {size} bytes: not a khabar work file")
        data = stream.read(size)
        if len(data) != size:
            raise OSError("work file truncated in a record")
        yield pickle.loads(data)


class SetAsideFn(beam.DoFn):
    """Article -> ``key_of(article)``; the article itself -> this bundle's work file."""

    def __init__(self, work_dir: str, key_of: Callable[[Article], tuple[Article, Any]]) -> None:
        self.work_dir = work_dir
        self.key_of = key_of
        self.records = Metrics.counter(M.WORK, M.WORK_RECORDS)
        self.bytes = Metrics.counter(M.WORK, M.WORK_BYTES)
        self.files = Metrics.counter(M.WORK, M.WORK_FILES)

    def start_bundle(self) -> None:
        self._stream: BinaryIO | None = None
        self._path: str | None = None
        self._in_file = 0
        self._done: list[str] = []

    def process(self, article: Article) -> Iterator[Any]:
        stored, key = self.key_of(article)
        if self._stream is None:
            self._path = FileSystems.join(self.work_dir, f"part-{uuid.uuid4().hex}.pkl")
            self._stream = FileSystems.create(
                self._path, "application/octet-stream", CompressionTypes.UNCOMPRESSED
            )
        self.bytes.inc(write_record(self._stream, stored))
        self.records.inc()
        self._in_file += 1
        if self._in_file >= RECORDS_PER_WORK_FILE:
            self._close()
        yield key

    def _close(self) -> None:
        assert self._stream is not None and self._path is not None
        self._stream.close()
        self._done.append(self._path)
        self._stream, self._path, self._in_file = None, None, 0
        self.files.inc()

    def finish_bundle(self) -> Iterator[Any]:
        # Paths go out only now, with the bundle's commit: a retried bundle's files are
        # never read (RemoveWorkDir deletes them).
        if self._stream is not None:
            self._close()
        for path in self._done:
            yield TaggedOutput(WORK_FILES, WindowedValue(path, MIN_TIMESTAMP, [GlobalWindow()]))
        self._done = []


class SetAside(beam.PTransform):
    """Articles -> ``{"keys": their dedup keys, "work_files": work file paths}``.

    ``key_of(article) -> (stored, key)``: what is written to the work file (the article,
    fingerprinted) and what goes on to dedup."""

    def __init__(self, work_dir: str, key_of: Callable[[Article], tuple[Article, Any]]) -> None:
        super().__init__()
        self.work_dir = work_dir
        self.key_of = key_of

    def expand(self, pcoll):
        out = pcoll | "Write" >> beam.ParDo(SetAsideFn(self.work_dir, self.key_of)).with_outputs(
            WORK_FILES, main="keys"
        )
        return {"keys": out.keys, WORK_FILES: out[WORK_FILES]}


class ApplyDecisionsFn(beam.DoFn):
    """Work file path -> its articles, each updated with its decision."""

    def __init__(self, survivor_fields: Callable[[Article], dict[str, Any]]) -> None:
        self.survivor_fields = survivor_fields
        self.read = Metrics.counter(M.WORK, M.WORK_RECORDS_READ)

    def process(self, path: str, decisions: dict[str, tuple[bool, dict[str, Any]]]):
        with FileSystems.open(
            path, "application/octet-stream", CompressionTypes.UNCOMPRESSED
        ) as stream:
            for article in read_records(stream):
                self.read.inc()
                decided = decisions.get(article["id"])
                if decided is None:  # a survivor whose fields are the defaults
                    article.update(self.survivor_fields(article))
                    yield article
                    continue
                is_duplicate, fields = decided
                article.update(fields)
                yield TaggedOutput(DUPLICATES, article) if is_duplicate else article
        yield TaggedOutput(WORK_FILES, path)


class ApplyDecisions(beam.PTransform):
    """Work file paths -> ``{"articles", "duplicates", "work_files"}`` (``work_files``: the
    paths, once read). ``decisions``: ``id -> (is_duplicate, fields)`` for every
    duplicate and every survivor whose fields differ from ``survivor_fields(article)``."""

    def __init__(
        self, decisions: beam.PCollection, survivor_fields: Callable[[Article], dict[str, Any]]
    ) -> None:
        super().__init__()
        self.decisions = decisions
        self.survivor_fields = survivor_fields

    def expand(self, paths):
        out = paths | "Read" >> beam.ParDo(
            ApplyDecisionsFn(self.survivor_fields), beam.pvalue.AsDict(self.decisions)
        ).with_outputs(DUPLICATES, WORK_FILES, main="articles")
        return {"articles": out.articles, DUPLICATES: out[DUPLICATES], WORK_FILES: out[WORK_FILES]}


def remove_work_dir(_: Any, work_dir: str, read: Iterable[str]) -> None:
    """Delete every file under ``work_dir`` (those read, and any a retried bundle left),
    then the directory itself where the file system has directories."""
    del read  # only its completion matters: every work file was read
    try:
        found = FileSystems.match([FileSystems.join(work_dir, "*")])[0].metadata_list
    except Exception:  # noqa: BLE001 - nothing was set aside: no directory
        found = []
    paths = [m.path for m in found]
    if paths:
        FileSystems.delete(paths)
    try:
        FileSystems.delete([work_dir])
    except Exception:  # noqa: BLE001 - object stores have no directory to delete
        pass


class RemoveWorkDir(beam.PTransform):
    """Deletes ``work_dir`` once ``read`` (the work file paths, once read) is complete."""

    def __init__(self, work_dir: str) -> None:
        super().__init__()
        self.work_dir = work_dir

    def expand(self, read):
        return (
            read.pipeline
            | "Once" >> beam.Create([None])
            | "Delete" >> beam.Map(remove_work_dir, self.work_dir, beam.pvalue.AsList(read))
        )
