"""``khabar bench-scale``: does a batch stay flat as it grows? (issue 23)

Builds synthetic articles from the sentences of the real Persian news in
``../shared/data/news-fa`` (6 to 20 sentences each, drawn at random, so each article is
new text; a few exact repeats so deduplication has work), at each size asked for, as one
JSON Lines file and as many files. Each configuration is one ``khabar run`` child process
(``bench/pipeline.py``: wall, CPU, peak memory of its largest process), with 1 and 2
workers. Prints, per configuration, wall milliseconds per article and peak memory, and
their ratios to the smallest size of the same layout and workers.

Numbers, not a test: nothing here asserts. The defaults (2k, 16k, 64k) take hours on a
2-core machine; ``--sizes 2000,8000`` gives a first look in minutes.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import tempfile
import time
from pathlib import Path

from khabar.pipeline.bench.pipeline import DEFAULT_DATA, run_pipeline

#: Where a Persian or Latin sentence ends.
SENTENCE_END = re.compile(r"(?<=[.!?؟])\s+")
REPEAT_SHARE = 0.03


def sentences(data_dir: Path) -> list[str]:
    """Every sentence of news-fa's bodies (at least 5 words), in file order."""
    found: list[str] = []
    for name in ("farsnews.jsonl", "varzesh3.jsonl"):
        with open(data_dir / name, encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    continue
                body = json.loads(line).get("body") or ""
                for paragraph in body.split("\n"):
                    found += [s for s in SENTENCE_END.split(paragraph) if len(s.split()) >= 5]
    return found


def make_articles(pool: list[str], n: int, seed: int) -> list[str]:
    """``n`` JSON lines: new articles of 6-20 sentences, and a few exact repeats."""
    rng = random.Random(seed)
    lines: list[str] = []
    while len(lines) < n:
        if lines and rng.random() < REPEAT_SHARE:
            lines.append(rng.choice(lines))
            continue
        k = len(lines)
        body = rng.sample(pool, rng.randint(6, 20))
        article = {
            "title": body[0][:120],
            "body": "\n\n".join(body),
            "url": f"https://bench.example/scale/{seed}/{k}",
            "source": "bench-scale",
        }
        lines.append(json.dumps(article, ensure_ascii=False))
    return lines


def write_layout(lines: list[str], folder: Path, files: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    per_file = (len(lines) + files - 1) // files
    paths = []
    for i in range(files):
        chunk = lines[i * per_file : (i + 1) * per_file]
        if chunk:
            path = folder / f"part-{i:04d}.jsonl"
            path.write_text("\n".join(chunk) + "\n", encoding="utf-8")
            paths.append(str(path))
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="khabar bench-scale", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--sizes", default="2000,16000,64000", help="article counts")
    parser.add_argument("--many", type=int, default=16, help="files of the many-files layout")
    parser.add_argument("--layouts", default="one,many", help="one, many, or both")
    parser.add_argument("--workers", default="1,2", help="DirectRunner worker counts")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="news-fa folder")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    if not (args.data / "farsnews.jsonl").exists():
        print(f"khabar bench-scale: error: {args.data} has no farsnews.jsonl (pass --data)")
        return 2
    sizes = sorted(int(s) for s in args.sizes.split(",") if s)
    layouts = [x for x in args.layouts.split(",") if x in ("one", "many")]
    workers = [int(w) for w in args.workers.split(",") if w]
    pool = sentences(args.data)
    print(f"{len(pool)} sentences from {args.data}; sizes {sizes}, layouts {layouts}, "
          f"workers {workers}")
    print(f"{'articles':>9} {'layout':>6} {'workers':>7} {'wall s':>8} {'ms/article':>10} "
          f"{'vs smallest':>11} {'peak MB':>8} {'vs smallest':>11}  conservation")
    work = Path(tempfile.mkdtemp(prefix="khabar-bench-scale-"))
    base: dict[tuple[str, int], tuple[float, float]] = {}
    try:
        for size in sizes:
            lines = make_articles(pool, size, args.seed)
            for layout in layouts:
                folder = work / f"in-{size}-{layout}"
                files = write_layout(lines, folder, 1 if layout == "one" else args.many)
                for w in workers:
                    extra = [f"--direct_num_workers={w}"]
                    if w > 1:
                        extra.append("--direct_running_mode=multi_processing")
                    out = work / f"out-{size}-{layout}-{w}"
                    started = time.perf_counter()
                    run = run_pipeline(files, str(out), extra)
                    wall = time.perf_counter() - started
                    per_article = 1000 * wall / size
                    peak = run["peak_mb"]
                    first = base.setdefault((layout, w), (per_article, peak))
                    c = run["summary"]["conservation"]
                    print(
                        f"{size:>9} {layout:>6} {w:>7} {wall:>8.1f} {per_article:>10.2f} "
                        f"{per_article / first[0]:>10.2f}x {peak:>8.0f} "
                        f"{peak / first[1]:>10.2f}x  {'OK' if c['ok'] else c}",
                        flush=True,
                    )
                    shutil.rmtree(out, ignore_errors=True)
                shutil.rmtree(folder, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
