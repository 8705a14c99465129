"""Read's core: what a file (or message) holds, split into raw records. Beam-free.

The read stage (``khabar.pipeline.stages.sources`` for files, the streaming and replay
readers for messages and dead letters) calls these on a unit's bytes; the records go on
to the parse stage (:mod:`transforms.parse`), which never comes back here.

* :func:`detect_format` - by extension, else by sniffing the content; overridable; a
  file khabar does not read (PDF, images, archives, binary) is :class:`UnsupportedFormat`.
* :func:`split_records` - a file's bytes -> raw records (JSON Lines: one per line;
  feeds: one per item, read with feedparser behind khabar's refusal of entity
  declarations and deep nesting (:mod:`transforms.feeds`); text and HTML: the whole file).
* :func:`split_all` - the same, never raising: the records split before a failure and
  the failure.
* :class:`RawRecord` - one record's bytes and provenance (``to_dict()`` is the parse
  stage's input, ``records.RawRecordDict``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from khabar.transforms.common import (
    DEFAULT_MAX_ITEMS,
    DEFAULT_MAX_RECORD_BYTES,
    EmptyInput,
    StageError,
)
from khabar.transforms.encodings import DecodeError, decode_text, sniff_wide
from khabar.transforms.feeds import entry_payload, kind_of, read_feed

FORMATS = ("text", "jsonl", "html", "rss", "atom")
FEED_FORMATS = ("rss", "atom", "feed")

EXTENSIONS = {
    ".txt": "text",
    ".text": "text",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".rss": "feed",
    ".atom": "feed",
    ".xml": "feed",
}

class UnsupportedFormat(StageError):
    """A file of a type khabar does not read (PDF, CSV, office documents, images, archives,
    other binary data): one dead letter, never a "text" article."""


#: Extensions of files khabar does not read (a directory walk skips them; named
#: explicitly or by a glob, each becomes an UnsupportedFormat dead letter).
UNSUPPORTED_EXTENSIONS = {
    ".pdf": "PDF",
    ".csv": "CSV",
    ".tsv": "TSV",
    ".doc": "Word document",
    ".docx": "Word document",
    ".odt": "OpenDocument text",
    ".rtf": "RTF",
    ".xls": "spreadsheet",
    ".xlsx": "spreadsheet",
    ".ods": "spreadsheet",
    ".ppt": "presentation",
    ".pptx": "presentation",
    ".epub": "EPUB",
    ".zip": "ZIP archive",
    ".tar": "tar archive",
    ".7z": "7-Zip archive",
    ".rar": "RAR archive",
    ".png": "image",
    ".jpg": "image",
    ".jpeg": "image",
    ".gif": "image",
    ".webp": "image",
    ".mp3": "audio",
    ".mp4": "video",
    ".avro": "Avro",
    ".parquet": "Parquet",
}

#: Leading bytes of binary formats (checked whatever the file's name).
MAGIC = (
    (b"%PDF-", "PDF"),
    (b"PK\x03\x04", "ZIP archive or office document"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "office document (OLE)"),
    (b"\x89PNG\r\n\x1a\n", "image"),
    (b"\xff\xd8\xff", "image"),
    (b"GIF8", "image"),
    (b"Obj\x01", "Avro"),
    (b"PAR1", "Parquet"),
    (b"\x7fELF", "executable"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip archive"),
    (b"Rar!", "RAR archive"),
    (b"{\\rtf", "RTF"),
)


@dataclass
class RawRecord:
    """One record as read from an input, before parsing."""

    input_uri: str
    position: int
    format: str
    payload: bytes
    attributes: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_uri": self.input_uri,
            "position": self.position,
            "format": self.format,
            "payload": self.payload,
            "attributes": dict(self.attributes),
        }


# --------------------------------------------------------------------------- formats


def detect_format(uri: str, head: bytes, override: str | None = None) -> str:
    """Format of a file: ``override`` if given, else by extension, else by content.
    Raises :class:`UnsupportedFormat` for a file khabar does not read (by its magic bytes,
    its extension, or binary content), unless ``override`` forces a format."""
    if override and override != "auto":
        return override
    name = uri.rsplit("/", 1)[-1].lower()
    for ext in (".gz", ".bz2", ".zst"):
        if name.endswith(ext):
            name = name[: -len(ext)]
    dot = name.rfind(".")
    ext = name[dot:] if dot > 0 else ""
    unsupported = unsupported_kind(ext, head)
    if unsupported:
        raise UnsupportedFormat(
            f"{unsupported} file: khabar reads text, JSON Lines, HTML and RSS/Atom "
            "(--format forces one)"
        )
    if ext in EXTENSIONS:
        return EXTENSIONS[ext]
    return sniff_format(head)


def unsupported_kind(ext: str, head: bytes) -> str | None:
    """What kind of unreadable file this is (``"PDF"``, ``"CSV"``, ...), or None."""
    for magic, kind in MAGIC:
        if head.startswith(magic):
            return kind
    if ext in UNSUPPORTED_EXTENSIONS:
        return UNSUPPORTED_EXTENSIONS[ext]
    if (
        b"\x00" in head[:4096]
        and not head.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff"))
        and sniff_wide(head[:4096]) is None
    ):
        return "binary"
    return None


def sniff_format(head: bytes) -> str:
    sample = head[:2048]
    try:
        text = decode_text(sample)
    except DecodeError:
        text = sample.decode("utf-8", errors="ignore")
    start = text.lstrip("\ufeff \t\r\n")[:512].lower()
    if start.startswith("{"):
        return "jsonl"
    if start.startswith("<!doctype html") or start.startswith("<html"):
        return "html"
    if start.startswith(("<?xml", "<rss", "<feed", "<rdf:rdf", "<channel")):
        if "<html" in start:
            return "html"
        return "feed"
    if start.startswith("<") and ("<body" in start or "<head" in start):
        return "html"
    return "text"


# --------------------------------------------------------------------------- splitting


def split_records(
    uri: str,
    data: bytes,
    fmt: str,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> Iterator[RawRecord]:
    """Split a whole file into raw records. Raises a StageError for a file that is
    unusable as a whole (empty, not a feed, refused XML)."""
    if fmt == "jsonl":
        yield from split_jsonl(uri, data, max_items)
        return
    if fmt in FEED_FORMATS:
        yield from split_feed(uri, data, max_items)
        return
    if not data.strip():
        raise EmptyInput("empty file")
    yield RawRecord(uri, 0, fmt, data)


class RecordCap(StageError):
    """A file with more records than the per-file cap: the rest are not read."""


def split_jsonl(uri: str, data: bytes, max_items: int = DEFAULT_MAX_ITEMS) -> Iterator[RawRecord]:
    if not data.strip():
        raise EmptyInput("empty file")
    count = 0
    for lineno, line in enumerate(data.split(b"\n"), start=1):
        if line.strip():
            if count >= max_items:
                raise RecordCap(
                    f"more than {max_items} records; line {lineno} and after were not read"
                )
            count += 1
            yield RawRecord(uri, lineno, "jsonl", line.rstrip(b"\r"))


def split_all(
    uri: str,
    data: bytes,
    fmt: str,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> tuple[list[RawRecord], BaseException | None]:
    """:func:`split_records` that never raises: the records split before any failure,
    and the failure (any exception: a bad file, a cap, RecursionError, MemoryError...)."""
    records: list[RawRecord] = []
    try:
        for record in split_records(uri, data, fmt, max_record_bytes, max_items):
            records.append(record)
    except Exception as exc:  # noqa: BLE001 - one bad file never stops a job
        return records, exc
    return records, None


def split_feed(uri: str, data: bytes, max_items: int = DEFAULT_MAX_ITEMS) -> Iterator[RawRecord]:
    """Any feed dialect (feedparser): one raw record per item, its payload the item's
    fields as canonical JSON (see :mod:`transforms.feeds`). Items beyond ``max_items``
    raise :class:`FeedItemCap` after the first ``max_items`` are yielded."""
    if not data.strip():
        raise EmptyInput("empty file")
    feed = read_feed(data, max_items)
    fmt = kind_of(feed.version)
    attrs = {"feed_title": feed.feed_title} if feed.feed_title else {}
    for index, entry in enumerate(feed.entries):
        yield RawRecord(uri, index, fmt, entry_payload(entry), dict(attrs))
    if feed.dropped:
        raise RecordCap(
            f"feed has {feed.dropped} items beyond the cap of {max_items}; they were not read"
        )
