"""``khabar bench-dedup``: near-duplicate detection on a syndication benchmark.

Builds the benchmark of :mod:`khabar.pipeline.bench.syndicate` (real Persian news, outlet
variants at light/medium/heavy edit levels, unrelated and same-topic different-story articles; fixed
seed) and prints:

1. MinHash implementations: signatures/s and mean |estimate - exact Jaccard| on the
   (original, variant) pairs for khabar's numpy MinHasher (per article and batched),
   datasketch ``MinHash`` and rensa ``RMinHash``/``CMinHash`` (when installed).
2. Optionally (``--sweep``) a grid over n-gram size and threshold.
3. Pairwise precision/recall/F1 of "same story" decisions per edit level, cluster purity
   and articles/s for khabar (:func:`khabar.transforms.neardup.cluster_in_memory`, the
   algorithm of ``DeduplicateNear``) beside datasketch ``MinHashLSH`` on the same data in
   the same run, and the throughput ratio.
4. ``DeduplicateNear`` on the DirectRunner on ``--direct`` articles: wall time, and
   whether its clusters equal the in-memory ones.

datasketch and rensa are benchmark-only dependencies (``pip install datasketch rensa``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.options.pipeline_options import PipelineOptions

from khabar.pipeline.bench.syndicate import (
    DEFAULT_DATA_DIR,
    DEFAULT_SEED,
    build_benchmark,
    load_corpus,
)
from khabar.pipeline.dedup.near import DeduplicateNear
from khabar.transforms.neardup import (
    DEFAULT_CONTAINMENT,
    DEFAULT_NGRAM,
    DEFAULT_NUM_PERM,
    DEFAULT_THRESHOLD,
    NearDupConfig,
    UnionFind,
    clear_token_cache,
    cluster_in_memory,
    fold_tokens,
    overlap,
    shingle_set,
    shingles_from_tokens,
)
from khabar.transforms.normalize import Normalizer

RANK = {"original": 0, "unrelated": 0, "hard_negative": 0, "light": 1, "medium": 2, "heavy": 3}
CLASS = {0: "none", 1: "light", 2: "medium", 3: "heavy"}


# --------------------------------------------------------------------------- scoring


def _pairs(groups: dict[str, list[int]]) -> set[tuple[int, int]]:
    out: set[tuple[int, int]] = set()
    for members in groups.values():
        if len(members) > 1:
            out.update(itertools.combinations(sorted(members), 2))
    return out


def evaluate(articles: Sequence[dict[str, Any]], cluster_of: dict[str, str]) -> dict[str, Any]:
    """Pairwise P/R/F1 per edit level (a pair's level is the heavier of its two), cluster
    purity, and how many hard negatives were merged with anything."""
    truth_groups: dict[str, list[int]] = defaultdict(list)
    pred_groups: dict[str, list[int]] = defaultdict(list)
    for i, a in enumerate(articles):
        truth_groups[a["story"]].append(i)
        pred_groups[cluster_of[a["id"]]].append(i)
    truth, pred = _pairs(truth_groups), _pairs(pred_groups)
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()

    def level(pair: tuple[int, int]) -> str:
        i, j = pair
        return CLASS[max(RANK[articles[i]["level"]], RANK[articles[j]["level"]])]

    for pair in pred:
        (tp if pair in truth else fp)[level(pair)] += 1
    for pair in truth - pred:
        fn[level(pair)] += 1
    rows: dict[str, dict[str, float]] = {}
    for name in ("light", "medium", "heavy", "none", "all"):
        t = sum(tp.values()) if name == "all" else tp[name]
        f = sum(fp.values()) if name == "all" else fp[name]
        n = sum(fn.values()) if name == "all" else fn[name]
        p = t / (t + f) if t + f else 1.0
        r = t / (t + n) if t + n else 1.0
        rows[name] = {
            "tp": t,
            "fp": f,
            "fn": n,
            "precision": p,
            "recall": r,
            "f1": 2 * p * r / (p + r) if p + r else 0.0,
        }
    majority = sum(
        Counter(articles[i]["story"] for i in members).most_common(1)[0][1]
        for members in pred_groups.values()
    )
    merged_negatives = sum(
        1
        for a in articles
        if a["level"] == "hard_negative" and len(pred_groups[cluster_of[a["id"]]]) > 1
    )
    return {
        "levels": rows,
        "purity": majority / len(articles),
        "clusters": len(pred_groups),
        "true_clusters": len(truth_groups),
        "merged_hard_negatives": merged_negatives,
    }


def _print_eval(name: str, result: dict[str, Any], seconds: float, n: int) -> None:
    print(f"\n{name}: {n / seconds:,.0f} articles/s ({seconds:.2f} s for {n} articles)")
    print(f"  {'level':8} {'pairs':>6} {'TP':>6} {'FP':>5} {'FN':>5} {'P':>7} {'R':>7} {'F1':>7}")
    for level, row in result["levels"].items():
        pairs = row["tp"] + row["fn"]
        print(
            f"  {level:8} {pairs:6d} {row['tp']:6d} {row['fp']:5d} {row['fn']:5d} "
            f"{row['precision']:7.4f} {row['recall']:7.4f} {row['f1']:7.4f}"
        )
    print(
        f"  purity {result['purity']:.4f}; clusters {result['clusters']} "
        f"(true {result['true_clusters']}); hard negatives merged: "
        f"{result['merged_hard_negatives']}"
    )


# --------------------------------------------------------------------------- runners


def _string_shingles(tokens: list[str], ngram: int) -> list[bytes]:
    return [" ".join(tokens[i : i + ngram]).encode("utf-8") for i in range(len(tokens) - ngram + 1)]


def _tokens(article: dict[str, Any], min_body_tokens: int) -> list[str]:
    body = fold_tokens(article.get("body"))
    if len(body) >= min_body_tokens:
        return body
    return fold_tokens(article.get("title")) + fold_tokens(article.get("lead")) + body


def run_datasketch(
    articles: Sequence[dict[str, Any]], config: NearDupConfig
) -> tuple[dict[str, str], float]:
    """datasketch MinHash + MinHashLSH (insert, then query every article), clusters as
    connected components of the LSH answers: its standard use, no verification."""
    from datasketch import MinHash, MinHashLSH

    start = time.perf_counter()
    lsh = MinHashLSH(threshold=config.threshold, num_perm=config.num_perm)
    sketches = []
    for a in articles:
        m = MinHash(num_perm=config.num_perm, seed=1)
        m.update_batch(_string_shingles(_tokens(a, config.min_body_tokens), config.ngram))
        sketches.append(m)
        lsh.insert(a["id"], m)
    uf = UnionFind()
    for a, m in zip(articles, sketches, strict=True):
        for other in lsh.query(m):
            if other != a["id"]:
                uf.union(a["id"], other)
    seconds = time.perf_counter() - start
    return {a["id"]: uf.find(a["id"]) for a in articles}, seconds


def run_khabar(
    articles: Sequence[dict[str, Any]], config: NearDupConfig
) -> tuple[dict[str, str], float, int, int]:
    clear_token_cache()  # cold start: no credit for an earlier run's token hashes
    start = time.perf_counter()
    result = cluster_in_memory(articles, config)
    seconds = time.perf_counter() - start
    return result.cluster_of, seconds, result.candidate_pairs, result.verified_pairs


def bench_minhash(articles: Sequence[dict[str, Any]], config: NearDupConfig) -> None:
    """Signature speed and accuracy of the MinHash implementations on the same tokens."""
    tokens = [_tokens(a, config.min_body_tokens) for a in articles]
    by_story: dict[str, list[int]] = defaultdict(list)
    for i, a in enumerate(articles):
        by_story[a["story"]].append(i)
    pairs = [(m[0], j) for m in by_story.values() if len(m) > 1 for j in m[1:]]
    sets = [shingles_from_tokens(t, config.ngram) for t in tokens]
    exact = np.array([overlap(sets[i], sets[j])[0] for i, j in pairs])
    hasher = config.minhasher()
    P = config.num_perm
    results: list[tuple[str, float, float]] = []

    def record(name: str, seconds: float, estimate: Callable[[int, int], float]) -> None:
        est = np.array([estimate(i, j) for i, j in pairs])
        results.append((name, len(articles) / seconds, float(np.mean(np.abs(est - exact)))))

    clear_token_cache()
    start = time.perf_counter()
    sigs = [hasher.signature(shingles_from_tokens(t, config.ngram)) for t in tokens]
    record(
        "khabar numpy (per article)",
        time.perf_counter() - start,
        lambda i, j: float(np.mean(sigs[i] == sigs[j])),
    )
    clear_token_cache()
    start = time.perf_counter()
    batch = hasher.signatures([shingles_from_tokens(t, config.ngram) for t in tokens])
    record(
        "khabar numpy (batched)",
        time.perf_counter() - start,
        lambda i, j: float(np.mean(batch[i] == batch[j])),
    )
    try:
        from datasketch import MinHash

        start = time.perf_counter()
        ds = []
        for t in tokens:
            m = MinHash(num_perm=P, seed=1)
            m.update_batch(_string_shingles(t, config.ngram))
            ds.append(m)
        record("datasketch MinHash", time.perf_counter() - start, lambda i, j: ds[i].jaccard(ds[j]))
    except ImportError:
        print("  (datasketch not installed)")
    try:
        import rensa

        for cls in (rensa.RMinHash, rensa.CMinHash):
            start = time.perf_counter()
            rs = []
            for t in tokens:
                m = cls(num_perm=P, seed=1)
                m.update(
                    [" ".join(t[i : i + config.ngram]) for i in range(len(t) - config.ngram + 1)]
                )
                rs.append(m)
            record(
                f"rensa {cls.__name__}",
                time.perf_counter() - start,
                lambda i, j, rs=rs: rs[i].jaccard(rs[j]),
            )
    except ImportError:
        print("  (rensa not installed)")
    print(
        f"\nMinHash, {P} permutations, {config.ngram}-gram shingles from folded tokens,"
        f" {len(pairs)} (original, variant) pairs:"
    )
    for name, rate, mae in results:
        print(f"  {name:30} {rate:9,.0f} signatures/s   mean |est - exact J| {mae:.4f}")


def sweep(articles: Sequence[dict[str, Any]], base: NearDupConfig) -> None:
    print("\nSweep (khabar, in memory): n-gram x threshold; containment", base.containment)
    print(
        f"  {'n':>2} {'t':>5} {'b x r':>7} {'P light':>8} {'R light':>8} {'P med':>7} "
        f"{'R med':>7} {'R heavy':>8} {'P all':>7} {'purity':>7} {'cand':>7} {'art/s':>7}"
    )
    for ngram in (2, 3, 4, 5):
        for threshold in (0.3, 0.4, 0.5, 0.6, 0.7):
            config = NearDupConfig(
                threshold=threshold,
                ngram=ngram,
                num_perm=base.num_perm,
                containment=base.containment,
                seed=base.seed,
            )
            hasher = config.minhasher()
            cluster_of, seconds, cand, _ = run_khabar(articles, config)
            r = evaluate(articles, cluster_of)
            lv = r["levels"]
            print(
                f"  {ngram:2d} {threshold:5.2f} {hasher.bands:3d}x{hasher.rows:<3d} "
                f"{lv['light']['precision']:8.4f} {lv['light']['recall']:8.4f} "
                f"{lv['medium']['precision']:7.4f} {lv['medium']['recall']:7.4f} "
                f"{lv['heavy']['recall']:8.4f} {lv['all']['precision']:7.4f} "
                f"{r['purity']:7.4f} {cand:7d} {len(articles) / seconds:7,.0f}"
            )


def run_direct(articles: Sequence[dict[str, Any]], config: NearDupConfig) -> tuple[dict, float]:
    """DeduplicateNear on the DirectRunner: (id -> cluster_id, seconds). Results are
    written as text and read back (the wall time includes that small write)."""
    records = [{k: v for k, v in a.items() if k not in ("story", "level")} for a in articles]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        with beam.Pipeline(options=PipelineOptions(["--runner=DirectRunner"])) as p:
            out = (
                p
                | beam.Create(records)
                | DeduplicateNear(
                    threshold=config.threshold,
                    ngram=config.ngram,
                    num_perm=config.num_perm,
                    containment=config.containment,
                    seed=config.seed,
                )
            )
            (
                (out["articles"], out["duplicates"])
                | beam.Flatten()
                | beam.Map(lambda a: json.dumps([a["id"], a["cluster_id"]]))
                | beam.io.WriteToText(str(Path(tmp) / "clusters"))
            )
        seconds = time.perf_counter() - start
        clusters: dict[str, str] = {}
        for path in Path(tmp).glob("clusters*"):
            for line in path.read_text(encoding="utf-8").splitlines():
                aid, cluster = json.loads(line)
                clusters[aid] = cluster
    return clusters, seconds


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="khabar bench-dedup", description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--originals", type=int, default=500)
    parser.add_argument("--hard-negatives", type=int, default=200)
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--ngram", type=int, default=DEFAULT_NGRAM)
    parser.add_argument("--num-perm", type=int, default=DEFAULT_NUM_PERM)
    parser.add_argument("--containment", type=float, default=DEFAULT_CONTAINMENT)
    parser.add_argument("--sweep", action="store_true", help="grid over n-gram and threshold")
    parser.add_argument(
        "--hazm",
        action="store_true",
        help="normalize every article first (transforms.normalize), as the pipeline does",
    )
    parser.add_argument("--no-minhash", action="store_true", help="skip the MinHash comparison")
    parser.add_argument("--no-datasketch", action="store_true")
    parser.add_argument(
        "--direct", type=int, default=3000, help="articles for the DirectRunner run (0: skip)"
    )
    args = parser.parse_args(argv)

    corpus = load_corpus(args.data_dir)
    articles, summary = build_benchmark(
        corpus, seed=args.seed, originals=args.originals, hard_negatives=args.hard_negatives
    )
    print("Benchmark:", ", ".join(f"{k}={v}" for k, v in summary.items()))
    if args.hazm:
        normalizer = Normalizer()
        articles = [normalizer.normalize_article(a) for a in articles]
        print("  normalized (transforms.normalize)")
    config = NearDupConfig(
        threshold=args.threshold,
        ngram=args.ngram,
        num_perm=args.num_perm,
        containment=args.containment,
    )
    hasher = config.minhasher()
    modes = Counter(shingle_set(a, config.ngram).mode for a in articles)
    print(
        f"Config: n={config.ngram} threshold={config.threshold} containment="
        f"{config.containment} num_perm={config.num_perm} -> {hasher.bands} bands x "
        f"{hasher.rows} rows; shingle modes {dict(modes)}"
    )

    if not args.no_minhash:
        bench_minhash(articles, config)
    if args.sweep:
        sweep(articles, config)

    cluster_of, seconds, cand, verified = run_khabar(articles, config)
    result = evaluate(articles, cluster_of)
    _print_eval(
        "khabar (MinHash LSH + exact Jaccard/containment verification)",
        result,
        seconds,
        len(articles),
    )
    print(f"  candidate pairs {cand}, verified {verified}")
    ok = True
    for level in ("light", "medium"):
        row = result["levels"][level]
        ok &= row["precision"] >= 0.99 and row["recall"] >= 0.95
    if not args.no_datasketch:
        try:
            ds_cluster, ds_seconds = run_datasketch(articles, config)
        except ImportError:
            print("\ndatasketch not installed: pip install datasketch")
        else:
            _print_eval(
                f"datasketch MinHashLSH(threshold={config.threshold}), unverified",
                evaluate(articles, ds_cluster),
                ds_seconds,
                len(articles),
            )
            ratio = ds_seconds / seconds
            print(f"\nThroughput khabar / datasketch: {ratio:.2f}x")
            ok &= ratio >= 1.0
    if args.direct:
        subset = articles[: args.direct]
        direct, d_seconds = run_direct(subset, config)
        memory = cluster_in_memory(subset, config).cluster_of
        same = direct == memory
        print(
            f"\nDeduplicateNear on the DirectRunner: {len(subset)} articles in "
            f"{d_seconds:.1f} s ({len(subset) / d_seconds:,.0f} articles/s); clusters equal "
            f"to the in-memory run: {same}"
        )
        ok &= same
    print(
        "\nTargets (P >= 0.99 and R >= 0.95 on light and medium, throughput >= datasketch):",
        "met" if ok else "NOT met",
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
