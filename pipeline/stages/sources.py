"""Bounded sources: expand input paths (local or ``gs://``) and read raw records.

A file becomes one or more raw records (``RawRecord.to_dict()``); a file that cannot be
read as a whole (empty, undecodable container, refused XML, above the size limit) becomes
one dead letter at stage ``read``. Every raw record and every read-level dead letter is
counted in ``records_in``, the left-hand side of the conservation check.
"""

from __future__ import annotations

import bz2
import glob
import gzip
import io
import lzma
import math
import os
import posixpath
import stat
import time
import zlib
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from khabar.pipeline.stages.read import ExpandUnits, ReadFailure
from khabar.transforms import metrics as M
from khabar.transforms.common import (
    ARTICLES,
    DEAD_LETTER,
    DEFAULT_MAX_ITEMS,
    DEFAULT_MAX_RECORD_BYTES,
    EmptyInput,
    StageError,
    TooLarge,
)
from khabar.transforms.split import (
    FEED_FORMATS,
    RawRecord,
    RecordCap,
    UnsupportedFormat,
    detect_format,
    split_all,
)

#: Containers (feeds) get this many times the per-article limit; their items are then
#: held to the per-article limit one by one.
FEED_BUDGET_FACTOR = 10
#: An uncompressed JSON Lines file larger than this is read as ranges of about this many
#: bytes, each on whichever worker takes it (issue #23: one big file uses every worker).
DEFAULT_RANGE_BYTES = 1 << 20

# Files picked up when a directory is given; any file can be named explicitly or by glob.
DIRECTORY_EXTENSIONS = (
    ".txt",
    ".text",
    ".jsonl",
    ".ndjson",
    ".json",
    ".html",
    ".htm",
    ".xhtml",
    ".rss",
    ".atom",
    ".xml",
    ".gz",
)
SKIP_NAMES = ("readme", "license", "licence")
READ_ATTEMPTS = 3


class InputError(ValueError):
    """A command-line input that matches nothing usable."""


def _is_dir(path: str) -> bool:
    if path.endswith("/"):
        return True
    if "://" in path:
        return False
    return os.path.isdir(path)


class NotRegularFile(StageError):
    """A FIFO, socket or device among the inputs: never opened (it could block forever)."""


class FileVanished(StageError):
    """A listed file that no longer exists when it is read."""


def escape_glob(path: str) -> str:
    """``path`` as a pattern that matches only itself (``[``, ``*``, ``?`` escaped)."""
    if "://" in path:
        scheme, rest = path.split("://", 1)
        return scheme + "://" + glob.escape(rest)
    return glob.escape(path)


def _exists_literally(path: str) -> bool:
    if "://" not in path:
        return os.path.lexists(path)
    try:
        return FileSystems.exists(path)
    except Exception:  # noqa: BLE001 - then it is matched as a pattern
        return False


def expand_inputs(patterns: list[str]) -> list[str]:
    """Turn paths, globs and directories into the list of file paths to read.

    A path that exists is taken as written (``news[1].txt`` is that file, not a
    pattern); only paths that do not exist are matched as globs, once. Directories are
    walked recursively for the supported extensions (README and licence files and
    hidden files are skipped). Raises :class:`InputError` when nothing matches.
    """
    files: list[str] = []
    for pattern in patterns:
        if _is_dir(pattern):
            base = pattern.rstrip("/")
            results = FileSystems.match([escape_glob(base) + "/**"])[0].metadata_list
            for meta in results:
                name = posixpath.basename(meta.path).lower()
                if name.startswith(".") or name.startswith(SKIP_NAMES) or "/." in meta.path:
                    continue
                if name.endswith(DIRECTORY_EXTENSIONS) or "." not in name:
                    files.append(meta.path)
        elif _exists_literally(pattern):
            files.append(pattern)
        else:
            try:
                results = FileSystems.match([pattern])[0].metadata_list
            except Exception as exc:  # noqa: BLE001 - BeamIOError wraps the real cause
                raise InputError(describe_io_error(pattern, exc)) from None
            if not results and "://" in pattern and not any(c in pattern for c in "*?["):
                # gs://bucket/prefix without a trailing slash: a folder, as it is locally
                files += expand_inputs([pattern + "/"]) if _has_objects(pattern) else []
                continue
            files.extend(m.path for m in results)
    files = sorted({f if "://" in f else os.path.abspath(f) for f in files})
    if not files:
        raise InputError(f"no input files match {' '.join(patterns)}")
    return files


