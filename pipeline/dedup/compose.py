"""Deduplication as the graphs use it, batch and streaming, and its settings: one place
for the order of the steps (exact copies first, then near-duplicate story clusters among
the exact survivors). The steps are applied in the caller's scope (these are functions,
not composites), so the step names of the graph stay ``Process/Dedup``,
``Process/NearDedup``, ... ."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from khabar.pipeline.dedup.exact import DeduplicateExact, DeduplicateStreaming, DropKnownCopies
from khabar.pipeline.dedup.near import (
    SHINGLES,
    DeduplicateNear,
    DeduplicateNearStreaming,
    LinkExactDuplicates,
    packed_shingles,
)
from khabar.transforms import metrics as M
from khabar.transforms.common import ARTICLES, DUPLICATES, Article
from khabar.transforms.dedup import fingerprint_article
from khabar.transforms.neardup import NearDupConfig


@dataclass(frozen=True)
class NearDupSettings:
    enabled: bool = True
    threshold: float = 0.4
    containment: float = 0.8
    ngram: int = 3
    num_perm: int = 128

    def params(self) -> dict[str, float | int]:
        """The keyword arguments of ``DeduplicateNear`` / ``DeduplicateNearStreaming``."""
        return {
            "threshold": self.threshold,
            "ngram": self.ngram,
            "num_perm": self.num_perm,
            "containment": self.containment,
        }


#: What batch dedup needs of an article (besides its shingles): its id and date (the
#: survivor rule), its keys, and the fields that dedup sets.
KEY_FIELDS = (
    "id",
    "published_at",
    "canonical_url",
    "content_fingerprint",
    "canonical_id",
    "duplicate_of",
    "duplicate_reason",
)
#: The fields dedup decides, carried back from the keys to the articles.
DECIDED_FIELDS = ("canonical_id", "duplicate_of", "duplicate_reason", "cluster_id", "similarity")


class DedupKey:
    """Article -> (the article fingerprinted, its dedup key): :data:`KEY_FIELDS` and,
    with near-duplicates on, the packed shingles (so that batch dedup shuffles a few
    hundred bytes per article, not the article)."""

    def __init__(self, near: NearDupSettings) -> None:
        self.near = near
        self.config = NearDupConfig(ngram=near.ngram)
        self._counters: tuple[Any, Any] | None = None

    def __call__(self, article: Article) -> tuple[Article, dict[str, Any]]:
        stored = fingerprint_article(article)
        key = {name: stored.get(name) for name in KEY_FIELDS}
        if self.near.enabled:
            if self._counters is None:
                self._counters = (
                    Metrics.counter(M.NEARDUP, M.SHORT_BODY),
                    Metrics.counter(M.NEARDUP, M.TOO_SHORT),
                )
            key[SHINGLES] = packed_shingles(stored, self.config, *self._counters)
        return stored, key

    def __getstate__(self) -> dict[str, Any]:
        return {"near": self.near, "config": self.config, "_counters": None}


class SurvivorFields:
    """The decided fields of a survivor that is alone in its story (most of them): only
    the others' decisions travel to the articles (``decision``)."""

    def __init__(self, near: bool) -> None:
        self.near = near

    def __call__(self, article: Article) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "canonical_id": article["id"],
            "duplicate_of": None,
            "duplicate_reason": None,
        }
        if self.near:
            fields.update(cluster_id=article["id"], similarity=1.0)
        return fields


def decision(key: dict[str, Any], is_duplicate: bool, defaults: SurvivorFields):
    """A decided key -> ``(id, (is_duplicate, fields))``, or nothing for a survivor whose
    fields are ``defaults``."""
    fields = {name: key[name] for name in DECIDED_FIELDS if name in key}
    if not is_duplicate and fields == defaults(key):
        return
    yield key["id"], (is_duplicate, fields)


_SHINGLES_TAG = "shingles"


def _shingles_aside(key: dict[str, Any]):
    """A key -> the key without its shingles, and ``(id, shingles)`` tagged."""
    rest = {name: value for name, value in key.items() if name != SHINGLES}
    yield rest
    yield beam.pvalue.TaggedOutput(_SHINGLES_TAG, (key["id"], key[SHINGLES]))


def _with_shingles(element: tuple[str, dict[str, list[Any]]]):
    """(id, {key: [survivor key], shingles: [packed]}) -> the key with its shingles back;
    nothing for an exact duplicate (no key)."""
    _, groups = element
    for key in groups["key"]:
        yield dict(key, **{SHINGLES: groups["shingles"][0]})


def deduplicate_batch(
    articles: beam.PCollection,
    near: NearDupSettings,
    known: beam.PCollection | None = None,
    keys: bool = False,
) -> tuple[beam.PCollection, beam.PCollection]:
    """Articles -> (survivors, duplicates) over the whole input. With ``known`` (the
    articles an earlier run wrote), copies of those are linked to them first. ``keys``:
    the input is already fingerprinted (``DedupKey``'s keys)."""
    earlier = []
    shingles = None
    if keys and near.enabled:
        # The shingles wait aside while exact dedup shuffles the keys, and join the exact
        # survivors only: one shuffle holds them, not the two of exact dedup.
        split = articles | "ShinglesAside" >> beam.ParDo(_shingles_aside).with_outputs(
            _SHINGLES_TAG, main=ARTICLES
        )
        articles, shingles = split[ARTICLES], split[_SHINGLES_TAG]
    if known is not None:
        checked = articles | "DropKnown" >> DropKnownCopies(known, fingerprinted=keys)
        articles, earlier = checked[ARTICLES], [checked[DUPLICATES]]
    deduped = articles | "Dedup" >> DeduplicateExact(fingerprinted=keys)
    if not near.enabled:
        duplicates = (deduped[DUPLICATES], *earlier) | "AllDuplicates" >> beam.Flatten()
        return deduped[ARTICLES], duplicates
    survivors = deduped[ARTICLES]
    if shingles is not None:
        survivors = (
            {
                "key": survivors | "KeyById" >> beam.Map(lambda key: (key["id"], key)),
                "shingles": shingles,
            }
            | "JoinShingles" >> beam.CoGroupByKey()
            | "WithShingles" >> beam.FlatMap(_with_shingles)
        )
    clustered = survivors | "NearDedup" >> DeduplicateNear(**near.params())
    near_all = (clustered[ARTICLES], clustered[DUPLICATES]) | "NearOutputs" >> beam.Flatten()
    # exact copies of an article that lost to a near-duplicate follow it to its cluster
    exact = (deduped[DUPLICATES], near_all) | "LinkExact" >> LinkExactDuplicates()
    duplicates = (exact, clustered[DUPLICATES], *earlier) | "AllDuplicates" >> beam.Flatten()
    return clustered[ARTICLES], duplicates


def deduplicate_stream(
    articles: beam.PCollection, ttl_seconds: int, near: NearDupSettings
) -> dict[str, beam.PCollection]:
    """Articles -> {articles: first seen, duplicates: later copies}, in state with a TTL."""
    exact = articles | "Dedup" >> DeduplicateStreaming(ttl_seconds)
    if not near.enabled:
        return {ARTICLES: exact[ARTICLES], DUPLICATES: exact[DUPLICATES]}
    clustered = exact[ARTICLES] | "NearDedup" >> DeduplicateNearStreaming(
        ttl_seconds, **near.params()
    )
    return {
        ARTICLES: clustered[ARTICLES],
        DUPLICATES: (exact[DUPLICATES], clustered[DUPLICATES]) | "Duplicates" >> beam.Flatten(),
    }
