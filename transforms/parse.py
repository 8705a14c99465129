"""Parse stage: raw bytes in any supported format -> one ``Article`` shape with provenance.

Beam-free core:

* :func:`decode` - UTF-8 (with or without BOM) and UTF-16 (BOM or NUL-pattern sniffed);
  anything else raises :class:`DecodeError` (the bytes go to the dead letters intact).
* :func:`detect_format` - by extension, else by sniffing the content; overridable.
* :func:`split_records` - a file's bytes -> raw records (JSON Lines: one per line;
  RSS/Atom: one per item, XML parsed with defusedxml so entity expansion and external
  entities are refused; text and HTML: the whole file).
* :func:`parse_record` - one raw record -> an article dict (title, lead, body, url,
  source, published_at, provenance).

The PTransform :class:`ParseArticles` wraps :func:`parse_record`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import apache_beam as beam
import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException

from khabar.transforms.common import Article, StageError, dead_letter_from_raw, run_stage
from khabar.transforms.dates import parse_date
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


class DecodeError(StageError):
    """The bytes are not UTF-8 or UTF-16 text."""


class TooLarge(StageError):
    """The record is above the configured size limit."""


class EmptyInput(StageError):
    """An empty file or an article without text."""


class InvalidRecord(StageError):
    """A record with the wrong shape (e.g. a JSON line that is not an object)."""


class XMLSecurityError(StageError):
    """XML refused for safety: entity declarations, external entities or DTD tricks."""


class MalformedXML(StageError):
    """XML that does not parse, or is neither RSS nor Atom."""


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

_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def decode(data: bytes) -> str:
    """Decode UTF-8 (BOM optional) or UTF-16 (BOM, or sniffed from NUL bytes)."""
    if data.startswith(b"\xef\xbb\xbf"):
        encoding, body = "utf-8", data[3:]
    elif data.startswith(_UTF16_BOMS):
        encoding, body = "utf-16", data
    else:
        encoding, body = _sniff_utf16(data) or "utf-8", data
    try:
        return body.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DecodeError(
            f"not valid {encoding.upper()}: {exc.reason} at byte {exc.start}"
            f" (of {len(data)}); only UTF-8 and UTF-16 are accepted"
        ) from None


def _sniff_utf16(data: bytes) -> str | None:
    """UTF-16 without BOM: most ASCII-range code units have one NUL byte."""
    sample = data[:4096]
    if len(sample) < 4 or len(sample) % 2:
        return None
    even_nuls = sample[0::2].count(0)
    odd_nuls = sample[1::2].count(0)
    half = len(sample) // 2
    if odd_nuls > 0.3 * half and even_nuls < 0.05 * half:
        return "utf-16-le"
    if even_nuls > 0.3 * half and odd_nuls < 0.05 * half:
        return "utf-16-be"
    return None


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
    try:
        text = decode(head[:2048] if len(head) % 2 == 0 else head[:2047])
    except DecodeError:
        try:
            text = head[:2048].decode("utf-8", errors="ignore")
        except Exception:  # noqa: BLE001
            return "text"
    start = text.lstrip("\ufeff \t\r\n")[:512].lower()
    if start.startswith("{"):
        return "jsonl"
    if start.startswith("<!doctype html") or start.startswith("<html"):
        return "html"
    if start.startswith("<?xml") or start.startswith("<rss") or start.startswith("<feed"):
        if "<html" in start:
            return "html"
        return "feed"
    if start.startswith("<") and ("<body" in start or "<head" in start):
        return "html"
    return "text"


# --------------------------------------------------------------------------- splitting

ATOM_NS = "http://www.w3.org/2005/Atom"


def split_records(
    uri: str, data: bytes, fmt: str, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
) -> Iterator[RawRecord]:
    """Split a whole file into raw records. Raises a StageError for a file that is
    unusable as a whole (empty, malformed or refused XML)."""
    if fmt == "jsonl":
        yield from split_jsonl(uri, data)
        return
    if fmt in FEED_FORMATS:
        yield from split_feed(uri, data, max_record_bytes)
        return
    if not data.strip():
        raise EmptyInput("empty file")
    yield RawRecord(uri, 0, fmt, data)


def split_jsonl(uri: str, data: bytes) -> Iterator[RawRecord]:
    if not data.strip():
        raise EmptyInput("empty file")
    for lineno, line in enumerate(data.split(b"\n"), start=1):
        if line.strip():
            yield RawRecord(uri, lineno, "jsonl", line.rstrip(b"\r"))


def _parse_xml(data: bytes) -> ET.Element:
    if not data.strip():
        raise EmptyInput("empty file")
    try:
        return DET.fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise XMLSecurityError(f"XML refused: {type(exc).__name__}: {exc}") from None
    except ET.ParseError as exc:
        raise MalformedXML(f"XML does not parse: {exc}") from None


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def split_feed(uri: str, data: bytes, max_record_bytes: int) -> Iterator[RawRecord]:
    """RSS 2.0 / RSS 1.0 (RDF) / Atom: one raw record per item, its XML re-serialized."""
    root = _parse_xml(data)
    kind = _local(root.tag).lower()
    if kind == "rss" or kind == "rdf":
        fmt = "rss"
        channel = next((c for c in root if _local(c.tag) == "channel"), None)
        feed_title = _child_text(channel, "title") if channel is not None else None
        items = [e for e in root.iter() if _local(e.tag) == "item"]
    elif kind == "feed":
        fmt = "atom"
        feed_title = _child_text(root, "title")
        items = [e for e in root if _local(e.tag) == "entry"]
    else:
        raise MalformedXML(f"XML root <{kind}> is neither RSS nor Atom")
    attrs = {"feed_title": feed_title} if feed_title else {}
    for index, item in enumerate(items):
        payload = ET.tostring(item, encoding="utf-8")
        yield RawRecord(uri, index, fmt, payload, dict(attrs))


def _child(elem: ET.Element | None, name: str, ns: str | None = None) -> ET.Element | None:
    if elem is None:
        return None
    for child in elem:
        if _local(child.tag) == name and (ns is None or child.tag.startswith("{" + ns)):
            return child
    return None


def _child_text(elem: ET.Element | None, name: str, ns: str | None = None) -> str | None:
    child = _child(elem, name, ns)
    if child is None:
        return None
    text = "".join(child.itertext()).strip()
    return text or None


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
    """One RSS ``<item>`` or Atom ``<entry>`` (as split by :func:`split_feed`)."""
    item = _parse_xml(payload)
    if fmt == "atom":
        link = None
        for child in item:
            if _local(child.tag) == "link" and child.get("rel", "alternate") == "alternate":
                link = child.get("href")
                break
        content = _child_text(item, "content")
        summary = _child_text(item, "summary")
        published = _child_text(item, "published") or _child_text(item, "updated")
        source = _child_text(_child(item, "source"), "title")  # the author is not the outlet
        guid = _child_text(item, "id")
    else:
        link = _child_text(item, "link")
        content = _child_text(item, "encoded")  # content:encoded
        summary = _child_text(item, "description")
        published = _child_text(item, "pubDate") or _child_text(item, "date")  # dc:date
        source = _child_text(item, "source")
        guid = _child_text(item, "guid")
    title = _child_text(item, "title") or ""
    body = content or summary or ""
    lead = summary if content and summary else None
    if not title and not body:
        raise EmptyInput("feed item without title and text")
    return {
        "title": title,
        "lead": lead,
        "body": body,
        "url": link or (guid if guid and guid.startswith("http") else None),
        "published": published,
        "source": source,
        "guid": guid,
    }


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
    language_hint = fields.get("language")
    published_at = None
    if published_raw and str(published_raw).strip():
        zone = source_zone(language_hint, (fields.get("title") or "") + (fields.get("body") or ""))
        published_at = parse_date(str(published_raw), default_tz=zone)
    title = fields.get("title") or ""
    body = fields.get("body") or ""
    url = fields.get("url") or attrs.get("url")
    source = (
        fields.get("source") or attrs.get("source") or attrs.get("feed_title") or url_host(url)
    )
    return {
        "id": record_id(raw["input_uri"], raw["position"], payload),
        "url": url,
        "source": source,
        "feed": attrs.get("feed_title") or attrs.get("feed"),
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
    def core(raw: RawRecordDict) -> Article:
        return parse_record(raw, limit)

    return core
