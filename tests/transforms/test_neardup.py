"""Near-duplicate core (shingles, MinHash, banding, verification, short bodies) and the
DeduplicateNear PTransform on the FnApiRunner with assert_that."""

from __future__ import annotations

import datetime as dt
import random

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from khabar.pipeline.dedup.near import DeduplicateNear
from khabar.transforms.common import DUPLICATES
from khabar.transforms.dedup import fold_text, fold_text_reference
from khabar.transforms.neardup import (
    MinHasher,
    NearDupConfig,
    cluster_in_memory,
    collision_probability,
    first_shared_band,
    fold_tokens,
    lsh_params,
    node_of,
    overlap,
    shingle_set,
    shingles_from_tokens,
)

T0 = dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.UTC)

# A vocabulary of made-up Persian-looking words: distinct, deterministic texts.
_RNG = random.Random(7)
_LETTERS = "ابپتثجچحخدذرزژسشصضطظعغفقکگلمنوهی"
VOCAB = sorted(
    {"".join(_RNG.choice(_LETTERS) for _ in range(_RNG.randint(3, 7))) for _ in range(4000)}
)


def words(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(VOCAB) for _ in range(n)]


def article(aid: str, body: list[str] | str, minutes: int | None = 0, **extra) -> dict:
    text = body if isinstance(body, str) else " ".join(body)
    return {
        "id": aid,
        "title": extra.pop("title", "عنوان " + aid),
        "lead": extra.pop("lead", None),
        "body": text,
        "published_at": None if minutes is None else T0 + dt.timedelta(minutes=minutes),
        "language": "fa",
        **extra,
    }


# --------------------------------------------------------------------------- core


def test_fast_fold_matches_str_translate() -> None:
    samples = [
        "رئيس‌جمهوري گفت: ۱۲۰ كتاب‌ها را ١٢٠ بار خواند!",
        "Hello WORLD, مَدرِسه ــ آزمون 42",
        "",
        "ي ك ة ۀ أ إ آ ٱ ؤ ئ",
    ]
    for text in samples:
        assert fold_text(text) == fold_text_reference(text)


def test_fold_tokens_joins_zwnj_space_and_letter_variants() -> None:
    forms = ["کتاب‌ها را می‌خوانند ۱۲", "كتاب ها را مي خوانند 12", "کتابها را میخوانند ١٢"]
    assert len({tuple(fold_tokens(f)) for f in forms}) == 1
    assert fold_tokens("کتابها را میخوانند 12") == ["کتابها", "را", "میخوانند", "12"]
    assert fold_tokens(None) == [] and fold_tokens("") == []


def test_shingles_are_sorted_unique_and_order_sensitive() -> None:
    tokens = ["a", "b", "c", "d", "a", "b", "c"]
    s = shingles_from_tokens(tokens, 3)
    assert s.dtype == np.uint32
    assert list(s) == sorted(set(s.tolist()))
    assert s.size == 4  # abc, bcd, cda, dab; "abc" twice
    assert shingles_from_tokens(tokens, 8).size == 0
    assert not np.array_equal(
        shingles_from_tokens(["x", "y", "z"], 3), shingles_from_tokens(["z", "y", "x"], 3)
    )
    # Hashes depend only on the tokens: the same in every process.
    assert (
        shingles_from_tokens(["x", "y", "z"], 3).tolist()
        == shingles_from_tokens(["x", "y", "z"], 3).tolist()
    )


def test_minhash_estimate_tracks_exact_jaccard() -> None:
    hasher = MinHasher(num_perm=128, seed=3, threshold=0.5)
    rng = np.random.default_rng(11)
    errors = []
    for _ in range(150):
        base = np.unique(rng.integers(0, 2**32, 400, dtype=np.uint64).astype(np.uint32))
        keep = base[rng.permutation(base.size)[: rng.integers(50, base.size)]]
        other = np.unique(
            np.concatenate([keep, rng.integers(0, 2**32, 100, dtype=np.uint64).astype(np.uint32)])
        )
        exact, _ = overlap(base, other)
        estimate = float(np.mean(hasher.signature(base) == hasher.signature(other)))
        errors.append(estimate - exact)
    errors_arr = np.array(errors)
    assert abs(errors_arr.mean()) < 0.015  # unbiased
    assert errors_arr.std() < 0.05  # sqrt(J(1-J)/128) <= 0.044
    same = np.unique(rng.integers(0, 2**32, 100, dtype=np.uint64).astype(np.uint32))
    assert np.array_equal(hasher.signature(same), hasher.signature(same.copy()))


