"""``khabar bench``: pipeline throughput against a plain-Python loop over the same cores.

Generates a corpus from the real Persian news in ``../shared/data/news-fa`` (with exact
duplicates by URL and by content, and a few broken lines), then times, in one run:

* a plain Python loop calling the stage cores directly (read, split, parse, clean, detect
  language, normalize, fingerprint, exact dedup in a dict, near-duplicate clusters in
  memory, then entities on the articles that are written, in groups of 32 as the
  pipeline's stage tags them);
* ``khabar``'s batch pipeline on the DirectRunner with 1 worker, and with 2 workers
  (``multi_processing``), each including pipeline start-up and Avro writing;
* the same runs on one record, which is what a run costs whatever its size (start-up,
  the graph, the workers, every stage once), so that the time per article beyond it can
  be told apart from it;
* where each run's wall time went: before the runner's first bundle (starting Python,
  imports, building the graph), inside its bundles stage by stage (the runner's
  ``KHABAR_STAGE_PROFILE``), and outside them.

Prints articles per second and the ratios. Numbers, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from khabar.pipeline.job.runner import STAGE_PROFILE_ENV
from khabar.pipeline.stages.entities import ENTITY_BATCH
from khabar.transforms.clean import clean_article
from khabar.transforms.dedup import fingerprint_article
from khabar.transforms.entities import tag_entities_core
from khabar.transforms.language import detect_language_core
from khabar.transforms.neardup import NearDupConfig, cluster_in_memory
from khabar.transforms.normalize import normalize_core
from khabar.transforms.parse import parse_record
from khabar.transforms.split import RawRecord

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "news-fa"


def make_corpus(data_dir: Path, out_dir: Path, n_articles: int, n_files: int, seed: int) -> dict:
    rng = random.Random(seed)
    originals: list[dict[str, Any]] = []
    for name in ("farsnews.jsonl", "varzesh3.jsonl"):
        with open(data_dir / name, encoding="utf-8") as handle:
            originals += [json.loads(line) for line in handle if line.strip()]
    rng.shuffle(originals)
    lines: list[str] = []
    kinds = {"original": 0, "url_duplicate": 0, "content_duplicate": 0, "broken": 0}
    i = 0
    emitted: list[dict[str, Any]] = []
    while len(lines) < n_articles:
        roll = rng.random()
        if roll < 0.08 and emitted:
            # an earlier article again, its URL with tracking parameters: duplicate by URL
            article = dict(rng.choice(emitted))
            article["url"] = (article.get("url") or "https://x.ir/") + "?utm_source=bench"
            kinds["url_duplicate"] += 1
        elif roll < 0.13 and emitted:
            # an earlier article's text with Arabic letter variants, no URL: by content
            earlier = rng.choice(emitted)
            article = {
                "title": earlier["title"].replace("ی", "ي").replace("ک", "ك"),
                "body": earlier["body"].replace("ی", "ي"),
                "source": "bench-copy",
            }
            kinds["content_duplicate"] += 1
        elif roll < 0.135:
            lines.append('{"title": "broken line", "body": ')
            kinds["broken"] += 1
            continue
        else:
            article = dict(originals[i % len(originals)])
            i += 1
            emitted.append(article)
            kinds["original"] += 1
        lines.append(json.dumps(article, ensure_ascii=False))
    out_dir.mkdir(parents=True, exist_ok=True)
    per_file = (len(lines) + n_files - 1) // n_files
    for k in range(n_files):
        chunk = lines[k * per_file : (k + 1) * per_file]
        (out_dir / f"part-{k:03d}.jsonl").write_text("\n".join(chunk) + "\n", encoding="utf-8")
    return {"records": len(lines), **kinds}


#: The plain loop's steps, in order, each timed in CPU seconds of this thread.
STEPS = ("parse", "clean", "language", "normalize", "entities", "fingerprint", "near-dup")


def plain_loop(files: list[str]) -> tuple[dict[str, int], dict[str, float]]:
    """The same stage cores, called directly: the baseline. Returns the counts and the
    CPU seconds spent in each step (``time.thread_time``: this thread only)."""
    detect = detect_language_core()
    normalize = normalize_core()
    entities = tag_entities_core()
    steps: list[tuple[str, Any]] = [
        ("parse", parse_record),
        ("clean", clean_article),
        ("language", detect),
        ("normalize", normalize),
        ("fingerprint", fingerprint_article),
    ]
    cpu = dict.fromkeys(STEPS, 0.0)
    survivors: list[dict[str, Any]] = []
    seen_fp: set[str] = set()
    seen_url: set[str] = set()
    counts = {"records": 0, "articles": 0, "duplicates": 0, "dead_letters": 0}
    clock = time.thread_time
    for path in files:
        with open(path, "rb") as handle:
            for lineno, line in enumerate(handle, start=1):
                line = line.rstrip(b"\r\n")
                if not line.strip():
                    continue
                counts["records"] += 1
                article: Any = RawRecord(path, lineno, "jsonl", line).to_dict()
                try:
                    for name, step in steps:
                        t0 = clock()
                        article = step(article)
                        cpu[name] += clock() - t0
                except Exception:  # noqa: BLE001 - counted like a dead letter
                    counts["dead_letters"] += 1
                    continue
                url = article.get("canonical_url")
                if article["content_fingerprint"] in seen_fp or (url and url in seen_url):
                    counts["duplicates"] += 1
                    continue
                seen_fp.add(article["content_fingerprint"])
                if url:
                    seen_url.add(url)
                survivors.append(article)
    # near-duplicate story clusters over the exact survivors, in memory (same algorithm)
    t0 = clock()
    clusters = cluster_in_memory(survivors, NearDupConfig())
    cpu["near-dup"] += clock() - t0
    written = [a for a in survivors if clusters.cluster_of.get(a["id"], a["id"]) == a["id"]]
    near = len(survivors) - len(written)
    counts["duplicates"] += near
    counts["articles"] = len(written)
    # entities on what is written, in the groups the pipeline's stage hands over
    t0 = clock()
    for i in range(0, len(written), ENTITY_BATCH):
        entities.many(written[i : i + ENTITY_BATCH])
    cpu["entities"] += clock() - t0
    return counts, cpu


def run_pipeline(files: list[str], output: str, extra: list[str]) -> dict[str, Any]:
    """``khabar run`` in a child process, as a user starts it: its summary, wall seconds,
    CPU seconds (user + system, of it and its worker processes), the peak resident
    memory of its largest process, and where its wall time went (:func:`wall_parts`)."""
    argv = [sys.executable, "-m", "khabar.pipeline.cli", "run", "--output", output, "--quiet"]
    for path in files:
        argv += ["--input", path]
    profile = output.rstrip("/") + ".stages.jsonl"
    env = {**os.environ, STAGE_PROFILE_ENV: profile}
    with tempfile.TemporaryFile() as err:
        launched, started = time.time(), time.perf_counter()
        child = subprocess.Popen([*argv, *extra], stdout=subprocess.DEVNULL, stderr=err, env=env)
        # wait4: this child's own usage, with the worker processes it waited for
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    if child.returncode != 0:
        raise RuntimeError(f"khabar run failed: {stderr.strip()[-500:]}")
    with open(os.path.join(output, "_SUMMARY.json"), encoding="utf-8") as handle:
        summary = json.load(handle)
    return {
        "summary": summary,
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        # the largest of the run and its workers (ru_maxrss: KiB on Linux)
        "peak_mb": usage.ru_maxrss / 1024,
        **wall_parts(read_profile(profile), launched, wall),
    }


def read_profile(path: str) -> list[dict[str, Any]]:
    """The bundles a run's runner timed (``KHABAR_STAGE_PROFILE``), or [] without it."""
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def wall_parts(bundles: list[dict[str, Any]], launched: float, wall: float) -> dict[str, Any]:
    """Split a run's wall time: before its first bundle (Python, imports, options, the
    graph), its first bundle (which starts the worker processes), the other bundles,
    and the rest (the runner between bundles, and after the last: summary, exit).
    ``stages``: wall seconds by stage label (:func:`stage_label`)."""
    if not bundles:
        return {"parts": {}, "stages": {}}
    first = min(bundles, key=lambda b: b["start"])
    in_bundles = sum(b["seconds"] for b in bundles)
    stages: dict[str, float] = {}
    for b in bundles:
        label = stage_label(b["stage"])
        stages[label] = stages.get(label, 0.0) + b["seconds"]
    before = max(first["start"] - launched, 0.0)
    return {
        "parts": {
            "before the first bundle": before,
            "first bundle": first["seconds"],
            "other bundles": in_bundles - first["seconds"],
            "outside bundles": max(wall - before - in_bundles, 0.0),
        },
        "bundles": len(bundles),
        "stages": stages,
    }


