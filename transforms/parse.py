"""Parse stage's core: one raw record in any supported format -> one ``Article`` shape
with provenance. Beam-free.

Its input comes from the read stage's core (:mod:`transforms.split`: format detection and
splitting); parsing never goes back to it.

* :func:`decode` - any encoding Python or WHATWG knows, declared or detected
  (:mod:`transforms.encodings`); :class:`DecodeError` only when no decoding is credible
  (the bytes go to the dead letters intact).
* :func:`parse_text`, :func:`parse_json_line`, :func:`parse_html`,
  :func:`parse_feed_item` - the fields of one record of each format.
* :func:`parse_record` - one raw record -> an article dict (title, lead, body, url,
  source, published_at, provenance).
* :func:`parse_core` - the stage's core (``parse_record``, counted); its PTransform is
  ``khabar.pipeline.stages.parse.ParseArticles``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from khabar.transforms import metrics as M
from khabar.transforms.common import (
    DEFAULT_MAX_RECORD_BYTES,
    Article,
    Count,
    EmptyInput,
    InvalidRecord,
    StageError,
    TooLarge,
    no_count,
)
from khabar.transforms.dates import DateParseError, parse_date
from khabar.transforms.encodings import DecodeError, decode_text
from khabar.transforms.feeds import ENTRY_PAYLOAD_MARK, MalformedXML, read_feed
from khabar.transforms.records import RawRecordDict

# --------------------------------------------------------------------------- decoding


def decode(data: bytes) -> str:
    """Decode any text encoding (see :mod:`transforms.encodings`); ``DecodeError`` when
    no decoding is credible."""
    return decode_text(data)


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


#: JSON names of what the input carries beside the text (schema v3: category, tags, author)
_JSON_META = {
    "category": ("category", "section"),
    "tags": ("tags", "keywords"),
    "author": ("author", "authors", "byline", "creator"),
}
#: ``extra``: at most this many other fields, each value at most this many characters
EXTRA_FIELDS = 50
EXTRA_CHARS = 2000


def _texts(value: Any) -> list[str]:
    """Strings of a JSON value that is a string, or a list of strings or numbers (other
    shapes, such as objects, are kept in ``extra`` instead)."""
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    if isinstance(value, list):
        out = []
        for item in value:
            if isinstance(item, dict):  # {"name": "..."} authors
                item = item.get("name")
            if isinstance(item, (str, int, float)) and not isinstance(item, bool):
                text = str(item).strip()
                if text:
                    out.append(text)
        return out
    return []


def unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _cut(text: str, limit: int = EXTRA_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def json_metadata(obj: dict[str, Any]) -> dict[str, Any]:
    """category, tags, author and ``extra`` (every other field) of a JSON article."""
    out: dict[str, Any] = {"category": None, "tags": [], "author": None}
    used: set[str] = {name for names in _JSON_FIELDS.values() for name in names}
    for key, names in _JSON_META.items():
        for name in names:
            if name not in obj:
                continue
            if obj[name] is None:
                used.add(name)  # present but empty: nothing to keep
                continue
            texts = _texts(obj[name])
            if not texts and obj[name] not in ("", []):
                continue  # an unexpected shape: left in extra
            used.add(name)
            if key == "tags":
                if len(texts) == 1 and isinstance(obj[name], str):
                    texts = [t.strip() for t in re.split(r"[,،;]", texts[0]) if t.strip()]
                out["tags"] = unique(out["tags"] + texts)
            elif texts and out[key] is None:
                out[key] = _cut(", ".join(unique(texts)), 500)
    extra: dict[str, str] = {}
    for name, value in obj.items():
        if name in used or len(extra) >= EXTRA_FIELDS:
            continue
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        extra[_cut(str(name), 200)] = _cut(text)
    out["extra"] = extra
    return out


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
    out.update(json_metadata(obj))
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
        doc = {k: _restore(v, stand_in) for k, v in doc.items()}
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
        "author": doc.get("author") or None,
        "category": (_split_list(doc.get("categories")) or [None])[0],
        "tags": unique(_split_list(doc.get("tags")) + _split_list(doc.get("categories"))[1:]),
    }


def _restore(value: Any, stand_in: str) -> Any:
    """Put ZWNJ back for its stand-in, in strings and lists of strings (tags)."""
    if isinstance(value, str):
        return value.replace(stand_in, "\u200c")
    if isinstance(value, list):
        return [_restore(v, stand_in) for v in value]
    return value


def _split_list(value: Any) -> list[str]:
    """trafilatura's categories and tags: a list of (comma-separated) strings, or one."""
    items = value if isinstance(value, list) else [value] if isinstance(value, str) else []
    return [part.strip() for item in items for part in str(item).split(",") if part.strip()]


