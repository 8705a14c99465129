"""Exact deduplication: canonical URL and content fingerprint, with a deterministic survivor.

Beam-free:

* :func:`canonical_url` - scheme, ``www.``, default ports, tracking parameters, fragment,
  trailing slash and percent-encoding folded, so the same page under different links meets.
* :func:`content_fingerprint` - SHA-256 of the normalized body (with the title too when
  the body is shorter than 20 words) with spacing, ZWNJ, punctuation, Arabic/Persian
  letter variants and digits folded: a new headline on the same copy is still a copy.
* :func:`survivor_key` / :func:`resolve_group` - the survivor of a group of copies is the
  article with the earliest ``published_at`` (unknown dates last), then the smallest ``id``:
  two runs on the same input pick the same survivor.

The Beam transforms built on it (batch and streaming) are in ``pipeline/dedup/exact.py``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from khabar.transforms.common import Article

TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "_ga",
        "_gl",
        "ref",
        "ref_src",
        "referrer",
        "cmpid",
        "ocid",
        "spm",
        "share",
        "from",
        "at_medium",
        "at_campaign",
        "xtor",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "hsa_", "itm_")
DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_url(url: str | None) -> str | None:
    """Canonical form of a URL for deduplication; ``None`` when it is not an http(s) URL."""
    if not url:
        return None
    url = url.strip()
    if "://" not in url and url.startswith("www."):
        url = "https://" + url
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower().rstrip(".")
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        pass
    if host.startswith("www."):
        host = host[4:]
    if port and port != DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    path = quote(unquote(parts.path), safe="/:@!$&'()*+,;=-._~")
    path = re.sub(r"/{2,}", "/", path).rstrip("/")
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in TRACKING_PARAMS and not k.lower().startswith(TRACKING_PREFIXES)
    ]
    query.sort()
    return urlunsplit(("https", host, path, urlencode(query, quote_via=quote), ""))


_FOLD = str.maketrans(
    {
        "ي": "ی",
        "ى": "ی",
        "ئ": "ی",
        "ك": "ک",
        "ة": "ه",
        "ۀ": "ه",
        "أ": "ا",
        "إ": "ا",
        "آ": "ا",
        "ٱ": "ا",
        "ؤ": "و",
        "\u200c": " ",
        "\u0640": "",
        **{chr(0x06F0 + i): str(i) for i in range(10)},
        **{chr(0x0660 + i): str(i) for i in range(10)},
    }
)
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
_MARKS = re.compile(r"[\u064b-\u065f\u0670\u06d6-\u06ed]")


# _FOLD as chained str.replace, applied only for characters present: the same result as
# str.translate (no replacement is itself folded again), about five times faster on Persian.
_FOLD_PAIRS = tuple(
    (chr(code), "" if to is None else to if isinstance(to, str) else chr(to))
    for code, to in _FOLD.items()
)


def fold_text(text: str) -> str:
    """Fold spelling variation that does not change the story: case, diacritics,
    Arabic/Persian letter variants, digits, ZWNJ, punctuation and spacing."""
    text = unicodedata.normalize("NFKC", text).casefold()
    for char, to in _FOLD_PAIRS:
        if char in text:
            text = text.replace(char, to)
    text = _MARKS.sub("", text)
    return " ".join(_NON_WORD.sub(" ", text).split())


def fold_text_reference(text: str) -> str:
    """:func:`fold_text` written with ``str.translate`` (what the tests compare it to)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _MARKS.sub("", text.translate(_FOLD))
    return " ".join(_NON_WORD.sub(" ", text).split())


#: Bodies with at least this many words are fingerprinted alone: the same body under a
#: new headline is the same article (outlets rewrite headlines, not agency copy).
BODY_ONLY_MIN_WORDS = 20


def content_fingerprint(title: str, body: str) -> str:
    folded_body = fold_text(body)
    if folded_body.count(" ") + 1 >= BODY_ONLY_MIN_WORDS:
        folded = "body\n" + folded_body
    else:
        folded = fold_text(title) + "\n" + folded_body
    return hashlib.sha256(folded.encode("utf-8")).hexdigest()[:32]


_FAR_FUTURE = dt.datetime.max.replace(tzinfo=dt.UTC)


def survivor_key(article: Article) -> tuple[bool, dt.datetime, str]:
    published = article.get("published_at")
    return (published is None, published or _FAR_FUTURE, article["id"])


def resolve_group(articles: Iterable[Article], reason: str) -> tuple[Article, list[Article]]:
    """Pick the survivor of a group of copies; mark the others as its duplicates."""
    ordered = sorted(articles, key=survivor_key)
    survivor = dict(ordered[0])
    survivor.setdefault("canonical_id", survivor["id"])
    duplicates = [mark_duplicate(a, survivor["id"], survivor["id"], reason) for a in ordered[1:]]
    return survivor, duplicates


def mark_duplicate(article: Article, of_id: str, canonical_id: str, reason: str) -> Article:
    """A copy of ``article`` marked as a duplicate of ``of_id`` (batch and streaming)."""
    return dict(article, duplicate_of=of_id, canonical_id=canonical_id, duplicate_reason=reason)


def fingerprint_article(article: Article) -> Article:
    out = dict(article)
    out["canonical_url"] = canonical_url(article.get("url"))
    out["content_fingerprint"] = content_fingerprint(article["title"], article["body"])
    out.setdefault("duplicate_of", None)
    out.setdefault("duplicate_reason", None)
    out["canonical_id"] = article["id"]
    return out

def known_keys(article: Article) -> list[tuple[str, dict[str, Any]]]:
    """The keys under which an article already written (by an earlier run) makes a new
    copy a duplicate, each with the reference a duplicate points at: its content
    fingerprint and, when it has one, its canonical URL."""
    ref = {
        "id": article["id"],
        "canonical_id": article.get("canonical_id") or article["id"],
        "cluster_id": article.get("cluster_id"),
        "similarity": article.get("similarity"),
    }
    keys = [("content:" + article["content_fingerprint"], ref)]
    if article.get("canonical_url"):
        keys.append(("url:" + article["canonical_url"], ref))
    return keys

def link_to_known(article: Article, known: dict[str, Any], reason: str) -> Article:
    """``article`` as a duplicate of an earlier run's article: it joins that article's
    story cluster, as an exact copy in the same run would (``LinkExactDuplicates``)."""
    dup = mark_duplicate(article, known["id"], known["canonical_id"], reason)
    return dict(dup, cluster_id=known["cluster_id"], similarity=known["similarity"])
