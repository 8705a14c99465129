"""Exact deduplication in Beam, batch and streaming (the keys and the survivor rule are
Beam-free, in ``transforms/dedup.py``).

:class:`DeduplicateExact` (batch): articles are grouped by fingerprint, the survivors of
that step by canonical URL, and a final join points every duplicate's ``canonical_id`` at
the final survivor. No step needs all articles on one worker. :class:`DropKnownCopies`
links copies of an earlier run's articles to them (``khabar replay``).
:class:`DeduplicateStreaming`: first seen survives, in state keyed by fingerprint and
canonical URL with a TTL.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.metrics import Metrics
from apache_beam.pvalue import TaggedOutput
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import (
    ReadModifyWriteStateSpec,
    TimerSpec,
    on_timer,
)
from apache_beam.typehints import typehints

from khabar.transforms import metrics as M
from khabar.transforms.common import DUPLICATES, Article
from khabar.transforms.dedup import (
    fingerprint_article,
    known_keys,
    link_to_known,
    mark_duplicate,
    resolve_group,
)

#: Keys are strings: a deterministic coder for GroupByKey and for state keys.
KeyedArticle = typehints.Tuple[str, typehints.Any]


class _ResolveFn(beam.DoFn):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.dups = Metrics.counter(M.DEDUP, M.duplicates(reason))

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

    def __init__(self, by_url: bool = True, fingerprinted: bool = False) -> None:
        super().__init__()
        self.by_url = by_url
        #: the input is already fingerprinted (batch dedup keys, ``DedupKey``)
        self.fingerprinted = fingerprinted

    def expand(self, pcoll):
        keyed = pcoll if self.fingerprinted else pcoll | "Fingerprint" >> beam.Map(
            fingerprint_article
        )
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


class _KnownCopiesFn(beam.DoFn):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.dups = Metrics.counter(M.DEDUP, M.duplicates_earlier(reason))

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

    def __init__(self, known, fingerprinted: bool = False) -> None:
        super().__init__()
        self.known = known
        self.fingerprinted = fingerprinted

    def expand(self, pcoll):
        refs = self.known | "KnownKeys" >> beam.FlatMap(known_keys).with_output_types(
            KeyedArticle
        )
        articles = pcoll if self.fingerprinted else pcoll | "Fingerprint" >> beam.Map(
            fingerprint_article
        )
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
        self.dups = Metrics.counter(M.DEDUP, M.duplicates(reason))
        self.expired = Metrics.counter(M.DEDUP, M.state_expired(reason))
        self.redelivered = Metrics.counter(M.DEDUP, M.redelivered(reason))

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