PLAIN = "text/plain"


class EmptyFeedItem(StageError):
    """A feed item without title and text."""


def _wrap_item(payload: bytes, fmt: str) -> bytes:
    """A bare ``<item>``/``<entry>`` (older payloads) inside a minimal feed."""
    text = decode_text(payload)
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text.lstrip("\ufeff"), count=1)
    if fmt == "atom":
        doc = f'<feed xmlns="http://www.w3.org/2005/Atom">{text}</feed>'
    else:
        doc = f'<rss version="2.0"><channel>{text}</channel></rss>'
    return doc.encode("utf-8", "surrogatepass")


def _entry_from_payload(payload: bytes, fmt: str) -> dict[str, Any]:
    """The entry a payload holds: the read stage's JSON, or (older payloads) a bare item
    read as a one-item feed, the one use parsing makes of the feed reader."""
    if payload.lstrip()[:1] == b"{":
        try:
            obj = json.loads(payload)
        except (ValueError, RecursionError):
            obj = None
        if isinstance(obj, dict) and obj.get(ENTRY_PAYLOAD_MARK):
            return obj
    items = read_feed(_wrap_item(payload, fmt), max_items=2)
    if len(items.entries) != 1:
        raise MalformedXML(f"expected one feed item, found {len(items.entries)}")
    return items.entries[0]


def _markup(detail: dict[str, str] | None) -> tuple[str | None, bool]:
    """(value, is_plain_text)."""
    if not detail:
        return None, False
    return detail["value"], detail.get("type") == PLAIN


def parse_feed_item(payload: bytes, fmt: str) -> dict[str, Any]:
    """Article fields of one feed item as split by ``split.split_feed`` (or a bare
    ``<item>``/``<entry>``). ``plain`` names the fields that are plain text
    (``type="text"``): the clean stage must not read markup in them."""
    entry = _entry_from_payload(payload, fmt)
    plain: list[str] = []
    title, title_plain = _markup(entry.get("title"))
    if title_plain:
        plain.append("title")
    contents = entry.get("content") or []
    content = contents[0] if contents else None
    summary = entry.get("summary")
    body_detail = content or summary
    if body_detail is None and entry.get("media_description"):
        body_detail = {"value": entry["media_description"], "type": PLAIN}
    body, body_plain = _markup(body_detail)
    lead = None
    if content and summary and summary["value"].strip() != content["value"].strip():
        lead, lead_plain = _markup(summary)
        if lead_plain:
            plain.append("lead")
    if body_plain:
        plain.append("body")
    if not (title or "").strip() and not (body or "").strip():
        raise EmptyFeedItem("feed item without title and text")
    dates = entry.get("dates") or {}
    published = dates.get("published") or dates.get("updated") or dates.get("created")
    return {
        "title": title or "",
        "lead": lead,
        "body": body or "",
        "url": entry.get("link"),
        "published": published,
        "source": entry.get("source"),
        "guid": entry.get("id"),
        "feed_title": entry.get("feed_title"),
        "language": entry.get("language"),
        "plain": plain,
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


#: ``extra`` key that keeps why a date was left empty (``published_at`` null).
DATE_ERROR_KEY = "published_at_error"


def _with_date_error(extra: dict[str, str] | None, date_error: str | None) -> dict[str, str]:
    out = dict(extra or {})
    if date_error:
        out[DATE_ERROR_KEY] = date_error
    return out


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
        "category": fields.get("category"),
        "tags": list(fields.get("tags") or []),
        "author": fields.get("author"),
        "extra": _with_date_error(fields.get("extra"), date_error),
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


def parse_core(
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES, count: Count = no_count
) -> Callable[[RawRecordDict], Article]:
    """The parse stage's core: :func:`parse_record`, counting the dates left empty."""

    def core(raw: RawRecordDict) -> Article:
        article = parse_record(raw, max_record_bytes)
        if article.get("_date_error"):
            count(M.stage(M.PARSE), M.DATE_LEFT_EMPTY)
        return article

    return core