def test_batched_signatures_equal_single_and_empty_sets_have_no_bands() -> None:
    hasher = MinHasher(num_perm=64, seed=1, threshold=0.5)
    rng = np.random.default_rng(2)
    sets = [
        np.unique(rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32))
        for n in (0, 1, 50, 300, 0, 7)
    ]
    batch = hasher.signatures(sets, group=2)
    for i, s in enumerate(sets):
        assert np.array_equal(batch[i], hasher.signature(s))
    assert hasher.band_hashes(hasher.signature(sets[0])) == []
    assert len(hasher.band_hashes(hasher.signature(sets[2]))) == hasher.bands


def test_lsh_params_banding_math() -> None:
    bands, rows = lsh_params(0.5, 128)
    assert bands * rows <= 128
    # The S-curve: pairs well above the threshold almost always collide, well below rarely.
    assert collision_probability(0.8, bands, rows) > 0.99
    assert collision_probability(0.5, bands, rows) > 0.5
    assert collision_probability(0.15, bands, rows) < 0.05
    # A higher threshold needs more rows per band.
    assert lsh_params(0.8, 128)[1] > rows > lsh_params(0.3, 128)[1]
    assert first_shared_band([1, 2, 3], [9, 2, 3]) == 1
    assert first_shared_band([1, 2], [3, 4]) == -1
    with pytest.raises(ValueError):
        lsh_params(1.0, 128)


def test_containment_catches_dropped_paragraph() -> None:
    config = NearDupConfig(threshold=0.5, containment=0.8)
    original = words(1, 200)
    cut = original[120:]  # lead and most of the story dropped: J well below 0.5
    a = shingles_from_tokens(original, 3)
    b = shingles_from_tokens(cut, 3)
    jac, cont = overlap(a, b)
    assert jac < 0.5 and cont == 1.0
    ok, sim = config.same_story(a, b)
    assert ok and sim == 1.0
    unrelated = shingles_from_tokens(words(2, 200), 3)
    assert not config.same_story(a, unrelated)[0]
    # A tiny text is not "contained" in every long text quoting it.
    tiny = shingles_from_tokens(original[:8], 3)
    assert overlap(a, tiny)[1] == 1.0 and not config.same_story(a, tiny)[0]


def test_short_bodies_use_title_and_lead_or_stay_alone() -> None:
    assert shingle_set(article("a", words(1, 100)), 3).mode == "body"
    short = article("b", "متن کوتاه", title="سیل در شمال کشور", lead="باران شدید در گیلان")
    result = shingle_set(short, 3)
    assert result.mode == "title_lead" and result.shingles.size > 0
    empty = article("c", "", title="خبر", lead=None)
    assert shingle_set(empty, 3).mode == "none" and shingle_set(empty, 3).shingles.size == 0

    # Thirty empty/short bodies with distinct titles and twenty with none at all: no merge.
    batch = [
        article(
            f"s{i:02d}", "", title=" ".join(words(100 + i, 6)), lead=" ".join(words(200 + i, 8))
        )
        for i in range(30)
    ] + [article(f"e{i:02d}", "", title="", lead=None) for i in range(20)]
    result_ = cluster_in_memory(batch, NearDupConfig())
    assert len(set(result_.cluster_of.values())) == len(batch)
    # Two short articles with the same title and lead (a re-post) do merge.
    twin = [
        article(
            "t1",
            "",
            title="زلزله ۵ ریشتری در کرمان",
            lead="زلزله‌ای به بزرگی ۵ ریشتر کرمان را لرزاند",
        ),
        article(
            "t2",
            "",
            title="زلزله 5 ريشتري در كرمان",
            lead="زلزله اي به بزرگي 5 ريشتر كرمان را لرزاند",
        ),
    ]
    assert len(set(cluster_in_memory(twin, NearDupConfig()).cluster_of.values())) == 1


def test_node_order_is_survivor_order() -> None:
    a = article("b", "x", 5)
    b = article("a", "x", 10)
    c = article("0", "x", None)
    d = article("c", "x", 5)
    assert sorted([c, b, d, a], key=node_of) == [a, d, b, c]


# --------------------------------------------------------------------------- PTransform

BASE = words(10, 240)
CHAIN_A = words(20, 200)


