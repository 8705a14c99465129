"""``khabar bench-normalize``: Persian normalizers side by side on news-fa, in one run.

For khabar's normalizer, hazm's default ``Normalizer`` (what khabar used before) and,
when installed, shekar's and parsivar's (``pip install shekar parsivar``), on the same
articles (title, lead and body of each, one call per field), it prints:

- **numbers whole**: digit–separator–digit sequences of the input (``۴۲.۵``,
  ``1,250,000``, ``1403/12/29``, ``12:30``, ``2-0``; separators ``. , ٫ ٬ / : -``) found
  unbroken in the output, n/N. Digits are compared by value (``۴۲٫۵`` and ``42.5`` are the
  same sequence: Persian, Arabic-Indic and Latin digits, and ``٫``/``٬``, are mapped to
  Latin ones first); ``۴۲ ٫ ۵`` is broken.
- **addresses**: URLs (``http(s)://…``, ``www.…``) and e-mail addresses of the input
  found byte for byte in the output, n/N.
- **ZWNJ round trip**, precision and recall, for glued and spaced input, two ways. For
  each normalizer N and each field x the reference is ``ref = N(x)``:

  - *from the original* (the issue's definition): the *glued* input is x with every
    ZWNJ deleted (``می‌شود`` -> ``میشود``), the *spaced* input is x with every ZWNJ
    replaced by a space (``می شود``); so it tests the ZWNJs the writer typed, and the
    ZWNJs N adds anyway (to ``مي شود`` written apart, say) count too;
  - *from the reference* (stricter): the same, starting from ``ref`` instead of x, so
    every ZWNJ N writes must be recovered from text that has none.

  The input is normalized with N and its ZWNJs compared with ref's. Positions are taken
  on the text with all spaces and ZWNJs removed (aligned with difflib where the letters
  differ), so a ZWNJ counts as right only in the same place between the same letters.
  Each normalizer is measured against its own reference: the question is whether it
  restores what it would itself write on the intact text, so a library's own wrong
  joins in ``N(x)`` are not held against it here (the unit tests check joins against
  hand-written truth). Writers' own choices bound the recall: a ZWNJ typed inside a
  phrase (``تیم‌ملی``) or a function-word compound (``به‌عنوان``) is not restored from
  ``تیم ملی`` by khabar, by design.
- **ms per article**: wall time of N on the original fields, per article, on one core,
  after a first pass that warms every cache; the normalizers take turns for ``--rounds``
  rounds (3) and each one's fastest round counts, so a round slowed by another job on a
  shared machine is not held against it. Measured in the same run: the ratio to hazm is
  what to read.

By default the run uses the held-out quarter of news-fa (``--split held-out``): the
articles whose URL hash the ZWNJ lexicon's counts never saw
(:func:`khabar.pipeline.train.zwnj_lexicon.held_out`). ``--split train`` shows the part the
counts came from (and where the rules were tuned); ``--split all`` both.
"""

from __future__ import annotations

import argparse
import difflib
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hazm import Normalizer as HazmNormalizer

from khabar.pipeline.errors import CliError
from khabar.pipeline.train.zwnj_lexicon import DEFAULT_DATA, held_out, read_news
from khabar.transforms.normalize import Normalizer

ZWNJ = "\u200c"
FIELDS = ("title", "lead", "body")
_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩٫٬", "01234567890123456789.,")
DIGIT_SEQUENCE = re.compile(r"[0-9]+(?:[.,/:\-][0-9]+)+")
URL = re.compile(r"(?:https?://|www\.)[^\s«»\"<>\u200c]+", re.I)
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_TRAILING = ".,;:!?)]}'\"،؛؟…"
#: (name, start from the original or the reference, what replaces a ZWNJ)
ROUND_TRIPS = {
    "glued": ("original", ""),
    "spaced": ("original", " "),
    "glued (ref)": ("reference", ""),
    "spaced (ref)": ("reference", " "),
}


@dataclass
class Scores:
    name: str
    numbers_kept: int = 0
    numbers: int = 0
    addresses_kept: int = 0
    addresses: int = 0
    seconds: float = 0.0
    articles: int = 0
    zwnj: dict[str, Counter] = field(
        default_factory=lambda: {k: Counter() for k in ROUND_TRIPS}
    )

    def pr(self, kind: str) -> tuple[float, float]:
        c = self.zwnj[kind]
        precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 1.0
        recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 1.0
        return precision, recall


def digit_sequences(text: str) -> Counter:
    return Counter(DIGIT_SEQUENCE.findall(text.translate(_DIGITS)))


def addresses(text: str) -> list[str]:
    found = [m.group().rstrip(_TRAILING) for m in URL.finditer(text)]
    return found + EMAIL.findall(text)


def zwnj_positions(text: str) -> tuple[str, set[int]]:
    """Letters without spaces and ZWNJs, and the letter indices that a ZWNJ precedes."""
    letters: list[str] = []
    positions: set[int] = set()
    pending = False
    for char in text:
        if char == ZWNJ:
            pending = True
        elif char.isspace():
            pending = False
        else:
            if pending:
                positions.add(len(letters))
            pending = False
            letters.append(char)
    return "".join(letters), positions


