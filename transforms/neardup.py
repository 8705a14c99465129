"""Near-duplicate detection: story clusters with a deterministic survivor.

Beam-free (numpy only; the Beam transforms built on it, batch and streaming, are in
``pipeline/dedup/near.py``):

* :func:`fold_tokens` - the spelling folds of :func:`khabar.transforms.dedup.fold_text` (case,
  diacritics, Arabic/Persian letter variants such as ``ي``/``ك``, Persian/Arabic/Latin
  digits, punctuation) plus ZWNJ/space/no-space variants of Persian affixes, so
  ``می‌شود``, ``می شود`` and ``میشود`` (or ``کتاب‌ها``/``کتاب ها``/``کتابها``) give one token.
* :func:`shingle_set` - the sorted, unique 32-bit hashes of word n-grams of the body. Short
  bodies (fewer than ``min_body_tokens`` tokens) use title + lead + body instead; text
  with fewer tokens than ``ngram`` has no shingles and is left to exact dedup only (it
  never joins a cluster), so empty or tiny bodies cannot collapse into one cluster.
* :class:`MinHasher` - vectorized MinHash (multiply-add-shift hashing, one numpy matrix op
  per article), :func:`lsh_params` (bands x rows for a Jaccard threshold) and
  :meth:`MinHasher.band_keys`.
* :func:`similarity` / :meth:`NearDupConfig.same_story` - exact verification of a
  candidate pair on the shingle sets: Jaccard, and containment (an outlet that cuts the
  lead or the closing paragraph publishes a copy contained in the original).
* :func:`cluster_in_memory` - the whole algorithm on a list (benchmark, tests).

The PTransform ``DeduplicateNear`` (``pipeline/dedup/near.py``; scalable, no step needs all
articles on one worker):

1. ``Sketch``: shingles, MinHash signature, band hashes per article.
2. ``GroupByBand``: one group per (band, band hash), of article *nodes* only. Every pair
   in a group is a candidate; ``DistinctPairs`` keeps each pair once however many bands
   it shares; the two articles' shingles are joined to the pair (``JoinLeftShingles``,
   ``JoinRightShingles``) and it is verified exactly (``VerifyPairs``). Shuffled per
   article: 32 small band entries and its shingles twice (1,500 news-fa articles,
   pickled: 4.5 KB an article, against 56 KB when every band entry carried the
   shingles and the band list), plus about 120 bytes per candidate pair and shared band.
3. ``Components``: connected components of the verified edges by alternating
   large-star / small-star rounds (Kiveris et al., 2014) over GroupByKey, a fixed number
   of rounds, then a check of every remaining edge; edges whose ends still disagree
   (none in practice) are resolved by a union-find over *labels* only (the residual).
   A node is ``(published_at is None, published_at in microseconds, id)``, so the
   component minimum is the survivor of :func:`khabar.transforms.dedup.survivor_key`.
4. ``GroupByCluster``: each article joins its cluster; the survivor gets
   ``cluster_id = canonical_id = id`` and ``similarity = 1.0``; the others go to
   ``duplicates`` with ``duplicate_of``/``canonical_id``/``cluster_id`` = the survivor,
   ``duplicate_reason = "near"`` and ``similarity`` = max(Jaccard, containment) of their
   shingles with the survivor's (exact).

Defaults (``ngram=3``, ``threshold=0.4``, ``containment=0.8``, ``num_perm=128`` -> 32 bands
of 4 rows) come from ``khabar bench-dedup --sweep`` (pipeline/bench/dedup.py): on the
syndication benchmark, 2- to 5-grams at 0.3-0.7, n=3 at 0.4 kept precision 1.0 on light
and medium copies with the best medium recall that did not let precision drop.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import filterfalse
from typing import Any

import numpy as np

from khabar.transforms.common import Article
from khabar.transforms.dedup import fold_text

DEFAULT_NGRAM = 3
DEFAULT_THRESHOLD = 0.4
DEFAULT_CONTAINMENT = 0.8
DEFAULT_NUM_PERM = 128
DEFAULT_MIN_BODY_TOKENS = 30
DEFAULT_MIN_CONTAINMENT_SHINGLES = 20
DEFAULT_ROUNDS = 4
DEFAULT_MAX_BUCKET = 500
DEFAULT_SEED = 20240611
NEAR = "near"

_U64 = np.uint64
_MASK32 = (1 << 32) - 1

# --------------------------------------------------------------------------- tokens

_PREFIX = re.compile(r"(?<!\S)(ن?می) (?=\S)")
_SUFFIX = re.compile(r"(?<=\S) (ها|های|هایی|ای|ی|تر|ترین|ترها)(?!\S)")


def fold_tokens(text: str | None) -> list[str]:
    """Folded word tokens (see :func:`khabar.transforms.dedup.fold_text`), with Persian verbal
    prefixes and plural/comparative suffixes glued, whatever the ZWNJ/space spelling."""
    if not text:
        return []
    folded = fold_text(text)
    folded = _SUFFIX.sub(r"\1", _PREFIX.sub(r"\1", folded))
    return folded.split()


_TOKEN_CACHE: dict[str, int] = {}
_TOKEN_CACHE_MAX = 1 << 20


def clear_token_cache() -> None:
    """Forget the token hashes memoized so far (a benchmark's cold start)."""
    _TOKEN_CACHE.clear()


def _token_hash(token: str) -> int:
    data = token.encode("utf-8")
    return zlib.crc32(data) | (zlib.crc32(data, 0x5BD1E995) << 32)


def _token_hashes(tokens: Sequence[str]) -> np.ndarray:
    """64-bit token hashes, through a per-process cache (C-level loops only)."""
    cache = _TOKEN_CACHE
    missing = set(filterfalse(cache.__contains__, tokens))
    if missing:
        if len(cache) + len(missing) > _TOKEN_CACHE_MAX:
            cache.clear()
            missing = set(tokens)
        cache.update(zip(missing, map(_token_hash, missing), strict=True))
    return np.fromiter(map(cache.__getitem__, tokens), dtype=np.uint64, count=len(tokens))


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer, elementwise on uint64 (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> _U64(30))
        x = x * _U64(0xBF58476D1CE4E5B9)
        x = x ^ (x >> _U64(27))
        x = x * _U64(0x94D049BB133111EB)
        return x ^ (x >> _U64(31))


_NGRAM_MULT = _mix64(np.arange(1, 17, dtype=np.uint64)) | _U64(1)


def shingles_from_tokens(tokens: Sequence[str], ngram: int) -> np.ndarray:
    """Sorted unique uint32 hashes of the word ``ngram``-grams of ``tokens``."""
    count = len(tokens) - ngram + 1
    if count <= 0:
        return np.empty(0, dtype=np.uint32)
    th = _mix64(_token_hashes(tokens))
    acc = np.zeros(count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(ngram):
            acc += th[k : k + count] * _NGRAM_MULT[k]
    return np.unique((_mix64(acc) >> _U64(32)).astype(np.uint32))


@dataclass(frozen=True)
class ShingleResult:
    shingles: np.ndarray
    mode: str  # "body", "title_lead" (short body) or "none" (too short: exact-only)


def shingle_set(
    article: Article,
    ngram: int = DEFAULT_NGRAM,
    min_body_tokens: int = DEFAULT_MIN_BODY_TOKENS,
) -> ShingleResult:
    """Shingles of an article: the body's, or title + lead + body's when the body has
    fewer than ``max(min_body_tokens, ngram)`` tokens; none when even that has fewer
    than ``ngram`` tokens (such an article is only ever an exact duplicate)."""
    body = fold_tokens(article.get("body"))
    if len(body) >= max(min_body_tokens, ngram):
        return ShingleResult(shingles_from_tokens(body, ngram), "body")
    tokens = fold_tokens(article.get("title")) + fold_tokens(article.get("lead")) + body
    if len(tokens) < ngram:
        return ShingleResult(np.empty(0, dtype=np.uint32), "none")
    return ShingleResult(shingles_from_tokens(tokens, ngram), "title_lead")


# --------------------------------------------------------------------------- similarity


def overlap(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(Jaccard, containment) of two sorted unique shingle arrays; containment is
    ``|a & b| / min(|a|, |b|)`` (how much of the smaller one is inside the larger)."""
    if a.size == 0 or b.size == 0:
        return 0.0, 0.0
    inter = int(np.intersect1d(a, b, assume_unique=True).size)
    return inter / (a.size + b.size - inter), inter / min(a.size, b.size)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """max(Jaccard, containment): the ``similarity`` field."""
    return max(overlap(a, b))


# --------------------------------------------------------------------------- LSH


def _integrate(f, lo: float, hi: float, steps: int = 200) -> float:
    xs = np.linspace(lo, hi, steps)
    ys = f(xs)
    return float(np.sum((ys[1:] + ys[:-1]) * np.diff(xs)) / 2.0)


def collision_probability(s: float | np.ndarray, bands: int, rows: int) -> Any:
    """Probability that two sets of Jaccard ``s`` share at least one band."""
    return 1.0 - (1.0 - np.power(s, rows)) ** bands


@functools.lru_cache(maxsize=64)
def lsh_params(
    threshold: float, num_perm: int, fp_weight: float = 0.3, fn_weight: float = 0.7
) -> tuple[int, int]:
    """(bands, rows), ``bands * rows <= num_perm``, minimizing the weighted area of false
    positives below ``threshold`` and false negatives above it. False negatives weigh
    more by default: every candidate is verified exactly, a missed pair is lost."""
    if not 0.0 < threshold < 1.0:
        raise ValueError("threshold must be in (0, 1)")
    best: tuple[float, int, int] | None = None
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            fp = _integrate(lambda s, b=bands, r=rows: collision_probability(s, b, r), 0, threshold)
            fn = _integrate(
                lambda s, b=bands, r=rows: 1 - collision_probability(s, b, r), threshold, 1
            )
            err = fp_weight * fp + fn_weight * fn
            if best is None or err < best[0] - 1e-12:
                best = (err, bands, rows)
    assert best is not None
    return best[1], best[2]


class MinHasher:
    """MinHash with ``num_perm`` multiply-add-shift hash functions on 32-bit shingles:
    ``h_i(x) = ((a_i * x + b_i) mod 2**64) >> 32`` (a_i odd), one (num_perm x n) numpy
    operation per article. Deterministic for a given ``seed``."""

    EMPTY = np.uint32(_MASK32)

    def __init__(
        self,
        num_perm: int = DEFAULT_NUM_PERM,
        seed: int = DEFAULT_SEED,
        bands: int | None = None,
        rows: int | None = None,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        rng = np.random.Generator(np.random.PCG64(seed))
        self.num_perm = num_perm
        self.a = (rng.integers(0, 2**63, num_perm, dtype=np.uint64) << _U64(1)) | _U64(1)
        self.b = rng.integers(0, 2**63, num_perm, dtype=np.uint64) << _U64(1)
        if bands is None or rows is None:
            bands, rows = lsh_params(threshold, num_perm)
        if bands * rows > num_perm:
            raise ValueError("bands * rows must not exceed num_perm")
        self.bands, self.rows = bands, rows
        self.band_mult = _mix64(np.arange(101, 101 + rows, dtype=np.uint64)) | _U64(1)

    def signature(self, shingles: np.ndarray) -> np.ndarray:
        if shingles.size == 0:
            return np.full(self.num_perm, self.EMPTY, dtype=np.uint32)
        x = shingles.astype(np.uint64)
        h = np.multiply.outer(self.a, x)
        h += self.b[:, None]
        # ">> 32" is monotone: shift the 128 minima, not the whole matrix.
        return (h.min(axis=1) >> _U64(32)).astype(np.uint32)

    def signatures(self, sets: Sequence[np.ndarray], group: int = 64) -> np.ndarray:
        """Signatures of many sets, ``group`` sets per matrix op (bounded memory)."""
        out = np.full((len(sets), self.num_perm), self.EMPTY, dtype=np.uint32)
        nonempty = [i for i, s in enumerate(sets) if s.size]
        for lo in range(0, len(nonempty), group):
            idx = nonempty[lo : lo + group]
            parts = [sets[i] for i in idx]
            sizes = np.fromiter((p.size for p in parts), dtype=np.int64, count=len(parts))
            starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
            x = np.concatenate(parts).astype(np.uint64)
            h = np.multiply.outer(self.a, x)
            h += self.b[:, None]
            out[idx] = (np.minimum.reduceat(h, starts, axis=1).T >> _U64(32)).astype(np.uint32)
        return out

    def band_hashes(self, signature: np.ndarray) -> list[int]:
        """One 64-bit hash per band; empty when the signature is empty."""
        if signature.size and signature[0] == self.EMPTY and np.all(signature == self.EMPTY):
            return []
        used = signature[: self.bands * self.rows].astype(np.uint64).reshape(self.bands, self.rows)
        with np.errstate(over="ignore"):
            h = _mix64((used * self.band_mult).sum(axis=1, dtype=np.uint64))
        return [int(v) for v in h]


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class NearDupConfig:
    threshold: float = DEFAULT_THRESHOLD
    ngram: int = DEFAULT_NGRAM
    num_perm: int = DEFAULT_NUM_PERM
    containment: float = DEFAULT_CONTAINMENT
    min_body_tokens: int = DEFAULT_MIN_BODY_TOKENS
    min_containment_shingles: int = DEFAULT_MIN_CONTAINMENT_SHINGLES
    seed: int = DEFAULT_SEED
    bands: int | None = None
    rows: int | None = None

    def minhasher(self) -> MinHasher:
        return MinHasher(self.num_perm, self.seed, self.bands, self.rows, self.threshold)

    def same_story(self, a: np.ndarray, b: np.ndarray) -> tuple[bool, float]:
        """Exact verification of a candidate pair: Jaccard >= threshold, or containment
        >= ``containment`` when the smaller set has at least ``min_containment_shingles``
        shingles (a short text is not "contained" in every article quoting it)."""
        jac, cont = overlap(a, b)
        ok = jac >= self.threshold or (
            cont >= self.containment and min(a.size, b.size) >= self.min_containment_shingles
        )
        return ok, max(jac, cont)


Node = tuple[int, int, str]
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def node_of(article: Article) -> Node:
    """Sortable node key with the order of :func:`khabar.transforms.dedup.survivor_key`."""
    published = article.get("published_at")
    if published is None:
        return (1, 0, article["id"])
    return (0, (published - _EPOCH) // dt.timedelta(microseconds=1), article["id"])


# --------------------------------------------------------------------------- in memory


class UnionFind:
    def __init__(self) -> None:
        self.parent: dict[Any, Any] = {}

    def find(self, x: Any) -> Any:
        parent = self.parent
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:
            parent[x], x = root, parent[x]
        return root

    def union(self, a: Any, b: Any) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            lo, hi = (ra, rb) if ra < rb else (rb, ra)
            self.parent[hi] = lo


def first_shared_band(bands_a: Sequence[int], bands_b: Sequence[int]) -> int:
    for j, (x, y) in enumerate(zip(bands_a, bands_b, strict=False)):
        if x == y:
            return j
    return -1


@dataclass
class ClusterResult:
    cluster_of: dict[str, str]  # article id -> survivor id
    similarity: dict[str, float]
    candidate_pairs: int
    verified_pairs: int


def cluster_in_memory(articles: Sequence[Article], config: NearDupConfig) -> ClusterResult:
    """The algorithm of :class:`DeduplicateNear` on one machine (same decisions)."""
    hasher = config.minhasher()
    nodes = [node_of(a) for a in articles]
    sets = [shingle_set(a, config.ngram, config.min_body_tokens).shingles for a in articles]
    sigs = hasher.signatures(sets)
    buckets: dict[tuple[int, int], list[int]] = {}
    band_lists: list[list[int]] = []
    for i, sig in enumerate(sigs):
        bh = hasher.band_hashes(sig) if sets[i].size else []
        band_lists.append(bh)
        for j, h in enumerate(bh):
            buckets.setdefault((j, h), []).append(i)
    uf = UnionFind()
    candidates = verified = 0
    for (j, _), members in buckets.items():
        if len(members) < 2:
            continue
        for x in range(len(members)):
            for y in range(x + 1, len(members)):
                p, q = members[x], members[y]
                if first_shared_band(band_lists[p], band_lists[q]) != j:
                    continue
                candidates += 1
                ok, _ = config.same_story(sets[p], sets[q])
                if ok:
                    verified += 1
                    uf.union(nodes[p], nodes[q])
    index = {n: i for i, n in enumerate(nodes)}
    cluster_of: dict[str, str] = {}
    sim: dict[str, float] = {}
    for i, a in enumerate(articles):
        root = uf.find(nodes[i])
        cluster_of[a["id"]] = root[2]
        sim[a["id"]] = 1.0 if root == nodes[i] else similarity(sets[i], sets[index[root]])
    return ClusterResult(cluster_of, sim, candidates, verified)