def _has_objects(prefix: str) -> bool:
    try:
        return bool(FileSystems.match([prefix.rstrip("/") + "/**"])[0].metadata_list)
    except Exception:  # noqa: BLE001 - not a folder either
        return False


def _root_cause(exc: BaseException) -> BaseException:
    """Unwrap Beam's nested BeamIOError(exception_details={path: error}) layers."""
    for _ in range(5):
        inner = getattr(exc, "exception_details", None)
        if not isinstance(inner, dict) or not inner:
            break
        exc = next(iter(inner.values()))
    return exc


def describe_io_error(path: str, exc: BaseException) -> str:
    """One line for a storage error: missing bucket or object, permission, or other."""
    cause = _root_cause(exc)
    code = getattr(cause, "code", None)
    name = type(cause).__name__
    if name == "NotFound" or code == 404 or isinstance(cause, FileNotFoundError):
        if path.startswith("gs://"):
            bucket = path[5:].split("/", 1)[0]
            return f"cannot list {path}: bucket gs://{bucket} or the path does not exist"
        return f"cannot list {path}: no such file or directory"
    if name in ("Forbidden", "Unauthorized") or code in (401, 403):
        return f"cannot list {path}: permission denied ({name}); check the credentials' roles"
    if isinstance(cause, PermissionError):
        return f"cannot list {path}: permission denied"
    first = f"{name}: {cause}".splitlines()[0]
    return f"cannot list {path}: {first[:300]}"


def read_limited(handle: Any, limit: int) -> tuple[bytes, bool]:
    """Read at most ``limit`` bytes; the flag says whether there was more."""
    data = handle.read(limit + 1)
    if len(data) > limit:
        return data[:limit], True
    return data, False


def iter_lines_limited(handle: Any, limit: int) -> Iterator[tuple[int, bytes, bool]]:
    """Lines of a stream, never holding more than ``limit`` bytes of one line in memory.
    Yields (line number, line bytes, truncated)."""
    lineno = 0
    while True:
        line = handle.readline(limit + 1)
        if not line:
            return
        lineno += 1
        truncated = False
        if len(line) > limit and not line.endswith(b"\n"):
            truncated = True
            line = line[:limit]
            while True:  # skip the rest of the oversized line
                more = handle.readline(1 << 20)
                if not more or more.endswith(b"\n"):
                    break
        yield lineno, line.rstrip(b"\r\n"), truncated


_DECOMPRESSORS = {
    CompressionTypes.GZIP: lambda raw: gzip.GzipFile(fileobj=raw, mode="rb"),
    CompressionTypes.BZIP2: lambda raw: bz2.BZ2File(raw, mode="rb"),
    CompressionTypes.LZMA: lambda raw: lzma.LZMAFile(raw, mode="rb"),
}


class _Inflating(io.RawIOBase):
    """zlib (``.deflate``) or zstd, inflated a bounded chunk at a time."""

    def __init__(self, raw: Any, kind: str) -> None:
        self.raw = raw
        if kind == "zstd":
            import zstandard

            self.inner = zstandard.ZstdDecompressor().stream_reader(raw)
            self.zlib = None
        else:
            self.inner = None
            self.zlib = zlib.decompressobj()
        self.pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        want = len(buffer)
        if self.inner is not None:
            data = self.inner.read(want)
        else:
            assert self.zlib is not None
            data = self.zlib.decompress(self.pending, want) if self.pending else b""
            while not data:
                if self.zlib.unconsumed_tail:
                    data = self.zlib.decompress(self.zlib.unconsumed_tail, want)
                    continue
                chunk = self.raw.read(1 << 16)
                if not chunk:
                    data = self.zlib.flush()[:want]
                    break
                data = self.zlib.decompress(chunk, want)
            self.pending = b""
            if self.zlib.unconsumed_tail:
                self.pending = self.zlib.unconsumed_tail
        buffer[: len(data)] = data
        return len(data)


