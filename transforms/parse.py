"""Parse stage: raw bytes in any supported format -> one ``Article`` shape with provenance.

Beam-free core:

* :func:`decode` - any encoding Python or WHATWG knows, declared or detected
  (:mod:`transforms.encodings`); :class:`DecodeError` only when no decoding is credible
  (the bytes go to the dead letters intact).
* :func:`detect_format` - by extension, else by sniffing the content; overridable.
* :func:`split_records` - a file's bytes -> raw records (JSON Lines: one per line;
  feeds: one per item, read with feedparser behind khabar's refusal of entity
  declarations and deep nesting (:mod:`transforms.feeds`); text and HTML: the whole file).
* :func:`parse_record` - one raw record -> an article dict (title, lead, body, url,
  source, published_at, provenance).

The PTransform :class:`ParseArticles` wraps :func:`parse_record`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import apache_beam as beam
from apache_beam.metrics import Metrics

from khabar.transforms import metrics as M
from khabar.transforms.common import Article, StageError, dead_letter_from_raw, run_stage
from khabar.transforms.dates import DateParseError, parse_date
from khabar.transforms.encodings import DecodeError, decode_text
from khabar.transforms.feeds import (
    DEFAULT_MAX_ITEMS,
    entry_payload,
    item_article,
    kind_of,
    read_feed,
)
from khabar.transforms.feeds import (
    MalformedXML as MalformedXML,
)
from khabar.transforms.feeds import (
    XMLSecurityError as XMLSecurityError,
)
from khabar.transforms.records import RawRecordDict

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

DEFAULT_MAX_RECORD_BYTES = 5 * 1024 * 1024


class TooLarge(StageError):
    """The record is above the configured size limit."""


class EmptyInput(StageError):
    """An empty file or an article without text."""


class InvalidRecord(StageError):
    """A record with the wrong shape (e.g. a JSON line that is not an object)."""


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


# --------------------------------------------------------------------------- decoding


def decode(data: bytes) -> str:
    """Decode any text encoding (see :mod:`transforms.encodings`); ``DecodeError`` when
    no decoding is credible."""
    return decode_text(data)


# --------------------------------------------------------------------------- formats


def detect_format(uri: str, head: bytes, override: str | None = None) -> str:
    """Format of a file: ``override`` if given, else by extension, else by content."""
    if override and override != "auto":
        return override
    name = uri.rsplit("/", 1)[-1].lower()
    for ext in (".gz", ".bz2", ".zst"):
        if name.endswith(ext):
            name = name[: -len(ext)]
    dot = name.rfind(".")
    if dot > 0 and name[dot:] in EXTENSIONS:
        return EXTENSIONS[name[dot:]]
    return sniff_format(head)


def sniff_format(head: bytes) -> str:
    sample = head[:2048]
    try:
        text = decode(sample)
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


# --------------------------------------------------------------------------- parsing

# A leading dateline names the source: "آران نیوز؛ ...", "ایسنا؛ ...".
_DATELINE = re.compile(r"^\s*([^\s؛:;,.،]{2,25}(?:[ \u200c][^\s؛:;,.،]{1,25}){0,3})\s*؛\s*")


def extract_dateline(text: str) -> tuple[str | None, str]:
    """Split a leading dateline (``آران نیوز؛``) off ``text``: (source, rest)."""
    match = _DATELINE.match(text)
    if not match:
        return None, text
    return match.group(1).strip(), text[match.end() :]


_PARAGRAPH_SPLIT = re.compile(r"\n[ \t\r\u00a0]*\n+")


def parse_text(text: str) -> dict[str, Any]:
    """Plain-text article: first non-empty line the title, the first paragraph the lead,
    the rest the body; a leading dateline in the lead or body names the source."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    lines = text.strip().split("\n", 1)
    title = lines[0].strip()
    rest = lines[1] if len(lines) > 1 else ""
    paragraphs = [p.strip() for p in _PARAGRAPH_SPLIT.split(rest.strip()) if p.strip()]
    if not title:
        raise EmptyInput("text article without a title line")
    lead = paragraphs[0] if len(paragraphs) > 1 else None
    body_paragraphs = paragraphs[1:] if len(paragraphs) > 1 else paragraphs
    source = None
    if lead:
        source, lead = extract_dateline(lead)
    if source is None and body_paragraphs:
        source, body_paragraphs[0] = extract_dateline(body_paragraphs[0])
    body = "\n\n".join(p for p in body_paragraphs if p)
    if not body and lead:
        body, lead = lead, None
    return {"title": title, "lead": lead, "body": body, "source": source}


