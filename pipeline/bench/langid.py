"""Benchmark khabar's language detector against lingua, CLD2 and langdetect.

``python -m khabar.pipeline.bench.langid [--quick] [--languages fa,ar,...] [--samples N]``

Prints, per language and averaged, the accuracy (%) on sentences / word pairs / single words
of the lingua test set, the Pashto set, Persian news titles and whole articles, the speed on
sentences of every detector, and the peak memory of a process holding only khabar's
detector. lingua, pycld2 and langdetect are optional: a missing one is reported and skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from khabar.transforms.language import LanguageDetector

Detect = Callable[[str], str | None]

CATEGORIES = ("sentences", "word-pairs", "single-words")
SHORT = {"sentences": "sent", "word-pairs": "pairs", "single-words": "words"}
FOCUS = ("fa", "ar", "ur", "en")
QUICK_LANGUAGES = ("fa", "ar", "ur", "en", "de", "ru", "hi", "tr")
CKB_TEST = Path(__file__).resolve().parents[2] / "transforms" / "langid_data" / "ckb_test.txt"
DEFAULT_DATA = Path(os.environ.get("KHABAR_SHARED_DATA", "/work/shared/data"))
#: Code spellings of other detectors mapped to khabar's.
ALIASES = {"iw": "he", "zh-hant": "zh", "zh-cn": "zh", "zh-tw": "zh", "no": "nb", "jw": "jv"}


def _norm(code: str | None) -> str | None:
    if not code or code in ("un", "und", "xx-Qaai"):
        return None
    code = code.lower()
    return ALIASES.get(code, code)


def make_khabar() -> tuple[Detect, Callable[[str, str, str], str | None]]:
    detector = LanguageDetector()
    detector.detect_text("warm up the compiled kernels")  # not timed: compiles or loads them

    def detect(text: str) -> str | None:
        return _norm(detector.detect_text(text).language)

    def article(title: str, lead: str, body: str) -> str | None:
        return _norm(detector.detect_article(title, lead, body).language)

    return detect, article


def make_lingua() -> Detect:
    from lingua import LanguageDetectorBuilder

    detector = LanguageDetectorBuilder.from_all_languages().with_preloaded_language_models().build()

    def detect(text: str) -> str | None:
        lang = detector.detect_language_of(text)
        return None if lang is None else lang.iso_code_639_1.name.lower()

    return detect


def make_cld2() -> Detect:
    import pycld2

    def detect(text: str) -> str | None:
        try:
            _, _, details = pycld2.detect(text)
        except pycld2.error:
            return None
        return _norm(details[0][1])

    return detect


def make_langdetect() -> Detect:
    from langdetect import DetectorFactory
    from langdetect import detect as ld_detect
    from langdetect.lang_detect_exception import LangDetectException

    DetectorFactory.seed = 0

    def detect(text: str) -> str | None:
        try:
            return _norm(ld_detect(text))
        except LangDetectException:
            return None

    return detect


OTHERS: dict[str, tuple[str, Callable[[], Detect]]] = {
    "lingua": ("lingua (lingua-language-detector, high accuracy)", make_lingua),
    "cld2": ("pycld2", make_cld2),
    "langdetect": ("langdetect", make_langdetect),
}


#: Which lines of a test file to use: the word model's few numbers were tuned on the
#: odd-numbered (0-based) lines, so "test" (the even-numbered ones) is held-out data.
SPLITS = {"all": None, "dev": 1, "test": 0}


def read_lines(path: Path, limit: int, split: str = "all") -> list[str]:
    """Up to ``limit`` non-empty lines of ``split``, evenly spaced over the file."""
    with path.open(encoding="utf-8") as fh:
        lines = [line.strip() for line in fh if line.strip()]
    parity = SPLITS[split]
    if parity is not None:
        lines = lines[parity::2]
    if len(lines) <= limit:
        return lines
    step = len(lines) / limit
    return [lines[int(i * step)] for i in range(limit)]


def read_news(news_dir: Path, limit: int) -> list[dict[str, str]]:
    articles: list[dict[str, str]] = []
    for path in sorted(news_dir.glob("*.jsonl")):
        with path.open(encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
        articles.extend(rows[:limit])
    return articles


def accuracy(detect: Detect, lines: list[str], expected: str) -> tuple[float, float]:
    """(accuracy %, seconds)."""
    start = time.perf_counter()
    hits = sum(1 for line in lines if detect(line) == expected)
    elapsed = time.perf_counter() - start
    return (100.0 * hits / len(lines) if lines else 0.0), elapsed


def memory_probe() -> int:
    """Child process: load khabar's detector, run it, print peak RSS in MiB."""
    detector = LanguageDetector()
    for text in ("سلام دنیا، این یک آزمایش است", "Hello world, this is a test", "") * 100:
        detector.detect_text(text)
    print(peak_rss_mib())
    return 0