def _hand_made() -> list[dict]:
    """Story S: original + light copy (Arabic letters, ZWNJ) + copy with the last fifth
        cut (containment). Chain A~B~C: B shares 75% of A's words, C 75% of B's, 50% of A's,
        so A-C fails verification (Jaccard ~0.33, containment 0.5) and is linked only through
    B, and A-B and B-C are found in different bands. Plus unrelated and short ones."""
    light = " ".join(BASE).replace("ی", "ي").replace("ک", "ك")
    b_tokens = CHAIN_A[50:] + words(21, 50)  # 150 of A's 200 words, then new ones
    c_tokens = b_tokens[50:] + words(22, 50)  # 150 of B's, only 100 of A's
    return [
        article("s-orig", BASE, 30),
        article("s-light", light, 10, title="تیتر تازه"),  # earliest: the survivor
        article("s-cut", BASE[:190], 40),
        article("chain-a", CHAIN_A, None),
        article("chain-b", b_tokens, 100),
        article("chain-c", c_tokens, 100),
        article("lone-1", words(30, 150), 0),
        article("lone-2", words(31, 150), 0),
        article("short-1", "", 0, title="تیتر اول خبر کوتاه"),
        article("short-2", "", 0, title="تیتر دوم خبر دیگر"),
    ]


EXPECTED_CLUSTER = {
    "s-orig": "s-light",
    "s-light": "s-light",
    "s-cut": "s-light",
    "chain-a": "chain-b",
    "chain-b": "chain-b",
    "chain-c": "chain-b",
    "lone-1": "lone-1",
    "lone-2": "lone-2",
    "short-1": "short-1",
    "short-2": "short-2",
}


def test_hand_made_set_is_a_chain_across_bands() -> None:
    articles = {a["id"]: a for a in _hand_made()}
    config = NearDupConfig()
    hasher = config.minhasher()
    sets = {k: shingle_set(a).shingles for k, a in articles.items()}
    bands = {k: hasher.band_hashes(hasher.signature(s)) for k, s in sets.items()}
    assert not config.same_story(sets["chain-a"], sets["chain-c"])[0]
    assert config.same_story(sets["chain-a"], sets["chain-b"])[0]
    assert config.same_story(sets["chain-b"], sets["chain-c"])[0]
    ab = first_shared_band(bands["chain-a"], bands["chain-b"])
    bc = first_shared_band(bands["chain-b"], bands["chain-c"])
    assert ab >= 0 and bc >= 0 and ab != bc
    assert cluster_in_memory(list(articles.values()), config).cluster_of == EXPECTED_CLUSTER


def _summary(a: dict) -> tuple:
    return (
        a["id"],
        a["cluster_id"],
        a["canonical_id"],
        a.get("duplicate_of"),
        a.get("duplicate_reason"),
        round(a["similarity"], 4),
    )


def test_deduplicate_near_pipeline_clusters_chain_and_links() -> None:
    articles = _hand_made()
    sets = {a["id"]: shingle_set(a).shingles for a in articles}
    expected_survivors = []
    expected_dups = []
    for a in articles:
        cluster = EXPECTED_CLUSTER[a["id"]]
        if cluster == a["id"]:
            expected_survivors.append((a["id"], a["id"], a["id"], None, None, 1.0))
        else:
            sim = round(max(overlap(sets[a["id"]], sets[cluster])), 4)
            expected_dups.append((a["id"], cluster, cluster, cluster, "near", sim))
    assert ("s-orig", "s-light", "s-light", "s-light", "near", 1.0) in expected_dups
    with TestPipeline() as p:
        out = (
            p
            | beam.Create(articles)
            | DeduplicateNear(threshold=0.5, ngram=3, num_perm=128, containment=0.8, rounds=2)
        )
        assert_that(
            out["articles"] | "S" >> beam.Map(_summary),
            equal_to(expected_survivors),
            label="survivors",
        )
        assert_that(
            out[DUPLICATES] | "D" >> beam.Map(_summary), equal_to(expected_dups), label="duplicates"
        )
        assert_that(
            out["articles"] | "NoPrivate" >> beam.FlatMap(lambda a: [k for k in a if k[0] == "_"]),
            equal_to([]),
            label="no_private_keys",
        )


def test_deduplicate_near_is_deterministic_and_matches_in_memory() -> None:
    # A bigger set: 12 stories x 4 copies with edits, 40 unrelated; input order shuffled.
    rng = random.Random(5)
    articles = []
    for s in range(12):
        text = words(1000 + s, 220)
        for c in range(4):
            edited = list(text)
            if c == 1:
                edited = edited[30:]
            elif c == 2:
                edited = edited + words(2000 + s, 25)
            elif c == 3:
                edited[100:110] = words(3000 + s, 10)
            articles.append(article(f"st{s:02d}-{c}", edited, rng.choice([None, 5, 5, 60])))
    articles += [article(f"u{i:02d}", words(5000 + i, 180), i) for i in range(40)]
    expected = cluster_in_memory(articles, NearDupConfig()).cluster_of
    assert len(set(expected.values())) == 12 + 40
    runs = []
    for seed in (1, 2):
        shuffled = list(articles)
        random.Random(seed).shuffle(shuffled)
        with TestPipeline() as p:
            out = p | beam.Create(shuffled) | DeduplicateNear()
            both = (out["articles"], out[DUPLICATES]) | beam.Flatten()
            pairs = both | beam.Map(lambda a: (a["id"], a["cluster_id"]))
            assert_that(pairs, equal_to(sorted(expected.items())))
            runs.append(both | "Summ" >> beam.Map(_summary))
            assert_that(
                runs[-1] | beam.Map(lambda t: t[0]) | beam.combiners.Count.Globally(),
                equal_to([len(articles)]),
                label="count",
            )