_JSON_FIELDS = {
    "title": ("title", "headline"),
    "body": ("body", "text", "content"),
    "lead": ("lead", "summary", "abstract", "description"),
    "url": ("url", "link"),
    "published": ("published", "published_at", "date", "pubDate"),
    "source": ("source", "outlet", "site"),
    "language": ("language", "lang"),
}


def _json_field(obj: dict[str, Any], key: str) -> str | None:
    for name in _JSON_FIELDS[key]:
        if name in obj and obj[name] is not None:
            value = obj[name]
            # only a date may be a number (epoch seconds or milliseconds)
            numeric_ok = key == "published" and isinstance(value, (int, float))
            if isinstance(value, bool) or not (isinstance(value, str) or numeric_ok):
                raise InvalidRecord(
                    f"field {name!r} must be a string, got {type(value).__name__}"
                )
            if isinstance(value, float) and not math.isfinite(value):
                raise InvalidRecord(f"field {name!r} is not a finite number")
            return str(value)
    return None


def parse_json_line(text: str) -> dict[str, Any]:
    try:
        obj = json.loads(text)
    except RecursionError:
        raise InvalidRecord("JSON nested too deeply") from None
    if not isinstance(obj, dict):
        raise InvalidRecord(f"JSON line is a {type(obj).__name__}, expected an object")
    out = {key: _json_field(obj, key) for key in _JSON_FIELDS}
    if not out["title"] and not out["body"]:
        raise EmptyInput("JSON article without title and body")
    return out


_ZWNJ_STAND_IN = "\u16a0"  # RUNIC LETTER FEHU: printable, never in the news we read
_ZWNJ_FORMS = re.compile(r"\u200c|&zwnj;|&#8204;|&#x200[cC];")


def parse_html(text: str, url: str | None = None) -> dict[str, Any]:
    """HTML page: main text and metadata with trafilatura (a well-kept extractor)."""
    import trafilatura

    # trafilatura drops non-printable characters, ZWNJ among them, which glues Persian
    # words together (دریچه‌های -> دریچههای): carry ZWNJ through as a printable stand-in.
    stand_in = _ZWNJ_STAND_IN if _ZWNJ_STAND_IN not in text else None
    if stand_in:
        text = _ZWNJ_FORMS.sub(stand_in, text)
    doc = trafilatura.bare_extraction(
        text,
        url=url,
        with_metadata=True,
        include_comments=False,
        include_tables=False,
        as_dict=True,
    )
    if not doc or not (doc.get("text") or "").strip():
        raise EmptyInput("HTML page without extractable body text")
    if stand_in:
        doc = {
            k: v.replace(stand_in, "\u200c") if isinstance(v, str) else v for k, v in doc.items()
        }
    title = doc.get("title") or ""
    # trafilatura puts one paragraph per line; the article's own <h1> often repeats the title
    lines = [line.strip() for line in (doc.get("text") or "").split("\n") if line.strip()]
    if title and lines and lines[0] == title.strip() and len(lines) > 1:
        lines = lines[1:]
    body = "\n\n".join(lines)
    lead = doc.get("description") or None
    if not title:
        title, _, body_rest = body.partition("\n")
        body = body_rest or body
    return {
        "title": title,
        "lead": lead,
        "body": body,
        "url": doc.get("url") or url,
        "published": doc.get("date"),
        "source": doc.get("sitename") or None,
    }


def parse_feed_item(payload: bytes, fmt: str) -> dict[str, Any]:
    """One feed item as split by :func:`split_feed` (or a bare ``<item>``/``<entry>``)."""
    return item_article(payload, fmt)