def peak_rss_mib() -> float:
    """This process's peak resident memory, MiB. ``VmHWM`` where /proc has it: Linux carries
    ``ru_maxrss`` over ``exec``, so a probe started from this (large) benchmark process would
    report the benchmark's own peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data folder")
    parser.add_argument("--languages", help="comma-separated ISO codes (default: all 75)")
    parser.add_argument("--samples", type=int, default=1000, help="lines per file")
    parser.add_argument("--quick", action="store_true", help="8 languages, 200 samples")
    parser.add_argument(
        "--detectors", default="khabar,lingua,cld2,langdetect", help="comma-separated"
    )
    parser.add_argument(
        "--split",
        choices=sorted(SPLITS),
        default="all",
        help="lines of each test file: all, dev (odd-numbered, used to tune the word model) or "
        "test (even-numbered, held out)",
    )
    parser.add_argument("--memory-probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_probe:
        return memory_probe()

    lingua_dir = args.data / "langid-lingua"
    if args.quick:
        languages = list(QUICK_LANGUAGES)
        samples = min(args.samples, 200)
    else:
        samples = args.samples
        languages = sorted(p.stem for p in (lingua_dir / "sentences").glob("*.txt"))
    if args.languages:
        languages = [code.strip() for code in args.languages.split(",") if code.strip()]
    if not languages:
        print(f"no test data in {lingua_dir}", file=sys.stderr)
        return 2

    wanted = [name.strip() for name in args.detectors.split(",") if name.strip()]
    detectors: dict[str, Detect] = {}
    khabar_article: Callable[[str, str, str], str | None] | None = None
    for name in wanted:
        if name == "khabar":
            detectors["khabar"], khabar_article = make_khabar()
            continue
        if name not in OTHERS:
            print(f"unknown detector {name!r}", file=sys.stderr)
            return 2
        label, factory = OTHERS[name]
        try:
            detectors[name] = factory()
        except ImportError as exc:
            print(f"SKIPPED {name}: {label} is not installed ({exc})")
    names = list(detectors)

    # accuracy[name][category][lang] = %
    acc: dict[str, dict[str, dict[str, float]]] = {n: {c: {} for c in CATEGORIES} for n in names}
    sent_time: dict[str, float] = dict.fromkeys(names, 0.0)
    sent_count = 0
    for lang in languages:
        for cat in CATEGORIES:
            path = lingua_dir / cat / f"{lang}.txt"
            if not path.exists():
                continue
            lines = read_lines(path, samples, args.split)
            if cat == "sentences":
                sent_count += len(lines)
            for name in names:
                value, seconds = accuracy(detectors[name], lines, lang)
                acc[name][cat][lang] = value
                if cat == "sentences":
                    sent_time[name] += seconds

    header = f"{'lang':<6}" + "".join(f"{n:>22}" for n in names)
    print(
        f"Accuracy % (sentences / word pairs / single words), at most {samples} samples per file"
        f" (evenly spaced; lines: {args.split})"
    )
    print(header)

    def triple(name: str, lang: str) -> str:
        vals = [acc[name][c].get(lang) for c in CATEGORIES]
        return " / ".join("  - " if v is None else f"{v:5.1f}" for v in vals)

    ordered = [lg for lg in FOCUS if lg in languages] + [lg for lg in languages if lg not in FOCUS]
    for lang in ordered:
        print(f"{lang:<6}" + "".join(f"{triple(n, lang):>22}" for n in names))
    print("-" * len(header))
    means = []
    for name in names:
        parts = []
        for cat in CATEGORIES:
            vals = list(acc[name][cat].values())
            parts.append(sum(vals) / len(vals) if vals else 0.0)
        means.append(" / ".join(f"{v:5.2f}" for v in parts))
    print(f"{'mean':<6}" + "".join(f"{m:>22}" for m in means))
    print(f"(mean over {len(languages)} languages; a language a detector lacks counts as 0)")

    print("\nSpeed on sentences (sentences per second, one thread)")
    rates = {n: sent_count / sent_time[n] if sent_time[n] else 0.0 for n in names}
    for name in names:
        ratio = ""
        if name == "khabar" and rates.get("lingua"):
            ratio = f"   ({rates[name] / rates['lingua']:.1f}x lingua)"
        print(f"  {name:<12}{rates[name]:10.0f}{ratio}")

    pashto_dir = args.data / "langid-pashto"
    if pashto_dir.exists():
        print("\nPashto (ps): sentences / word pairs / single words / UD Sikaram sentences")
        ud_path = pashto_dir / "ud_sikaram_ps.tsv"
        ud = [line.split("\t", 1)[1] for line in read_lines(ud_path, 10_000)[1:] if "\t" in line]
        for name in names:
            vals = []
            for cat in CATEGORIES:
                path = pashto_dir / cat / "ps.txt"
                lines = read_lines(path, samples, args.split)
                vals.append(accuracy(detectors[name], lines, "ps")[0])
            vals.append(accuracy(detectors[name], ud, "ps")[0])
            print(f"  {name:<12}" + " / ".join(f"{v:5.1f}" for v in vals))

    ckb_path = CKB_TEST
    if ckb_path.exists():
        ckb = read_lines(ckb_path, 100_000)
        print(f"\nSorani Kurdish (ckb, {len(ckb)} lines of langid_data/ckb_test.txt): % ckb")
        for name in names:
            print(f"  {name:<12}{accuracy(detectors[name], ckb, 'ckb')[0]:6.1f}")

    news_dir = args.data / "news-fa"
    if news_dir.exists():
        articles = read_news(news_dir, samples if args.quick else 100_000)
        print(f"\nPersian news ({len(articles)} articles): % fa on titles alone / whole articles")
        for name in names:
            det = detectors[name]
            titles = 100.0 * sum(det(a["title"]) == "fa" for a in articles) / len(articles)
            if name == "khabar" and khabar_article is not None:
                whole = sum(
                    khabar_article(a["title"], a.get("lead", ""), a["body"]) == "fa"
                    for a in articles
                )
            else:
                whole = sum(
                    det("\n".join([a["title"], a.get("lead", ""), a["body"]])) == "fa"
                    for a in articles
                )
            print(f"  {name:<12}{titles:6.2f} / {100.0 * whole / len(articles):6.2f}")

    if "khabar" in names:
        probe = subprocess.run(
            [sys.executable, "-m", "khabar.pipeline.bench.langid", "--memory-probe"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0:
            print(
                f"\nPeak memory, process with khabar's detector loaded: "
                f"{float(probe.stdout.strip().splitlines()[-1]):.0f} MiB (VmHWM)"
            )
        else:
            print(f"\nmemory probe failed: {probe.stderr.strip()[-500:]}")
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"Peak memory of this benchmark process (all detectors): {usage:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
