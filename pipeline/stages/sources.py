"""Bounded sources: expand input paths (local or ``gs://``) and read raw records.

A file becomes one or more raw records (``RawRecord.to_dict()``); a file that cannot be
read as a whole (empty, undecodable container, refused XML, above the size limit) becomes
one dead letter at stage ``read``. Every raw record and every read-level dead letter is
counted in ``records_in``, the left-hand side of the conservation check.
"""

from __future__ import annotations

import io
import os
import posixpath
import time
import zlib
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from khabar.pipeline.stages.read import ExpandUnits, ReadFailure
from khabar.transforms import metrics as M
from khabar.transforms.common import ARTICLES, DEAD_LETTER, StageError
from khabar.transforms.parse import (
    DEFAULT_MAX_RECORD_BYTES,
    FEED_FORMATS,
    EmptyInput,
    RawRecord,
    TooLarge,
    detect_format,
    split_records,
)

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


def expand_inputs(patterns: list[str]) -> list[str]:
    """Turn paths, globs and directories into the list of file paths to read.

    Directories are walked recursively for the supported extensions (README and licence
    files and hidden files are skipped). Raises :class:`InputError` when nothing matches.
    """
    files: list[str] = []
    for pattern in patterns:
        if _is_dir(pattern):
            base = pattern.rstrip("/")
            results = FileSystems.match([base + "/**"])[0].metadata_list
            for meta in results:
                name = posixpath.basename(meta.path).lower()
                if name.startswith(".") or name.startswith(SKIP_NAMES) or "/." in meta.path:
                    continue
                if name.endswith(DIRECTORY_EXTENSIONS) or "." not in name:
                    files.append(meta.path)
        else:
            try:
                results = FileSystems.match([pattern])[0].metadata_list
            except Exception as exc:  # noqa: BLE001 - BeamIOError wraps the real cause
                raise InputError(describe_io_error(pattern, exc)) from None
            files.extend(m.path for m in results)
    files = sorted({f if "://" in f else os.path.abspath(f) for f in files})
    if not files:
        raise InputError(f"no input files match {' '.join(patterns)}")
    return files


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


class FileReader:
    """The reader of files (``stages/read.py``): ``fileio.ReadableFile`` -> raw records,
    or a failure for a file that cannot be read as a whole."""

    def __init__(
        self, format_override: str | None = None, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    ) -> None:
        self.format_override = format_override
        self.max_record_bytes = max_record_bytes
        self.files = Metrics.counter(M.RUN, M.FILES_READ)
        self.retried = Metrics.counter(M.stage(M.READ), M.RETRIED)

    def __call__(self, readable: fileio.ReadableFile) -> Iterator[RawRecord | ReadFailure]:
        path = readable.metadata.path
        self.files.inc()
        limit = self.max_record_bytes
        fmt: str | None = None
        for attempt in range(1, READ_ATTEMPTS + 1):
            try:
                handle = readable.open(compression_type=CompressionTypes.AUTO)
                with handle:
                    head = handle.read(4096)
                    fmt = detect_format(path, head, self.format_override)
                    if fmt == "jsonl":
                        # streamed line by line (not retried: lines may already be out)
                        yield from self._jsonl(path, head, handle, limit)
                        return
                    if len(head) > limit:
                        data, more = head[:limit], True
                    else:
                        rest, more = read_limited(handle, limit - len(head))
                        data = head + rest
                break
            except FileNotFoundError as exc:
                yield self._dead(path, exc, b"", fmt)
                return
            except (OSError, EOFError, zlib.error) as exc:
                # a flaky filesystem is retried; a corrupt file (bad gzip) dead-lettered
                if attempt < READ_ATTEMPTS and not isinstance(exc, (EOFError, zlib.error)):
                    self.retried.inc()
                    time.sleep(0.2 * attempt)
                    continue
                yield self._dead(path, exc, b"", fmt)
                return
        if more:
            # Containers (feeds) get a larger budget: their items are checked one by one.
            yield self._dead(
                path,
                TooLarge(
                    f"file above the limit of {limit} bytes; raw_payload holds the first {limit}"
                ),
                data,
                fmt,
            )
            return
        try:
            records = list(split_records(path, data, fmt, limit))
        except StageError as exc:
            yield self._dead(path, exc, data, fmt)
            return
        if not records and fmt in FEED_FORMATS:
            yield self._dead(path, EmptyInput("feed without items"), data, fmt)
            return
        yield from records

    def _jsonl(
        self, path: str, head: bytes, handle: Any, limit: int
    ) -> Iterator[RawRecord | ReadFailure]:
        stream = io.BufferedReader(_Prefixed(head, handle), buffer_size=1 << 16)
        seen = False
        for lineno, line, truncated in iter_lines_limited(stream, limit):
            if not line.strip():
                continue
            seen = True
            if truncated:
                exc = TooLarge(f"JSON line above the limit of {limit} bytes (truncated here)")
                yield self._dead(path, exc, line, "jsonl", lineno)
                continue
            yield RawRecord(path, lineno, "jsonl", line)
        if not seen:
            yield self._dead(path, EmptyInput("empty file"), b"", "jsonl")

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
    ) -> None:
        super().__init__()
        self.files = files
        self.format_override = format_override
        self.max_record_bytes = max_record_bytes

    def expand(self, pbegin):
        return (
            pbegin
            | "Files" >> beam.Create(self.files)
            | "Match" >> fileio.MatchAll()
            | "Open" >> fileio.ReadMatches(skip_directories=True)
            | "Split"
            >> beam.ParDo(
                ExpandUnits(FileReader(self.format_override, self.max_record_bytes))
            ).with_outputs(DEAD_LETTER, main=ARTICLES)
        )
