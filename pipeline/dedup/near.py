"""Near-duplicate story clusters in Beam, batch and streaming (shingles, MinHash, LSH and
the in-memory clustering are Beam-free, in ``transforms/neardup.py``).

:class:`DeduplicateNear` (batch): sketch, LSH band buckets, candidate pairs verified
exactly, distributed connected components, one survivor per cluster.
:class:`LinkExactDuplicates` moves exact copies of an article that lost to a near
duplicate into its cluster. :class:`DeduplicateNearStreaming`: the same core in
TTL-bounded state keyed by LSH band.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.coders import PickleCoder
from apache_beam.metrics import Metrics
from apache_beam.pvalue import TaggedOutput
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import (
    BagStateSpec,
    TimerSpec,
    on_timer,
)
from apache_beam.typehints import typehints

from khabar.transforms import metrics as M
from khabar.transforms.common import DUPLICATES, Article
from khabar.transforms.dedup import survivor_key
from khabar.transforms.neardup import (
    DEFAULT_CONTAINMENT,
    DEFAULT_MAX_BUCKET,
    DEFAULT_MIN_BODY_TOKENS,
    DEFAULT_NGRAM,
    DEFAULT_NUM_PERM,
    DEFAULT_ROUNDS,
    DEFAULT_SEED,
    DEFAULT_THRESHOLD,
    NEAR,
    MinHasher,
    NearDupConfig,
    Node,
    UnionFind,
    node_of,
    shingle_set,
    similarity,
)

#: The field that carries an article's packed shingles (uint32 bytes) through the batch
#: steps; set by :func:`packed_shingles` ahead of dedup (batch keys) or by ``Sketch``.
SHINGLES = "_nd_shingles"
#: (string key, anything): keyed PCollections whose key coder is deterministic.
KeyedValue = typehints.Tuple[str, typehints.Any]


class _SketchFn(beam.DoFn):
    """Article -> (id, article without shingles) main output; its sketch (packed node, band
    hashes, packed shingles) tagged ``sketches``. The shingles go on with the sketch only:
    the few articles that end up clustered get theirs back from the candidates."""

    SKETCHES = "sketches"

    def __init__(self, config: NearDupConfig) -> None:
        self.config = config
        self.hasher: MinHasher | None = None
        self.short = Metrics.counter(M.NEARDUP, M.SHORT_BODY)
        self.none = Metrics.counter(M.NEARDUP, M.TOO_SHORT)

    def setup(self) -> None:
        self.hasher = self.config.minhasher()

    def process(self, article: Article) -> Iterator[Any]:
        assert self.hasher is not None
        out = {name: value for name, value in article.items() if name != SHINGLES}
        if SHINGLES in article:  # computed ahead (batch dedup keys: packed_shingles)
            packed = article[SHINGLES]
        else:
            packed = packed_shingles(article, self.config, self.short, self.none)
        yield (article["id"], out)
        shingles = _unpack(packed)
        if shingles.size == 0:
            return
        bands = self.hasher.band_hashes(self.hasher.signature(shingles))
        if bands:
            yield TaggedOutput(
                self.SKETCHES, (pack_node(node_of(article)), tuple(bands), packed)
            )


# Band buckets: most hold one article and give no pair, yet grouping them all means
# holding 32 entries per article (the local runner keeps a shuffle in memory: at 16,000
# articles that was most of the dedup's memory). So the (band, hash) keys that occur
# more than once are found first, as compact sorted uint64 arrays combined in shards,
# and only those entries are grouped: the same buckets with two or more members, so the
# same candidate pairs.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
#: shards of the repeated-key sets (by the top 8 bits): no one accumulator holds them all
BAND_SHARDS = 256


def band_keys(bands: tuple[int, ...]) -> np.ndarray:
    """One uint64 per (band, hash): the hash mixed with its band number. Two different
    (band, hash) may share one (an entry is then grouped needlessly, never lost)."""
    h = np.asarray(bands, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return h ^ (np.arange(1, len(bands) + 1, dtype=np.uint64) * _GOLDEN)


def _shard(key: int) -> int:
    return key >> 56


#: A sketch: (packed node, band hashes, packed shingles).
Sketch = tuple[bytes, tuple[int, ...], bytes]


def _keys_by_shard(sketch: Sketch) -> Iterator[tuple[int, int]]:
    for key in band_keys(sketch[1]).tolist():
        yield (_shard(key), key)


class RepeatedKeys(beam.CombineFn):
    """uint64 keys -> the sorted array of those seen at least twice. The accumulator is
    (seen once, seen twice or more, pending): sorted numpy arrays, folded every
    ``FOLD`` pending keys, so it costs 8 bytes a key."""

    FOLD = 4096

    def create_accumulator(self):
        empty = np.empty(0, np.uint64)
        return (empty, empty, [])

    def add_input(self, acc, key):
        once, twice, pending = acc
        pending.append(key)
        if len(pending) >= self.FOLD:
            return self._fold(acc)
        return acc

    def _fold(self, acc):
        once, twice, pending = acc
        if not pending:
            return acc
        values, counts = np.unique(np.asarray(pending, dtype=np.uint64), return_counts=True)
        return self._union(once, twice, values[counts == 1], values[counts > 1])

    @staticmethod
    def _union(once1, twice1, once2, twice2):
        twice = np.union1d(np.union1d(twice1, twice2), np.intersect1d(once1, once2))
        once = np.setdiff1d(np.union1d(once1, once2), twice, assume_unique=True)
        return (once, twice, [])

    def merge_accumulators(self, accumulators):
        merged = None
        for acc in accumulators:
            once, twice, _ = self._fold(acc)
            merged = (
                (once, twice, [])
                if merged is None
                else self._union(merged[0], merged[1], once, twice)
            )
        return merged if merged is not None else self.create_accumulator()

    def extract_output(self, acc):
        return self._fold(acc)[1]


#: ``BandEntries``' second output: (node, packed shingles) of the articles with an entry.
_CANDIDATES = "candidates"


def _band_entries(sketch: Sketch, repeated: dict[int, np.ndarray]) -> Iterator[Any]:
    """A sketch -> its ((band, hash), packed node) entries whose key is repeated, and,
    when it has one, (node, shingles) tagged ``candidates``: only an article in a bucket
    of two or more can be in a candidate pair, so only its shingles are joined to the
    pairs (the local runner held every article's shingles in both joins)."""
    node, bands, shingles = sketch
    found_any = False
    for j, (h, key) in enumerate(zip(bands, band_keys(bands).tolist(), strict=True)):
        found = repeated.get(_shard(key))
        if found is not None and found.size:
            at = int(np.searchsorted(found, np.uint64(key)))
            if at < found.size and int(found[at]) == key:
                found_any = True
                yield ((j, h), node)
    if found_any:
        yield TaggedOutput(_CANDIDATES, (unpack_node(node), shingles))


def packed_shingles(article: Article, config: NearDupConfig, short=None, none=None) -> bytes:
    """An article's shingles, packed for shuffles (empty when it has too few tokens);
    ``short`` / ``none``: counters of articles shingled on title + lead / not at all."""
    result = shingle_set(article, config.ngram, config.min_body_tokens)
    if result.mode == "title_lead" and short is not None:
        short.inc()
    elif result.mode == "none" and none is not None:
        none.inc()
    return result.shingles.tobytes()


def _unpack(packed: bytes) -> np.ndarray:
    return np.frombuffer(packed, dtype=np.uint32)


_NODE_HEAD = struct.Struct(">BQ")
_NODE_OFFSET = 1 << 63


def pack_node(node: Node) -> bytes:
    """A node as one bytes object that sorts exactly as the node tuple does (flag,
    microseconds, id: UTF-8 keeps code point order). A band entry is shuffled 32 times
    per article: one small object instead of a tuple of three is most of the memory the
    local runner holds for the band buckets."""
    flag, micros, ident = node
    return _NODE_HEAD.pack(flag, micros + _NODE_OFFSET) + ident.encode("utf-8")


def unpack_node(packed: bytes) -> Node:
    flag, shifted = _NODE_HEAD.unpack_from(packed)
    return (flag, shifted - _NODE_OFFSET, packed[_NODE_HEAD.size :].decode("utf-8"))


class _BucketPairsFn(beam.DoFn):
    """One band bucket -> its candidate pairs ``(x, y)``, ``x < y``. A huge bucket
    is boilerplate, not a story: each member is paired with its ``max_bucket``
    predecessors only (bounded work, deterministic order)."""

    def __init__(self, max_bucket: int) -> None:
        self.max_bucket = max_bucket
        self.oversized = Metrics.counter(M.NEARDUP, M.OVERSIZED_BUCKETS)

    def process(self, element: tuple[tuple[int, int], Iterable[bytes]]) -> Iterator[tuple]:
        _, packed = element
        members = sorted(packed)  # packed nodes sort as the nodes do
        if len(members) < 2:
            return
        if len(members) > self.max_bucket:
            self.oversized.inc()
        nodes = [unpack_node(m) for m in members]
        for y in range(1, len(nodes)):
            for x in range(max(0, y - self.max_bucket), y):
                yield (nodes[x], nodes[y])


def _left_shingles(element: tuple[Node, dict[str, list[Any]]]) -> Iterator[tuple]:
    """(x, {pairs: [y, ...], shingles: [packed]}) -> (y, (x, x's shingles)) per pair."""
    x, groups = element
    if groups["shingles"]:
        packed = groups["shingles"][0]
        for y in groups["pair"]:
            yield (y, (x, packed))


class _VerifyPairsFn(beam.DoFn):
    """(y, {pairs: [(x, x's shingles), ...], shingles: [y's]}) -> verified edges (x, y)."""

    def __init__(self, config: NearDupConfig) -> None:
        self.config = config
        self.candidates = Metrics.counter(M.NEARDUP, M.CANDIDATE_PAIRS)
        self.verified = Metrics.counter(M.NEARDUP, M.VERIFIED_PAIRS)

    def process(self, element: tuple[Node, dict[str, list[Any]]]) -> Iterator[tuple]:
        y, groups = element
        if not groups["shingles"]:
            return
        mine = _unpack(groups["shingles"][0])
        for x, packed in groups["pair"]:
            self.candidates.inc()
            ok, _ = self.config.same_story(_unpack(packed), mine)
            if ok:
                self.verified.inc()
                yield (x, y)


def _both_ways(edge: tuple[Node, Node]) -> Iterator[tuple[Node, Node]]:
    u, v = edge
    yield (u, v)
    yield (v, u)


def _large_star(element: tuple[Node, Iterable[Node]]) -> Iterator[tuple[Node, Node]]:
    u, nbrs = element
    seen = set(nbrs)
    m = min(seen | {u})
    for v in seen:
        if v > u:
            yield (m, v)


def _small_star(element: tuple[Node, Iterable[Node]]) -> Iterator[tuple[Node, Node]]:
    u, nbrs = element
    smaller = {v for v in nbrs if v < u}
    if not smaller:
        return
    smaller.add(u)
    m = min(smaller)
    for v in smaller:
        if v != m:
            yield (m, v)


def _labels(element: tuple[Node, Iterable[Node]]) -> Iterator[tuple[str, tuple]]:
    """Label = smallest of the node and its neighbours; tell the neighbours."""
    u, nbrs = element
    seen = set(nbrs)
    label = min(seen | {u})
    yield (u[2], ("self", label))
    for v in seen:
        yield (v[2], ("nbr", label))


def _check_labels(element: tuple[str, Iterable[tuple]]) -> Iterator[Any]:
    node_id, items = element
    own = None
    others = set()
    for kind, label in items:
        if kind == "self":
            own = label
        else:
            others.add(label)
    assert own is not None
    yield (node_id, own)
    for other in others:
        if other != own:
            yield TaggedOutput("residual", (min(own, other), max(own, other)))


def _resolve_residual(pairs: list[tuple[Node, Node]]) -> dict[Node, Node]:
    uf = UnionFind()
    for a, b in sorted(pairs):
        uf.union(a, b)
    return {x: uf.find(x) for x in uf.parent}


class ConnectedComponents(beam.PTransform):
    """Undirected edges ``(Node, Node)`` -> ``(id, label Node)`` for every node on an
    edge; the label is the component's smallest node. ``rounds`` large-star/small-star
    rounds, then a check of every edge; disagreeing labels (residual) are merged by a
    union-find over labels only, counted in ``neardup/cc_residual_edges``."""

    def __init__(self, rounds: int = DEFAULT_ROUNDS) -> None:
        super().__init__()
        self.rounds = rounds

    def expand(self, edges):
        for r in range(1, self.rounds + 1):
            edges = (
                edges
                | f"LargeStarBoth{r}" >> beam.FlatMap(_both_ways)
                | f"LargeStarGroup{r}" >> beam.GroupByKey()
                | f"LargeStar{r}" >> beam.FlatMap(_large_star)
                | f"SmallStarBoth{r}" >> beam.FlatMap(_both_ways)
                | f"SmallStarGroup{r}" >> beam.GroupByKey()
                | f"SmallStar{r}" >> beam.FlatMap(_small_star)
            )
        checked = (
            edges
            | "LabelBoth" >> beam.FlatMap(_both_ways)
            | "LabelGroup" >> beam.GroupByKey()
            | "Label" >> beam.FlatMap(_labels)
            | "CheckGroup" >> beam.GroupByKey()
            | "Check" >> beam.FlatMap(_check_labels).with_outputs("residual", main="labels")
        )
        residual_count = Metrics.counter(M.NEARDUP, M.CC_RESIDUAL_EDGES)

        def count(pair):
            residual_count.inc()
            return pair

        fixes = (
            checked.residual
            | "CountResidual" >> beam.Map(count)
            | "CollectResidual" >> beam.combiners.ToList()
            | "ResolveResidual" >> beam.Map(_resolve_residual)
        )
        return checked.labels | "FixUp" >> beam.Map(
            lambda kv, fix: (kv[0], fix.get(kv[1], kv[1])), fix=beam.pvalue.AsSingleton(fixes)
        )


_CLUSTERED = "clustered"


class _ResolveClusterFn(beam.DoFn):
    """(id, article) -> the article resolved in its story cluster. An article that is on
    no verified edge (most of them) has no label and is its own cluster: resolved here,
    without a shuffle; the others go out keyed by their cluster (tagged ``clustered``) and
    come back grouped, to ``process_group``."""

    def __init__(self) -> None:
        self.clusters = Metrics.counter(M.NEARDUP, M.CLUSTERS)
        self.multi = Metrics.counter(M.NEARDUP, M.CLUSTERS_MULTI)
        self.dups = Metrics.counter(M.NEARDUP, M.NEAR_DUPLICATES)

    def process(self, element: tuple[str, Article], labels: Mapping[str, Node]) -> Iterator[Any]:
        ident, article = element
        label = labels.get(ident)
        if label is None:
            yield from self.process_group((ident, [article]))
        else:  # to its shingles (keyed by its node, as the candidates are), then its cluster
            yield TaggedOutput(_CLUSTERED, (node_of(article), (label[2], article)))

    def process_group(self, element: tuple[str, Iterable[Article]]) -> Iterator[Any]:
        _, group = element
        ordered = sorted(group, key=survivor_key)
        survivor = dict(ordered[0])
        packed = survivor.pop(SHINGLES, b"")  # only a clustered article has them
        sid = survivor["id"]
        survivor.update(cluster_id=sid, canonical_id=sid, similarity=1.0)
        self.clusters.inc()
        if len(ordered) > 1:
            self.multi.inc()
            base = _unpack(packed)
        yield survivor
        for article in ordered[1:]:
            dup = dict(article)
            shingles = _unpack(dup.pop(SHINGLES))
            dup.update(
                cluster_id=sid,
                canonical_id=sid,
                duplicate_of=sid,
                duplicate_reason=NEAR,
                similarity=round(similarity(shingles, base), 6),
            )
            self.dups.inc()
            yield TaggedOutput(DUPLICATES, dup)


class DeduplicateNear(beam.PTransform):
    """Survivor articles -> ``{"articles": cluster survivors, "duplicates": near copies}``.

    Every output article carries ``cluster_id``, ``canonical_id`` and ``similarity``;
    near copies also ``duplicate_of`` and ``duplicate_reason="near"``. Deterministic:
    the same input gives the same clusters, survivors and fields on every run.
    """

    def __init__(
        self,
        threshold: float = DEFAULT_THRESHOLD,
        ngram: int = DEFAULT_NGRAM,
        num_perm: int = DEFAULT_NUM_PERM,
        containment: float = DEFAULT_CONTAINMENT,
        *,
        min_body_tokens: int = DEFAULT_MIN_BODY_TOKENS,
        rounds: int = DEFAULT_ROUNDS,
        max_bucket: int = DEFAULT_MAX_BUCKET,
        seed: int = DEFAULT_SEED,
    ) -> None:
        super().__init__()
        self.config = NearDupConfig(
            threshold=threshold,
            ngram=ngram,
            num_perm=num_perm,
            containment=containment,
            min_body_tokens=min_body_tokens,
            seed=seed,
        )
        # Fix bands/rows now (not on every worker).
        hasher = self.config.minhasher()
        self.config = replace(self.config, bands=hasher.bands, rows=hasher.rows)
        self.rounds = rounds
        self.max_bucket = max_bucket

    def expand(self, pcoll):
        sketched = pcoll | "Sketch" >> beam.ParDo(_SketchFn(self.config)).with_outputs(
            _SketchFn.SKETCHES, main="articles"
        )
        sketches = sketched[_SketchFn.SKETCHES]
        repeated = (
            sketches
            | "BandKeys" >> beam.FlatMap(_keys_by_shard)
            | "RepeatedBandKeys" >> beam.CombinePerKey(RepeatedKeys())
        )
        entries = sketches | "BandEntries" >> beam.FlatMap(
            _band_entries, beam.pvalue.AsDict(repeated)
        ).with_outputs(_CANDIDATES, main="entries")
        pairs = (
            entries.entries
            | "GroupByBand" >> beam.GroupByKey()
            | "BucketPairs" >> beam.ParDo(_BucketPairsFn(self.max_bucket))
            | "DistinctPairs" >> beam.Distinct()  # a pair shares several bands
        )
        # Each candidate pair is verified once, on its two articles' exact shingles, which
        # are joined to it (shuffled twice per candidate article, not once per band; an
        # article in no shared bucket is in no pair, and its shingles are not joined).
        shingles = entries[_CANDIDATES]
        edges = (
            {"pair": pairs, "shingles": shingles}
            | "JoinLeftShingles" >> beam.CoGroupByKey()
            | "LeftShingles" >> beam.FlatMap(_left_shingles)
        )
        edges = (
            {"pair": edges, "shingles": shingles}
            | "JoinRightShingles" >> beam.CoGroupByKey()
            | "VerifyPairs" >> beam.ParDo(_VerifyPairsFn(self.config))
        )
        labels = edges | "Components" >> ConnectedComponents(self.rounds)
        # Labels (only the articles on a verified edge have one) travel as a side input:
        # an article alone in its story is resolved where it is, and only the clustered
        # ones are grouped, with their shingles joined back from the candidates (the
        # articles themselves no longer carry shingles past the sketch).
        resolve = _ResolveClusterFn()
        alone = sketched.articles | "ResolveAlone" >> beam.ParDo(
            resolve, beam.pvalue.AsDict(labels)
        ).with_outputs(_CLUSTERED, DUPLICATES, main="articles")
        grouped = (
            {"clustered": alone[_CLUSTERED], "shingles": shingles}
            | "JoinClusterShingles" >> beam.CoGroupByKey()
            | "WithClusterShingles" >> beam.FlatMap(_with_cluster_shingles)
            | "GroupByCluster" >> beam.GroupByKey()
            | "ResolveClusters"
            >> beam.ParDo(_GroupFn(resolve)).with_outputs(DUPLICATES, main="articles")
        )
        return {
            "articles": (alone.articles, grouped.articles) | "Survivors" >> beam.Flatten(),
            DUPLICATES: (alone[DUPLICATES], grouped[DUPLICATES]) | "NearCopies" >> beam.Flatten(),
        }


def _with_cluster_shingles(element: tuple[Node, dict[str, list[Any]]]) -> Iterator[tuple]:
    """(node, {clustered: [(cluster, article)], shingles: [packed]}) -> (cluster, the
    article with its shingles). A clustered article is on a verified edge, so it was a
    candidate and its shingles are there; a candidate that is not clustered gives
    nothing."""
    _, groups = element
    for cluster, article in groups["clustered"]:
        yield (cluster, dict(article, **{SHINGLES: groups["shingles"][0]}))


class _GroupFn(beam.DoFn):
    """A grouped cluster -> ``_ResolveClusterFn.process_group``."""

    def __init__(self, resolve: _ResolveClusterFn) -> None:
        self.resolve = resolve

    def process(self, element: tuple[str, Iterable[Article]]) -> Iterator[Any]:
        yield from self.resolve.process_group(element)


def _link_exact(element: tuple[str, dict[str, list[Article]]]) -> Iterator[Article]:
    _, groups = element
    target = groups["near"][0] if groups["near"] else None
    for dup in groups["exact"]:
        if target is not None:
            dup = dict(
                dup,
                canonical_id=target["canonical_id"],
                cluster_id=target["cluster_id"],
                similarity=target.get("similarity"),
            )
        yield dup


class LinkExactDuplicates(beam.PTransform):
    """Exact duplicates (from ``DeduplicateExact``) -> the same, pointing at their story
    cluster: ``canonical_id``/``cluster_id`` of the article they duplicate, as decided by
    ``DeduplicateNear``, and its ``similarity`` (their text is that article's).

    Apply to ``(exact_duplicates, near_outputs)`` where ``near_outputs`` is every article
    out of ``DeduplicateNear`` (survivors and near duplicates, flattened).
    """

    def expand(self, pcolls):
        exact, near = pcolls
        return (
            {
                "exact": exact | "KeyByTarget" >> beam.Map(lambda a: (a["canonical_id"], a)),
                "near": near | "KeyById" >> beam.Map(lambda a: (a["id"], a)),
            }
            | "JoinExactToNear" >> beam.CoGroupByKey()
            | "Link" >> beam.FlatMap(_link_exact)
        )


# --------------------------------------------------------------------------- streaming

_ARTICLE = "article"
_VOTE = "vote"
#: Members kept per LSH band bucket in streaming (oldest dropped first).
STREAM_MAX_BUCKET = 200


class _StreamSketchFn(beam.DoFn):
    """Article -> (id, ("article", article, n_bands)) and (band, (order, id, packed))."""

    BANDS = "bands"

    def __init__(self, config: NearDupConfig) -> None:
        self.config = config
        self.hasher: MinHasher | None = None

    def setup(self) -> None:
        self.hasher = self.config.minhasher()

    def process(self, article: Article, timestamp=beam.DoFn.TimestampParam) -> Iterator[Any]:
        assert self.hasher is not None
        result = shingle_set(article, self.config.ngram, self.config.min_body_tokens)
        bands = (
            self.hasher.band_hashes(self.hasher.signature(result.shingles))
            if result.shingles.size
            else []
        )
        yield (article["id"], (_ARTICLE, article, len(bands)))
        # arrival order: only an earlier article can be the survivor of a later one
        order = (int(timestamp.micros), article["id"])
        packed = result.shingles.tobytes()
        for j, h in enumerate(bands):
            yield TaggedOutput(self.BANDS, (f"{j}:{h}", (order, article["id"], packed)))


class _BandMembersFn(beam.DoFn):
    """Per LSH band bucket: compare a new article with the earlier members, vote for the
    most similar verified one, then remember the article. State expires ``ttl`` seconds
    after the last insertion and holds at most ``STREAM_MAX_BUCKET`` members."""

    MEMBERS = BagStateSpec("members", PickleCoder())
    EXPIRY = TimerSpec("expiry", TimeDomain.WATERMARK)

    def __init__(self, config: NearDupConfig, ttl_seconds: int) -> None:
        self.config = config
        self.ttl = ttl_seconds
        self.candidates = Metrics.counter(M.NEARDUP, M.STREAM_CANDIDATES)
        self.verified = Metrics.counter(M.NEARDUP, M.STREAM_VERIFIED)

    def process(
        self,
        element: tuple[str, tuple],
        timestamp=beam.DoFn.TimestampParam,
        members=beam.DoFn.StateParam(MEMBERS),
        expiry=beam.DoFn.TimerParam(EXPIRY),
    ) -> Iterator[Any]:
        _, (order, article_id, packed) = element
        mine = _unpack(packed)
        known = list(members.read())
        best: tuple[float, str] | None = None
        for m_order, m_id, m_packed in known:
            if m_order >= order or m_id == article_id:
                continue
            self.candidates.inc()
            same, sim = self.config.same_story(mine, _unpack(m_packed))
            if same:
                self.verified.inc()
                if best is None or sim > best[0] or (sim == best[0] and m_id < best[1]):
                    best = (sim, m_id)
        yield (article_id, (_VOTE, best))
        known.append((order, article_id, packed))
        if len(known) > STREAM_MAX_BUCKET:
            known = sorted(known)[-STREAM_MAX_BUCKET:]
            members.clear()
            for item in known:
                members.add(item)
        else:
            members.add((order, article_id, packed))
        expiry.set(timestamp + self.ttl)

    @on_timer(EXPIRY)
    def expire(self, members=beam.DoFn.StateParam(MEMBERS)):
        members.clear()


class _DecideFn(beam.DoFn):
    """Per article: wait for its votes from every band, then link it to the most similar
    earlier article (first seen survives) or let it survive as a new story.

    The votes of an article arrive with it (same arrival timestamp), so its state is
    normally cleared at once; what a lost vote would leave behind expires ``ttl``
    seconds (event time) later, counted."""

    SEEN = BagStateSpec("seen", PickleCoder())
    EXPIRY = TimerSpec("expiry", TimeDomain.WATERMARK)

    def __init__(self, ttl_seconds: int) -> None:
        self.ttl = ttl_seconds
        self.dups = Metrics.counter(M.NEARDUP, M.NEAR_DUPLICATES)
        self.expired = Metrics.counter(M.NEARDUP, M.state_expired(NEAR))

    def process(
        self,
        element: tuple[str, tuple],
        timestamp=beam.DoFn.TimestampParam,
        seen=beam.DoFn.StateParam(SEEN),
        expiry=beam.DoFn.TimerParam(EXPIRY),
    ):
        _, value = element
        expiry.set(timestamp + self.ttl)
        seen.add(value)
        items = list(seen.read())
        article = next((v for v in items if v[0] == _ARTICLE), None)
        if article is None:
            return
        votes = [v[1] for v in items if v[0] == _VOTE]
        if len(votes) < article[2]:
            return
        seen.clear()
        out = dict(article[1])
        matches = [v for v in votes if v is not None]
        if not matches:
            out["cluster_id"] = out.get("canonical_id") or out["id"]
            out["similarity"] = 1.0
            yield out
            return
        sim, survivor = min(matches, key=lambda v: (-v[0], v[1]))  # most similar, then id
        self.dups.inc()
        out.update(
            duplicate_of=survivor,
            canonical_id=survivor,
            cluster_id=survivor,
            similarity=round(float(sim), 4),
            duplicate_reason=NEAR,
        )
        yield TaggedOutput(DUPLICATES, out)

    @on_timer(EXPIRY)
    def expire(self, seen=beam.DoFn.StateParam(SEEN)):
        if list(seen.read()):
            self.expired.inc()
        seen.clear()


class DeduplicateNearStreaming(beam.PTransform):
    """Near-duplicates in a stream, with bounded state: the batch core (shingles,
    MinHash, LSH bands, exact verification) in stateful DoFns keyed by band bucket, with
    a TTL. First seen survives; a later copy is linked to the most similar earlier
    article (``duplicate_of``, ``cluster_id``). Returns ``{"articles", "duplicates"}``."""

    def __init__(
        self,
        ttl_seconds: int = 7 * 24 * 3600,
        threshold: float = DEFAULT_THRESHOLD,
        ngram: int = DEFAULT_NGRAM,
        num_perm: int = DEFAULT_NUM_PERM,
        containment: float = DEFAULT_CONTAINMENT,
    ) -> None:
        super().__init__()
        config = NearDupConfig(
            threshold=threshold, ngram=ngram, num_perm=num_perm, containment=containment
        )
        hasher = config.minhasher()
        self.config = replace(config, bands=hasher.bands, rows=hasher.rows)
        self.ttl_seconds = ttl_seconds

    def expand(self, pcoll):
        # String keys, declared: a deterministic key coder for the state (Dataflow's
        # update compatibility and the key hashing both need one).
        sketched = pcoll | "Sketch" >> beam.ParDo(_StreamSketchFn(self.config)).with_output_types(
            KeyedValue, **{_StreamSketchFn.BANDS: KeyedValue}
        ).with_outputs(_StreamSketchFn.BANDS, main="articles")
        votes = sketched[_StreamSketchFn.BANDS] | "CompareInBand" >> beam.ParDo(
            _BandMembersFn(self.config, self.ttl_seconds)
        ).with_output_types(KeyedValue)
        decided = (
            (sketched.articles, votes)
            | "ArticlesAndVotes" >> beam.Flatten().with_output_types(KeyedValue)
            | "Decide"
            >> beam.ParDo(_DecideFn(self.ttl_seconds)).with_outputs(DUPLICATES, main="articles")
        )
        return {"articles": decided.articles, DUPLICATES: decided[DUPLICATES]}