def record_id(input_uri: str, position: int, payload: bytes) -> str:
    h = hashlib.sha256()
    h.update(input_uri.encode("utf-8", "surrogatepass"))
    h.update(b"\0%d\0" % position)
    h.update(payload)
    return h.hexdigest()[:32]


def url_host(url: str | None) -> str | None:
    """The site of a URL (``www.`` dropped), the outlet's name of last resort."""
    if not url:
        return None
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return None
    if not host:
        return None
    return host[4:] if host.startswith("www.") else host


def _language_code(value: Any) -> str | None:
    """``fa-IR`` -> ``fa``; JSON's ``language`` field is passed as given."""
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip().replace("_", "-").split("-", 1)[0].lower() or None


def source_zone(language_hint: str | None, text: str) -> str | None:
    """Zone for naive times: Iran for Persian sources (by hint or by Persian letters)."""
    if language_hint in ("fa", "fas", "per"):
        return "Asia/Tehran"
    if language_hint is None and re.search("[پچژگی]", text[:2000]):
        return "Asia/Tehran"
    return None


def parse_record(raw: dict[str, Any], max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> Article:
    """One raw record (``RawRecord.to_dict()``) -> an article dict (not yet cleaned)."""
    payload: bytes = raw["payload"]
    fmt: str = raw["format"]
    if len(payload) > max_record_bytes:
        raise TooLarge(f"record of {len(payload)} bytes is above the limit of {max_record_bytes}")
    attrs = dict(raw.get("attributes") or {})
    if fmt in ("rss", "atom"):
        fields = parse_feed_item(payload, fmt)
    else:
        text = decode(payload)
        if "\x00" in text:
            raise DecodeError("text contains NUL characters (binary data?)")
        if fmt == "jsonl":
            fields = parse_json_line(text)
        elif fmt == "html":
            fields = parse_html(text, attrs.get("url"))
        elif fmt == "text":
            fields = parse_text(text)
        else:
            raise InvalidRecord(f"unknown input format {fmt!r}")
    published_raw = fields.get("published")
    language_hint = _language_code(fields.get("language"))
    published_at = None
    date_error = None
    if published_raw is not None and str(published_raw).strip():
        zone = source_zone(language_hint, (fields.get("title") or "") + (fields.get("body") or ""))
        try:
            published_at = parse_date(str(published_raw), default_tz=zone)
        except DateParseError as exc:
            # an unreadable or implausible date never loses the article: left empty
            date_error = str(exc)
    title = fields.get("title") or ""
    body = fields.get("body") or ""
    url = fields.get("url") or attrs.get("url")
    feed_title = attrs.get("feed_title") or fields.get("feed_title")
    source = fields.get("source") or attrs.get("source") or feed_title or url_host(url)
    return {
        "id": record_id(raw["input_uri"], raw["position"], payload),
        "url": url,
        "source": source,
        "feed": feed_title or attrs.get("feed"),
        "title": title,
        "lead": fields.get("lead"),
        "body": body,
        "published_at": published_at,
        "raw_sha256": hashlib.sha256(payload).hexdigest(),
        "input_uri": raw["input_uri"],
        "input_format": fmt,
        "input_position": raw["position"],
        "_raw": payload,
        "_attributes": attrs,
        "_language_hint": language_hint,
        "_plain_fields": list(fields.get("plain") or []),
        "_date_error": date_error,
    }


class ParseArticles(beam.PTransform):
    """Raw records (``RawRecord.to_dict()``) -> articles; failures -> dead letters."""

    def __init__(self, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> None:
        super().__init__()
        self.max_record_bytes = max_record_bytes

    def expand(self, pcoll):
        limit = self.max_record_bytes
        return run_stage(
            pcoll, "Parse", "parse", lambda: _raw_to_article_adapter(limit), dead_letter_from_raw
        )


def _raw_to_article_adapter(limit: int):
    dates_left_empty = Metrics.counter(M.stage(M.PARSE), M.DATE_LEFT_EMPTY)

    def core(raw: RawRecordDict) -> Article:
        article = parse_record(raw, limit)
        if article.get("_date_error"):
            dates_left_empty.inc()
        return article

    return core
