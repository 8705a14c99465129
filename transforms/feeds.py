"""Feeds (RSS 0.9x/1.0/2.0, Atom 0.3/1.0, CDF) read with feedparser; Beam-free.

feedparser is the lenient, well-kept reader news tools rely on: every dialect, namespaces
(``media:title`` never beats ``title``), ``xml:base``, base64 content, Windows-1252
character references, HTML sanitizing (script text never leaks), and recovery of entries
from ill-formed feeds. khabar adds what it must not give up:

* **Security before feedparser sees the bytes**: any ``<!ENTITY`` declaration is refused
  (billion laughs, XXE: feedparser would expand internal entities), and the element
  nesting is bounded (:data:`MAX_DEPTH`), by one linear scan of the decoded text.
* **Encodings** by :mod:`transforms.encodings` (declared, BOM, UTF-16/32, WHATWG labels,
  detection); feedparser is handed UTF-8.
* **An item cap** per feed (:data:`DEFAULT_MAX_ITEMS`).

:func:`read_feed` returns one JSON-serialisable dict per entry (:func:`entry_fields`),
which travels as the raw record's payload (:func:`entry_payload`; the read stage splits a
feed with them); the parse stage's ``transforms.parse.parse_feed_item`` turns such a
payload (or a single ``<item>``/``<entry>`` as published by older khabar versions) into
article fields.
"""

from __future__ import annotations

import io
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import feedparser

from khabar.transforms.common import DEFAULT_MAX_ITEMS, StageError
from khabar.transforms.encodings import decode

__all__ = [
    "DEFAULT_MAX_ITEMS",
    "MAX_DEPTH",
    "FeedItems",
    "MalformedXML",
    "XMLSecurityError",
    "check_safe",
    "entry_payload",
    "read_feed",
]

MAX_DEPTH = 256
ENTRY_PAYLOAD_MARK = "khabar_feed_entry"


class XMLSecurityError(StageError):
    """XML refused for safety: entity declarations or nesting beyond the bound."""


class MalformedXML(StageError):
    """Bytes that are not a feed (feedparser finds no feed and no entries)."""


_ENTITY_DECL = re.compile(r"<!ENTITY", re.IGNORECASE)


def check_safe(text: str, max_depth: int = MAX_DEPTH) -> None:
    """Refuse entity declarations and nesting deeper than ``max_depth`` (linear scan)."""
    if _ENTITY_DECL.search(text):
        raise XMLSecurityError(
            "XML refused: entity declaration (<!ENTITY>); entities are never expanded"
        )
    depth = 0
    find = text.find
    pos = 0
    n = len(text)
    while True:
        lt = find("<", pos)
        if lt < 0 or lt + 1 >= n:
            return
        nxt = text[lt + 1]
        if nxt == "!":
            if text.startswith("<!--", lt):
                end = find("-->", lt + 4)
                pos = n if end < 0 else end + 3
            elif text.startswith("<![CDATA[", lt):
                end = find("]]>", lt + 9)
                pos = n if end < 0 else end + 3
            else:
                end = find(">", lt + 2)
                pos = n if end < 0 else end + 1
            continue
        if nxt == "?":
            end = find("?>", lt + 2)
            pos = n if end < 0 else end + 2
            continue
        if nxt == "/":
            depth = max(depth - 1, 0)
            pos = lt + 2
            continue
        if not (nxt.isalpha() or nxt == "_"):
            pos = lt + 1
            continue
        end = find(">", lt + 1)
        if end < 0:
            return
        if text[end - 1] != "/":
            depth += 1
            if depth > max_depth:
                raise XMLSecurityError(f"XML refused: elements nested deeper than {max_depth}")
        pos = end + 1


_XML_DECL_ENCODING = re.compile(r"""^(\s*<\?xml[^>]*?encoding\s*=\s*)(["'])[^"']*\2""")


def _as_utf8(text: str) -> bytes:
    """The text for feedparser: UTF-8, its XML declaration saying so."""
    text = text.lstrip("\ufeff")
    return _XML_DECL_ENCODING.sub(r"\g<1>\g<2>utf-8\g<2>", text, count=1).encode(
        "utf-8", "surrogatepass"
    )


def _clean_str(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    # lone surrogates (from &#xD800;) are not text: replaced so the payload is UTF-8
    return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _detail(entry: Any, key: str) -> dict[str, str] | None:
    value = _clean_str(entry.get(key))
    if value is None:
        return None
    detail = entry.get(key + "_detail") or {}
    return {"value": value, "type": detail.get("type") or "text/html"}


def _iso(parsed: Any) -> str | None:
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", parsed) if parsed else None
    except (TypeError, ValueError):
        return None


def entry_fields(entry: Any, feed: Any) -> dict[str, Any]:
    """The parts of one feedparser entry khabar uses, JSON-serialisable."""
    contents = []
    for content in entry.get("content") or []:
        value = _clean_str(content.get("value"))
        if value is not None and value.strip():
            contents.append({"value": value, "type": content.get("type") or "text/html"})
    source = entry.get("source") or {}
    media = entry.get("media_description")
    dates = {}
    for key in ("published", "updated", "created"):
        raw = _clean_str(entry.get(key))
        if raw:
            dates[key] = raw
            dates[key + "_feedparser"] = _iso(entry.get(key + "_parsed"))
    return {
        ENTRY_PAYLOAD_MARK: 1,
        "title": _detail(entry, "title"),
        "link": _clean_str(entry.get("link")),
        "id": _clean_str(entry.get("id")),
        "summary": _detail(entry, "summary"),
        "content": contents,
        "media_description": _clean_str(media) if media else None,
        "dates": dates,
        "source": _clean_str(source.get("title")),
        "feed_title": _clean_str(feed.get("title")),
        "language": _clean_str(entry.get("language") or feed.get("language")),
    }


@dataclass
class FeedItems:
    version: str
    feed_title: str | None
    entries: list[dict[str, Any]] = field(default_factory=list)
    bozo: str | None = None  # why feedparser found the feed ill-formed, if it did
    dropped: int = 0  # entries beyond the item cap


def kind_of(version: str) -> str:
    return "atom" if version.startswith("atom") else "rss"


def read_feed(
    data: bytes, max_items: int = DEFAULT_MAX_ITEMS, max_depth: int = MAX_DEPTH
) -> FeedItems:
    """A whole feed -> its entries. Raises a ``StageError`` only for the feed as a whole
    (refused, undecodable, or not a feed at all)."""
    text = decode(data).text
    check_safe(text, max_depth)
    result = feedparser.parse(io.BytesIO(_as_utf8(text)), sanitize_html=True)
    bozo = None
    if result.get("bozo"):
        exc = result.get("bozo_exception")
        bozo = f"{type(exc).__name__}: {exc}"[:300] if exc else "ill-formed"
    entries = result.get("entries") or []
    version = result.get("version") or ""
    if not entries and not version:
        raise MalformedXML(f"not a feed (feedparser: {bozo or 'no feed element'})")
    feed = result.get("feed") or {}
    out = FeedItems(version or "rss", _clean_str(feed.get("title")), bozo=bozo)
    out.entries = [entry_fields(e, feed) for e in entries[:max_items]]
    out.dropped = max(len(entries) - max_items, 0)
    return out


def entry_payload(entry: dict[str, Any]) -> bytes:
    """The raw-record payload of one entry: canonical JSON (same entry, same bytes)."""
    return json.dumps(entry, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode(
        "utf-8"
    )