def open_input(path: str) -> Any:
    """Open a listed file for reading, decompressing by extension a bounded chunk at a
    time (so a size limit holds while inflating, never after). A local FIFO, socket or
    device raises :class:`NotRegularFile` without being opened; a file that is gone,
    :class:`FileVanished`."""
    if "://" not in path:
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            raise FileVanished(f"{path} no longer exists (listed, then gone)") from None
        if not stat.S_ISREG(mode):
            kind = (
                "FIFO" if stat.S_ISFIFO(mode)
                else "socket" if stat.S_ISSOCK(mode)
                else "device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "directory" if stat.S_ISDIR(mode)
                else "special file"
            )
            raise NotRegularFile(f"{path} is a {kind}, not a regular file; not opened")
    kind = CompressionTypes.detect_compression_type(path)
    try:
        raw = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    except FileNotFoundError:
        raise FileVanished(f"{path} no longer exists (listed, then gone)") from None
    except Exception as exc:
        cause = _root_cause(exc)
        if isinstance(cause, FileNotFoundError) or getattr(cause, "code", None) == 404:
            raise FileVanished(f"{path} no longer exists (listed, then gone)") from None
        raise
    if kind in _DECOMPRESSORS:
        return _DECOMPRESSORS[kind](raw)
    if kind == CompressionTypes.DEFLATE:
        return io.BufferedReader(_Inflating(raw, "deflate"), buffer_size=1 << 16)
    if kind == CompressionTypes.ZSTD:
        return io.BufferedReader(_Inflating(raw, "zstd"), buffer_size=1 << 16)
    return raw


@dataclass(frozen=True)
class LineRange:
    """Part of a JSON Lines file: bytes ``[start, end)`` (``end`` None: to the end),
    whole lines, the first numbered ``first_lineno``, after ``seen_before`` records
    (non-blank lines) of the file; ``index`` 0 is the file's first range."""

    path: str
    start: int
    end: int | None
    first_lineno: int
    seen_before: int
    index: int


class RangePlanner:
    """A listed path -> the units to read it as: the path itself, or, for an uncompressed
    JSON Lines file above ``range_bytes``, its :class:`LineRange` s. One pass counts the
    lines (with the reader's own line rule, so line numbers, record ids and the record
    cap come out exactly as a whole-file read gives them); anything unusual (an empty
    file, an error) leaves the file whole, for the reader to report."""

    def __init__(
        self,
        format_override: str | None = None,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        max_records_per_file: int = DEFAULT_MAX_ITEMS,
        range_bytes: int = DEFAULT_RANGE_BYTES,
    ) -> None:
        self.format_override = format_override
        self.max_record_bytes = max_record_bytes
        self.max_records_per_file = max_records_per_file
        self.range_bytes = range_bytes
        self.split = Metrics.counter(M.stage(M.READ), M.FILES_SPLIT)
        self.ranges = Metrics.counter(M.stage(M.READ), M.RANGES)

    def __call__(self, path: str) -> Iterator[str | LineRange]:
        try:
            ranges = self._ranges(path)
        except Exception:  # noqa: BLE001 - the reader reports it, reading the file whole
            ranges = None
        if not ranges or len(ranges) < 2:
            yield path
            return
        self.split.inc()
        self.ranges.inc(len(ranges))
        yield from ranges

    def _ranges(self, path: str) -> list[LineRange] | None:
        if CompressionTypes.detect_compression_type(path) != CompressionTypes.UNCOMPRESSED:
            return None
        if "://" in path:
            size = FileSystems.match([escape_glob(path)])[0].metadata_list[0].size_in_bytes
        else:
            size = os.path.getsize(path)
        if size <= self.range_bytes:
            return None
        # Equal parts, each at most about range_bytes: the runner hands a stage's units to
        # its workers in turn, so a file cut into full ranges and a short tail gave one
        # worker every full range when the files were alike (2 workers, 8 files of 1.2 MB:
        # the reading stage 15.5 s on one worker, 13.3 s on two; see README, Throughput).
        parts = math.ceil(size / self.range_bytes)
        step = size / parts
        limit, cap = self.max_record_bytes, self.max_records_per_file
        with open_input(path) as handle:
            head = handle.read(4096)
            if detect_format(path, head, self.format_override) != "jsonl":
                return None
            handle.seek(0)
            spans: list[tuple[int, int | None, int, int]] = []
            start, first, seen_at_start, seen = 0, 1, 0, 0
            for lineno, line, _ in iter_lines_limited(handle, limit):
                if line.strip():
                    seen += 1
                    if seen > cap:  # the reader stops here with RecordCap
                        break
                position = handle.tell()
                if len(spans) < parts - 1 and position >= (len(spans) + 1) * step:
                    spans.append((start, position, first, seen_at_start))
                    start, first, seen_at_start = position, lineno + 1, seen
            if seen == 0:
                return None  # the whole-file read says "empty file"
            spans.append((start, None, first, seen_at_start))
        return [
            LineRange(path, start, end, first, before, index)
            for index, (start, end, first, before) in enumerate(spans)
        ]