def test_each_candidate_pair_is_verified_once_as_in_memory() -> None:
    # copies share most bands: the pipeline must still verify each pair once (DistinctPairs)
    from apache_beam.metrics.metric import MetricsFilter

    articles = []
    for s in range(5):
        text = words(7000 + s, 200)
        for c in range(3):
            edited = list(text)
            edited[50 + 10 * c : 55 + 10 * c] = words(7100 + 10 * s + c, 5)
            articles.append(article(f"c{s}-{c}", edited, c))
    articles += [article(f"o{i}", words(7500 + i, 150), i) for i in range(10)]
    expected = cluster_in_memory(articles, NearDupConfig())
    assert expected.candidate_pairs == 15 and expected.verified_pairs == 15
    p = TestPipeline()
    _ = p | beam.Create(articles) | DeduplicateNear()
    result = p.run()
    result.wait_until_finish()
    counters = {
        c.key.metric.name: c.committed
        for c in result.metrics().query(MetricsFilter().with_namespace("neardup"))["counters"]
    }
    assert counters["candidate_pairs"] == expected.candidate_pairs
    assert counters["verified_pairs"] == expected.verified_pairs


def _cc_labels(edges: list[tuple[str, str]], rounds: int) -> list[tuple[str, str]]:
    from khabar.pipeline.dedup.near import ConnectedComponents

    def node(name: str) -> tuple[int, int, str]:
        return (0, 0, name)

    nodes = sorted({n for e in edges for n in e})
    expected = [
        (n, min(m for m in nodes if _component(edges, n) == _component(edges, m))) for n in nodes
    ]
    with TestPipeline() as p:
        labels = (
            p
            | beam.Create([(node(a), node(b)) for a, b in edges])
            | ConnectedComponents(rounds=rounds)
            | beam.Map(lambda kv: (kv[0], kv[1][2]))
        )
        assert_that(labels, equal_to(expected))
    return expected


def _component(edges: list[tuple[str, str]], start: str) -> frozenset[str]:
    seen, todo = {start}, [start]
    while todo:
        x = todo.pop()
        for a, b in edges:
            for u, v in ((a, b), (b, a)):
                if u == x and v not in seen:
                    seen.add(v)
                    todo.append(v)
    return frozenset(seen)


@pytest.mark.parametrize("rounds", [1, 3])
def test_connected_components_long_path_any_rounds(rounds: int) -> None:
    # A path of 30 nodes in scrambled order (diameter 29) and a separate triangle: after
    # one round the residual fix-up must finish the job.
    order = [f"n{(i * 17) % 30:02d}" for i in range(30)]
    path = list(zip(order, order[1:], strict=False))
    triangle = [("x1", "x2"), ("x2", "x3"), ("x3", "x1")]
    expected = _cc_labels(path + triangle, rounds)
    assert {label for _, label in expected} == {"n00", "x1"}


def test_link_exact_duplicates_follow_their_cluster() -> None:
    from khabar.pipeline.dedup.near import LinkExactDuplicates

    near = [
        {"id": "s", "cluster_id": "s", "canonical_id": "s", "similarity": 1.0},
        {"id": "n", "cluster_id": "s", "canonical_id": "s", "similarity": 0.9},
    ]
    exact = [
        {"id": "e1", "canonical_id": "n", "duplicate_of": "n", "duplicate_reason": "content"},
        {"id": "e2", "canonical_id": "s", "duplicate_of": "s", "duplicate_reason": "url"},
    ]
    with TestPipeline() as p:
        linked = (p | "E" >> beam.Create(exact), p | "N" >> beam.Create(near)) | (
            LinkExactDuplicates()
        )
        assert_that(
            linked
            | beam.Map(
                lambda a: (
                    a["id"],
                    a["canonical_id"],
                    a["cluster_id"],
                    a["duplicate_of"],
                    a["similarity"],
                )
            ),
            equal_to([("e1", "s", "s", "n", 0.9), ("e2", "s", "s", "s", 1.0)]),
        )
