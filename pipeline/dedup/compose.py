"""Deduplication as the graphs use it, batch and streaming, and its settings: one place
for the order of the steps (exact copies first, then near-duplicate story clusters among
the exact survivors). The steps are applied in the caller's scope (these are functions,
not composites), so the step names of the graph stay ``Process/Dedup``,
``Process/NearDedup``, ... ."""

from __future__ import annotations

from dataclasses import dataclass

import apache_beam as beam

from khabar.pipeline.dedup.exact import DeduplicateExact, DeduplicateStreaming, DropKnownCopies
from khabar.pipeline.dedup.near import (
    DeduplicateNear,
    DeduplicateNearStreaming,
    LinkExactDuplicates,
)
from khabar.transforms.common import ARTICLES, DUPLICATES


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


def deduplicate_batch(
    articles: beam.PCollection, near: NearDupSettings, known: beam.PCollection | None = None
) -> tuple[beam.PCollection, beam.PCollection]:
    """Articles -> (survivors, duplicates) over the whole input. With ``known`` (the
    articles an earlier run wrote), copies of those are linked to them first."""
    earlier = []
    if known is not None:
        checked = articles | "DropKnown" >> DropKnownCopies(known)
        articles, earlier = checked[ARTICLES], [checked[DUPLICATES]]
    deduped = articles | "Dedup" >> DeduplicateExact()
    if not near.enabled:
        duplicates = (deduped[DUPLICATES], *earlier) | "AllDuplicates" >> beam.Flatten()
        return deduped[ARTICLES], duplicates
    clustered = deduped[ARTICLES] | "NearDedup" >> DeduplicateNear(**near.params())
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