class FileReader:
    """The reader of files (``stages/read.py``): a listed path -> raw records, or a
    failure for a file (or the rest of one) that cannot be read. Nothing a file holds
    stops the job: every exception (RecursionError and MemoryError included) is caught
    per file."""

    def __init__(
        self,
        format_override: str | None = None,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        max_records_per_file: int = DEFAULT_MAX_ITEMS,
        max_feed_bytes: int | None = None,
    ) -> None:
        self.format_override = format_override
        self.max_record_bytes = max_record_bytes
        self.max_records_per_file = max_records_per_file
        self.max_feed_bytes = max_feed_bytes or FEED_BUDGET_FACTOR * max_record_bytes
        self.files = Metrics.counter(M.RUN, M.FILES_READ)
        self.files_failed = Metrics.counter(M.RUN, M.FILES_DEAD_LETTERED)
        self.retried = Metrics.counter(M.stage(M.READ), M.RETRIED)

    def __call__(self, path: Any) -> Iterator[RawRecord | ReadFailure]:
        if isinstance(path, LineRange):
            yield from self._read_range(path)
            return
        path = getattr(getattr(path, "metadata", None), "path", path)  # ReadableFile too
        self.files.inc()
        try:
            yield from self._read(path)
        except Exception as exc:  # noqa: BLE001 - one bad file never stops a job
            self.files_failed.inc()
            yield self._dead(path, exc, b"")

    def _read_range(self, part: LineRange) -> Iterator[RawRecord | ReadFailure]:
        if part.index == 0:
            self.files.inc()  # a file split in ranges is read once
        try:
            with open_input(part.path) as handle:
                handle.seek(part.start)
                yield from self._jsonl_lines(
                    part.path, handle, part.first_lineno - 1, part.seen_before, part.end
                )
        except Exception as exc:  # noqa: BLE001 - one bad range never stops a job
            yield self._dead(part.path, exc, b"", "jsonl", part.first_lineno)

    def _read(self, path: str) -> Iterator[RawRecord | ReadFailure]:
        limit = self.max_record_bytes
        fmt: str | None = None
        streamed = False
        for attempt in range(1, READ_ATTEMPTS + 1):
            try:
                with open_input(path) as handle:
                    head = handle.read(4096)
                    try:
                        fmt = detect_format(path, head, self.format_override)
                    except UnsupportedFormat as exc:  # PDF, CSV, binary: one dead letter
                        rest, _ = read_limited(handle, max(limit - len(head), 0))
                        yield self._dead(path, exc, (head + rest)[:limit])
                        return
                    if fmt == "jsonl":
                        # streamed line by line (not retried: lines may already be out)
                        streamed = True
                        yield from self._jsonl(path, head, handle, limit)
                        return
                    budget = self.max_feed_bytes if fmt in FEED_FORMATS else limit
                    if len(head) > budget:
                        data, more = head[:budget], True
                    else:
                        rest, more = read_limited(handle, budget - len(head))
                        data = head + rest
                break
            except StageError as exc:
                self.files_failed.inc()
                yield self._dead(path, exc, b"", fmt)
                return
            except (OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
                # a flaky filesystem is retried; a corrupt file (bad gzip) dead-lettered
                transient = not isinstance(
                    exc, (EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile)
                ) and not isinstance(exc, (FileNotFoundError, PermissionError))
                if attempt < READ_ATTEMPTS and transient and not streamed:
                    self.retried.inc()
                    time.sleep(0.2 * attempt)
                    continue
                self.files_failed.inc()
                yield self._dead(path, exc, b"", fmt)
                return
        if more:
            what = "feed" if fmt in FEED_FORMATS else "file"
            self.files_failed.inc()
            yield self._dead(
                path,
                TooLarge(
                    f"{what} above the limit of {budget} bytes; raw_payload holds the first "
                    f"{budget}"
                ),
                data,
                fmt,
            )
            return
        records, error = split_all(path, data, fmt, limit, self.max_records_per_file)
        yield from records
        if error is not None:
            if not records:
                self.files_failed.inc()
            yield self._dead(path, error, data, fmt, len(records) if records else None)
        elif not records and fmt in FEED_FORMATS:
            self.files_failed.inc()
            yield self._dead(path, EmptyInput("feed without items"), data, fmt)

    def _jsonl(
        self, path: str, head: bytes, handle: Any, limit: int
    ) -> Iterator[RawRecord | ReadFailure]:
        stream = io.BufferedReader(_Prefixed(head, handle), buffer_size=1 << 16)
        seen = yield from self._jsonl_lines(path, stream, 0, 0, None)
        if not seen:
            self.files_failed.inc()
            yield self._dead(path, EmptyInput("empty file"), b"", "jsonl")

    def _jsonl_lines(
        self, path: str, stream: Any, lines_before: int, seen: int, end: int | None
    ) -> Generator[RawRecord | ReadFailure, None, int]:
        """The records of JSON Lines from ``stream`` (after ``lines_before`` lines and
        ``seen`` records of the file), up to the whole line that ends at offset ``end``
        (None: to the end); returns the file's record count so far."""
        limit, cap = self.max_record_bytes, self.max_records_per_file
        for number, line, truncated in iter_lines_limited(stream, limit):
            lineno = lines_before + number
            if line.strip():
                if seen >= cap:
                    exc = RecordCap(
                        f"more than {cap} records; line {lineno} and after were not read"
                    )
                    yield self._dead(path, exc, line[:4096], "jsonl", lineno)
                    return seen
                seen += 1
                if truncated:
                    exc = TooLarge(f"JSON line above the limit of {limit} bytes (truncated here)")
                    yield self._dead(path, exc, line, "jsonl", lineno)
                else:
                    yield RawRecord(path, lineno, "jsonl", line)
            if end is not None and stream.tell() >= end:
                break
        return seen

    @staticmethod
    def _dead(
        path: str,
        exc: BaseException,
        data: bytes,
        fmt: str | None = None,
        position: int | None = None,
    ) -> ReadFailure:
        return ReadFailure(exc, data, path, position, {"format": fmt} if fmt else {})


class _Prefixed:
    """A raw stream with some already-read bytes put back in front."""

    def __init__(self, prefix: bytes, handle: Any) -> None:
        self.prefix = prefix
        self.handle = handle

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.prefix:
            n = min(len(buffer), len(self.prefix))
            buffer[:n] = self.prefix[:n]
            self.prefix = self.prefix[n:]
            return n
        data = self.handle.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    @property
    def closed(self) -> bool:
        return False


class ReadArticleFiles(beam.PTransform):
    """File paths -> raw records (``.articles``) and read dead letters (``.dead_letter``)."""

    def __init__(
        self,
        files: list[str],
        format_override: str | None = None,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        max_records_per_file: int = DEFAULT_MAX_ITEMS,
        max_feed_bytes: int | None = None,
        range_bytes: int = DEFAULT_RANGE_BYTES,
    ) -> None:
        super().__init__()
        self.files = files
        self.range_bytes = range_bytes
        self.format_override = format_override
        self.max_record_bytes = max_record_bytes
        self.max_records_per_file = max_records_per_file
        self.max_feed_bytes = max_feed_bytes

    def expand(self, pbegin):
        # The listed paths are read as they are: never matched again as patterns.
        return (
            pbegin
            | "Files" >> beam.Create(self.files)
            | "Reshuffle" >> beam.Reshuffle()
            | "Plan"
            >> beam.FlatMap(
                RangePlanner(
                    self.format_override,
                    self.max_record_bytes,
                    self.max_records_per_file,
                    self.range_bytes,
                )
            )
            | "SpreadRanges" >> beam.Reshuffle()
            | "Split"
            >> beam.ParDo(
                ExpandUnits(
                    FileReader(
                        self.format_override,
                        self.max_record_bytes,
                        self.max_records_per_file,
                        self.max_feed_bytes,
                    )
                )
            ).with_outputs(DEAD_LETTER, main=ARTICLES)
        )