_STEP = re.compile(r"ref_AppliedPTransform_(.+?)_\d+\)|\(([A-Za-z][^()+]*?)/(?:Read|Write)\)")


def stage_label(name: str) -> str:
    """A fused stage's name (``((ref_AppliedPTransform_Read-Split_21)+(...))...``) as its
    first and last steps, each cut to its first three path parts."""
    steps = []
    for m in _STEP.finditer(name):
        step = (m.group(1) or m.group(2)).replace("/", "-")
        short = "/".join(step.split("-")[:3])
        if not steps or steps[-1] != short:
            steps.append(short)
    if not steps:
        return name[:60]
    return steps[0] if len(steps) == 1 else f"{steps[0]} .. {steps[-1]}"


def print_stage_table(runs: dict[int, dict[str, Any]], top: int = 8) -> None:
    """The costliest stages' wall seconds inside bundles, by worker count, with each
    count's ratio to the first; and the ratio of the time beyond one record's run."""
    counts = sorted(runs)
    base = runs[counts[0]]
    labels = sorted(base["stages"], key=lambda k: -base["stages"][k])[:top]
    head = "".join(f"{f'{w} worker(s)':>13}" for w in counts)
    print(f"  stages, wall seconds inside bundles:{head}")
    for label in [*labels, None]:
        cells = []
        for w in counts:
            stages = runs[w]["stages"]
            value = (
                sum(v for k, v in stages.items() if k not in labels)
                if label is None
                else stages.get(label, 0.0)
            )
            cells.append(f"{value:13.2f}")
        name = "all other stages" if label is None else label
        print(f"    {name[:70]:<70}{''.join(cells)}")
    for w in counts[1:]:
        if base.get("beyond"):
            print(
                f"  {w} workers against {counts[0]}: wall {runs[w]['wall'] / base['wall']:.2f}x; "
                f"beyond the one-record run {runs[w]['beyond'] / base['beyond']:.2f}x"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="khabar bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=3000, help="records in the corpus")
    parser.add_argument("--files", type=int, default=8, help="JSONL files to spread them over")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="news-fa folder")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", default="1,2", help="DirectRunner worker counts to time")
    args = parser.parse_args(argv)
    if not (args.data / "farsnews.jsonl").exists():
        print(f"khabar bench: error: {args.data} has no farsnews.jsonl (pass --data)")
        return 2
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    work = Path(tempfile.mkdtemp(prefix="khabar-bench-"))
    try:
        corpus = make_corpus(args.data, work / "in", args.articles, args.files, args.seed)
        files = sorted(str(p) for p in (work / "in").glob("*.jsonl"))
        n = corpus["records"]
        threads = os.environ.get("OPENBLAS_NUM_THREADS", "unset")
        print(
            f"corpus: {corpus} in {len(files)} files ({os.cpu_count()} CPUs, BLAS threads "
            f"{threads})"
        )
        started = time.perf_counter()
        cpu_started = time.process_time()
        loop_counts, step_cpu = plain_loop(files)
        loop_s = time.perf_counter() - started
        loop_cpu = time.process_time() - cpu_started
        loop_rate = n / loop_s
        print(
            f"plain Python loop over the cores: {loop_s:7.2f} s wall, {loop_cpu:7.2f} s CPU, "
            f"{loop_rate:8.1f} articles/s   {loop_counts}"
        )
        print(
            "  CPU per article, by step (ms): "
            + ", ".join(f"{name} {1000 * step_cpu[name] / n:.2f}" for name in STEPS)
            + f"; all {1000 * sum(step_cpu.values()) / n:.2f}"
        )
        one = work / "one" / "part-000.jsonl"
        one.parent.mkdir()
        with open(files[0], encoding="utf-8") as handle:
            one.write_text(handle.readline(), encoding="utf-8")
        runs: dict[int, dict[str, Any]] = {}
        for workers in [int(w) for w in args.workers.split(",") if w]:
            extra = [f"--direct_num_workers={workers}"]
            if workers > 1:
                extra.append("--direct_running_mode=multi_processing")
            fixed = run_pipeline([str(one)], str(work / f"one-{workers}"), extra)
            run = run_pipeline(files, str(work / f"out-{workers}"), extra)
            runs[workers] = run
            summary = run["summary"]
            rate = n / run["wall"]
            c = summary["counts"]
            verdict = "OK" if summary["conservation"]["ok"] else "MISMATCH"
            print(
                f"pipeline, DirectRunner, {workers} worker(s): {run['wall']:7.2f} s wall, "
                f"{run['cpu']:7.2f} s CPU, {rate:8.1f} articles/s, ratio to loop "
                f"{rate / loop_rate:5.2f}, peak {run['peak_mb']:.0f} MB (largest process), "
                f"runner {summary['runner']}  (written {c['articles']}, duplicates "
                f"{c['duplicates']}, dead letters {c['dead_letters']}, conservation {verdict})"
            )
            beyond = run["wall"] - fixed["wall"]
            run["beyond"] = beyond
            print(
                f"  the same on one record: {fixed['wall']:.2f} s wall, {fixed['cpu']:.2f} s "
                f"CPU (what any run costs); beyond it {1000 * beyond / n:.2f} ms wall and "
                f"{1000 * (run['cpu'] - fixed['cpu']) / n:.2f} ms CPU per article"
            )
            if run["parts"]:
                print(
                    f"  wall: {run['bundles']} bundles; "
                    + ", ".join(f"{k} {v:.2f} s" for k, v in run["parts"].items())
                )
        if len(runs) > 1:
            print_stage_table(runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
