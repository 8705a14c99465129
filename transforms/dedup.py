"""Exact deduplication: canonical URL and content fingerprint, with a deterministic survivor.

Beam-free core:

* :func:`canonical_url` - scheme, ``www.``, default ports, tracking parameters, fragment,
  trailing slash and percent-encoding folded, so the same page under different links meets.
* :func:`content_fingerprint` - SHA-256 of the normalized body (with the title too when
  the body is shorter than 20 words) with spacing, ZWNJ, punctuation, Arabic/Persian
  letter variants and digits folded: a new headline on the same copy is still a copy.
* :func:`survivor_key` / :func:`resolve_group` - the survivor of a group of copies is the
  article with the earliest ``published_at`` (unknown dates last), then the smallest ``id``:
  two runs on the same input pick the same survivor.

PTransform :class:`DeduplicateExact`: articles are grouped by fingerprint, the survivors
of that step by canonical URL, and a final join points every duplicate's ``canonical_id``
at the final survivor. No step needs all articles on one worker.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.metrics import Metrics
from apache_beam.pvalue import TaggedOutput
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.typehints import typehints

from transforms.common import Article

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


DUPLICATES = "duplicates"
#: Keys are strings: a deterministic coder for GroupByKey and for state keys.
KeyedArticle = typehints.Tuple[str, typehints.Any]


class _ResolveFn(beam.DoFn):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.dups = Metrics.counter("dedup", "duplicates_" + reason)

    def process(self, element: tuple[Any, Iterable[Article]]):
        _, group = element
        survivor, duplicates = resolve_group(group, self.reason)
        yield survivor
        for dup in duplicates:
            self.dups.inc()
            yield TaggedOutput(DUPLICATES, dup)


def _key_by_fingerprint(article: Article):
    return (article["content_fingerprint"], article)


def _key_by_url(article: Article):
    # Articles without a URL keep their own id as key: they pass through alone.
    return (article.get("canonical_url") or "id:" + article["id"], article)


def _repoint(element: tuple[str, dict[str, list[Article]]]):
    """Join of content duplicates (keyed by their survivor) with URL duplicates (keyed
    by id): a content duplicate whose survivor lost on URL points at the final one."""
    _, groups = element
    final = groups["url_dups"][0]["canonical_id"] if groups["url_dups"] else None
    for dup in groups["content_dups"]:
        if final is not None:
            dup = dict(dup, canonical_id=final)
        yield dup


class DeduplicateExact(beam.PTransform):
    """Articles -> (survivors, duplicates) as a tagged tuple ``.articles``/``.duplicates``.

    Every article gets ``content_fingerprint``, ``canonical_url`` and ``canonical_id``;
    duplicates also ``duplicate_of`` and ``duplicate_reason`` (``content`` or ``url``).
    """

    def __init__(self, by_url: bool = True) -> None:
        super().__init__()
        self.by_url = by_url

    def expand(self, pcoll):
        keyed = pcoll | "Fingerprint" >> beam.Map(fingerprint_article)
        by_content = (
            keyed
            | "KeyByFingerprint" >> beam.Map(_key_by_fingerprint).with_output_types(KeyedArticle)
            | "GroupByFingerprint" >> beam.GroupByKey()
            | "ResolveContent"
            >> beam.ParDo(_ResolveFn("content")).with_outputs(DUPLICATES, main="articles")
        )
        if not self.by_url:
            return {"articles": by_content.articles, DUPLICATES: by_content[DUPLICATES]}
        by_url = (
            by_content.articles
            | "KeyByUrl" >> beam.Map(_key_by_url).with_output_types(KeyedArticle)
            | "GroupByUrl" >> beam.GroupByKey()
            | "ResolveUrl"
            >> beam.ParDo(_ResolveFn("url")).with_outputs(DUPLICATES, main="articles")
        )
        content_dups = by_content[DUPLICATES] | "KeyBySurvivor" >> beam.Map(
            lambda a: (a["duplicate_of"], a)
        )
        url_dups = by_url[DUPLICATES] | "KeyUrlDupById" >> beam.Map(lambda a: (a["id"], a))
        repointed = (
            {"content_dups": content_dups, "url_dups": url_dups}
            | "JoinChains" >> beam.CoGroupByKey()
            | "Repoint" >> beam.FlatMap(_repoint)
        )
        duplicates = (repointed, by_url[DUPLICATES]) | "AllDuplicates" >> beam.Flatten()
        return {"articles": by_url.articles, DUPLICATES: duplicates}


# --------------------------------------------------------------------------- earlier runs


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


class _KnownCopiesFn(beam.DoFn):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.dups = Metrics.counter("dedup", "duplicates_earlier_" + reason)

    def process(self, element: tuple[str, dict[str, list]]):
        _, groups = element
        known = min(groups["known"], key=lambda ref: ref["id"]) if groups["known"] else None
        for article in groups["new"]:
            if known is None:
                yield article
            else:
                self.dups.inc()
                yield TaggedOutput(DUPLICATES, link_to_known(article, known, self.reason))


class DropKnownCopies(beam.PTransform):
    """New articles -> ``{"articles", "duplicates"}``: those whose content fingerprint, then
    canonical URL, matches an article an earlier run wrote (``known``: a PCollection of
    those articles, as read back from its Avro) become its duplicates; the others pass on
    to the run's own deduplication. Used by ``khabar replay`` so that a replayed record
    that another copy of already made it into the first run is not written twice."""

    def __init__(self, known) -> None:
        super().__init__()
        self.known = known

    def expand(self, pcoll):
        refs = self.known | "KnownKeys" >> beam.FlatMap(known_keys).with_output_types(
            KeyedArticle
        )
        articles = pcoll | "Fingerprint" >> beam.Map(fingerprint_article)
        duplicates = []
        for reason, key in (("content", _key_by_fingerprint), ("url", _key_by_url)):
            tag = reason.title()
            new = articles | f"Key{tag}" >> beam.Map(
                lambda a, key=key, reason=reason: (f"{reason}:{key(a)[0]}", a)
            ).with_output_types(KeyedArticle)
            known = refs | f"Known{tag}" >> beam.Filter(
                lambda kv, reason=reason: kv[0].startswith(reason + ":")
            )
            checked = (
                {"new": new, "known": known}
                | f"Join{tag}" >> beam.CoGroupByKey()
                | f"Check{tag}"
                >> beam.ParDo(_KnownCopiesFn(reason)).with_outputs(DUPLICATES, main="articles")
            )
            articles = checked.articles
            duplicates.append(checked[DUPLICATES])
        return {
            "articles": articles,
            DUPLICATES: tuple(duplicates) | "KnownDuplicates" >> beam.Flatten(),
        }


# --------------------------------------------------------------------------- streaming

DEFAULT_TTL_SECONDS = 7 * 24 * 3600


def delivery_id(article: Article) -> str:
    """What identifies one published record across redeliveries: the poller's item key
    (message attribute ``khabar_item``; with the line number for a chunk of JSON Lines),
    else the record id (input URI + position + raw bytes: deterministic)."""
    attrs = article.get("_attributes") or {}
    item = attrs.get("khabar_item")
    if not item:
        return "id:" + article["id"]
    if attrs.get("unit") in ("file", "ref"):
        return f"{item}#{article.get('input_position')}"
    return item


class _FirstSeenFn(beam.DoFn):
    """Stateful exact dedup for streams: per key (fingerprint or canonical URL) remember
    the first article seen; later copies are linked to it. The state expires ``ttl``
    seconds (event time) after the last copy was seen, so it stays bounded.

    Runs in the global window, keyed, before event-time windowing: duplicates are found
    across windows. Element timestamps here are arrival (publish) times.

    A redelivery (Pub/Sub is at-least-once; a restarted poller may publish an item
    again) carries the same ``delivery_id`` as the first copy: it is dropped and counted
    (``dedup.redelivered_*``), not written as a duplicate of itself.
    """

    FIRST = ReadModifyWriteStateSpec("first", PickleCoder())
    EXPIRY = TimerSpec("expiry", TimeDomain.WATERMARK)

    def __init__(self, reason: str, ttl_seconds: int) -> None:
        self.reason = reason
        self.ttl = ttl_seconds
        self.dups = Metrics.counter("dedup", "duplicates_" + reason)
        self.expired = Metrics.counter("dedup", "state_expired_" + reason)
        self.redelivered = Metrics.counter("dedup", "redelivered_" + reason)

    def process(
        self,
        element: tuple[str, Article],
        timestamp=beam.DoFn.TimestampParam,
        first=beam.DoFn.StateParam(FIRST),
        expiry=beam.DoFn.TimerParam(EXPIRY),
    ):
        _, article = element
        expiry.set(timestamp + self.ttl)
        seen = first.read()
        if seen is None:
            first.write(
                {
                    "id": article["id"],
                    "canonical_id": article["canonical_id"],
                    "delivery": delivery_id(article),
                }
            )
            yield article
            return
        if seen.get("delivery") == delivery_id(article) or seen["id"] == article["id"]:
            self.redelivered.inc()
            return
        self.dups.inc()
        dup = mark_duplicate(article, seen["id"], seen["canonical_id"], self.reason)
        yield TaggedOutput(DUPLICATES, dict(dup, similarity=1.0))

    @on_timer(EXPIRY)
    def expire(self, first=beam.DoFn.StateParam(FIRST)):
        self.expired.inc()
        first.clear()


class DeduplicateStreaming(beam.PTransform):
    """Exact dedup for unbounded input, with bounded state (TTL, default 7 days).

    First seen survives; later copies (same fingerprint, then same canonical URL) are
    linked with ``duplicate_of``/``canonical_id``. Returns ``{"articles", "duplicates"}``.
    """

    def __init__(self, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> None:
        super().__init__()
        self.ttl_seconds = ttl_seconds

    def expand(self, pcoll):
        keyed = pcoll | "Fingerprint" >> beam.Map(fingerprint_article)
        by_content = (
            keyed
            | "KeyByFingerprint" >> beam.Map(_key_by_fingerprint).with_output_types(KeyedArticle)
            | "FirstByFingerprint"
            >> beam.ParDo(_FirstSeenFn("content", self.ttl_seconds)).with_outputs(
                DUPLICATES, main="articles"
            )
        )
        by_url = (
            by_content.articles
            | "KeyByUrl" >> beam.Map(_key_by_url).with_output_types(KeyedArticle)
            | "FirstByUrl"
            >> beam.ParDo(_FirstSeenFn("url", self.ttl_seconds)).with_outputs(
                DUPLICATES, main="articles"
            )
        )
        duplicates = (by_content[DUPLICATES], by_url[DUPLICATES]) | "Duplicates" >> beam.Flatten()
        return {"articles": by_url.articles, DUPLICATES: duplicates}