def compare_zwnj(reference: str, output: str, counts: Counter) -> None:
    ref_letters, ref_pos = zwnj_positions(reference)
    out_letters, out_pos = zwnj_positions(output)
    if ref_letters != out_letters:
        matcher = difflib.SequenceMatcher(None, ref_letters, out_letters, autojunk=False)
        mapped: set[int] = set()
        for a, b, size in matcher.get_matching_blocks():
            mapped |= {a + k for k in range(size) if b + k in out_pos}
        out_pos = mapped
    counts["tp"] += len(ref_pos & out_pos)
    counts["fp"] += len(out_pos - ref_pos)
    counts["fn"] += len(ref_pos - out_pos)


def score(name: str, normalize: Callable[[str], str], articles: Sequence[dict]) -> Scores:
    result = Scores(name)
    refs = [[(article[f], normalize(article[f])) for f in FIELDS if article.get(f)]
            for article in articles]
    result.articles = len(articles)
    for pairs in refs:
        for original, ref in pairs:
            wanted = digit_sequences(original)
            got = digit_sequences(ref)
            result.numbers += sum(wanted.values())
            result.numbers_kept += sum(min(n, got[s]) for s, n in wanted.items())
            for address in addresses(original):
                result.addresses += 1
                result.addresses_kept += address in ref
            if ZWNJ not in ref:
                continue
            for kind, (start, replacement) in ROUND_TRIPS.items():
                source = original if start == "original" else ref
                if ZWNJ in source:
                    output = normalize(source.replace(ZWNJ, replacement))
                else:
                    output = ref  # nothing removed: the input is the original itself
                compare_zwnj(ref, output, result.zwnj[kind])
    return result


def normalizers(only: Sequence[str] | None) -> list[tuple[str, Callable[[str], str]]]:
    out: list[tuple[str, Callable[[str], str]]] = []

    khabar = Normalizer()
    out.append(("khabar", lambda text: khabar.normalize(text, "fa")))

    out.append(("hazm (default)", HazmNormalizer().normalize))
    try:
        from shekar import Normalizer as ShekarNormalizer

        out.append(("shekar", ShekarNormalizer()))
    except ImportError:
        print("shekar not installed (pip install shekar): left out")
    try:
        from parsivar import Normalizer as ParsivarNormalizer

        out.append(("parsivar", ParsivarNormalizer().normalize))
    except ImportError:
        print("parsivar not installed (pip install parsivar): left out")
    if only:
        out = [(n, f) for n, f in out if n.split()[0] in only]
    return out


def table(results: Sequence[Scores]) -> str:
    head = (
        f"{'normalizer':<16}{'numbers whole':>18}{'addresses':>11}"
        f"{'glued P/R':>13}{'spaced P/R':>13}{'ref glued P/R':>15}{'ref spaced P/R':>16}"
        f"{'ms/article':>12}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        pct = 100 * r.numbers_kept / r.numbers if r.numbers else 100.0
        cells = ["{:.3f}/{:.3f}".format(*r.pr(kind)) for kind in ROUND_TRIPS]
        lines.append(
            f"{r.name:<16}{f'{r.numbers_kept}/{r.numbers} ({pct:.1f}%)':>18}"
            f"{f'{r.addresses_kept}/{r.addresses}':>11}"
            f"{cells[0]:>13}{cells[1]:>13}{cells[2]:>15}{cells[3]:>16}"
            f"{1000 * r.seconds / max(r.articles, 1):>12.2f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="khabar bench-normalize",
        description="Persian normalizers side by side on news-fa (see the module docstring).",
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--split", choices=("held-out", "train", "all"), default="held-out")
    parser.add_argument("--articles", type=int, default=0, help="at most N articles (0: all)")
    parser.add_argument("--only", nargs="*", help="khabar, hazm, shekar, parsivar")
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds (fastest counts)")
    args = parser.parse_args(argv)
    if not (args.data / "farsnews.jsonl").exists():

        raise CliError(f"no news-fa in {args.data} (--data DIR)")
    articles = [
        a for a in read_news(args.data)
        if args.split == "all" or held_out(a) == (args.split == "held-out")
    ]
    if args.articles:
        articles = articles[: args.articles]
    print(f"news-fa {args.split}: {len(articles):,} articles (title, lead, body each)")
    chosen = normalizers(args.only)
    results = []
    for name, normalize in chosen:
        results.append(score(name, normalize, articles))  # also warms every cache
    # timing: the normalizers take turns, --rounds times; the fastest round of each counts
    # (the machine is shared: a round slowed by another job is not the normalizer's cost)
    texts = [article[f] for article in articles for f in FIELDS if article.get(f)]
    for _ in range(args.rounds):
        for result, (_, normalize) in zip(results, chosen, strict=True):
            start = time.perf_counter()
            for text in texts:
                normalize(text)
            elapsed = time.perf_counter() - start
            result.seconds = min(result.seconds or elapsed, elapsed)
    print(table(results))
    return 0
