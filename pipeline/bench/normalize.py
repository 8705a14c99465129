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
- **oracle ceiling** (khabar only): a context-free restorer that decides every candidate
  site by its type alone and knows the answer counts of the very text it is scored on
  (cheating on purpose), so no normalizer that decides by the word pair alone can do
  better on that text. Counted on khabar's reference, over the fields the round trip
  scores (those whose reference has a ZWNJ); the ZWNJs are the round trip's, so its
  recall reads against khabar's. *Spaced*: a site is every gap of spaces or ZWNJs
  between two letters, its type the pair of letter runs either side, lowercased
  (``به عنوان``); *glued*: every place between two letters of a word written without
  its ZWNJs, its type the glued word and the place (``می|شود``). The majority rule
  restores a type iff the text writes it with ZWNJ at least as often as apart; the
  threshold rule restores the types whose ZWNJ share is at least t, t chosen for the
  highest recall at precision >= .99. Then khabar's misses (round trip from the
  original) split into *fixable* (the majority rule restores their type) and
  *unfixable without false joins*, the top 20 fixable spaced types, and, on the
  held-out split, khabar's spaced misses grouped by the counts of the same pair in the
  training three quarters (normalized by khabar the same way): a pair rule built from
  the counts can only learn what those counts see. A caveat the ceiling makes
  visible: the reference is the normalizer's own output, so a normalizer that joined
  a pair everywhere (``به‌عنوان``) would put that ZWNJ into its reference too and this
  round trip would not count one of those joins as wrong; the unit tests, not this
  bench, hold false joins against it.
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
    #: the oracle ceilings on this normalizer's reference, and the types of its misses
    #: (glued and spaced round trips from the original)
    ceiling: dict[str, Ceiling] = field(
        default_factory=lambda: {"glued": Ceiling(), "spaced": Ceiling()}
    )
    missed: dict[str, Counter] = field(
        default_factory=lambda: {"glued": Counter(), "spaced": Counter()}
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


# ---------------------------------------------------------------- oracle ceiling
#
# A context-free restorer that decides each candidate site by its word pair alone and
# knows the answer counts of the very text it is scored on (cheating on purpose): the
# best any normalizer that decides by the word pair alone can do on this text.

_LETTER_RUN = re.compile(r"[^\W\d_]+")
_GAP = re.compile(r"[\s\u200c]+")
#: the key of a ZWNJ that is not between two letters (the oracle never restores it)
NO_PAIR = ("", "")


def _letter_index(text: str) -> list[int]:
    """For each character of ``text``, its index among the letters of
    :func:`zwnj_positions` (characters other than spaces and ZWNJs)."""
    out: list[int] = []
    n = 0
    for char in text:
        out.append(n)
        if char != ZWNJ and not char.isspace():
            n += 1
    out.append(n)
    return out


def spaced_sites(text: str) -> dict[int, tuple[tuple[str, str], bool]]:
    """Where spaced input may get a ZWNJ: every gap of spaces and ZWNJs between two
    letters, by the index (as :func:`zwnj_positions`) of the letter after it, with its
    word pair (the letter runs either side, lowercased) and whether ``text`` has a ZWNJ
    there (counted as :func:`zwnj_positions` counts it)."""
    index = _letter_index(text)
    ends = {m.end(): m.group().lower() for m in _LETTER_RUN.finditer(text)}
    starts = {m.start(): m.group().lower() for m in _LETTER_RUN.finditer(text)}
    sites: dict[int, tuple[tuple[str, str], bool]] = {}
    for gap in _GAP.finditer(text):
        left, right = gap.start(), gap.end()
        zwnj = text[right - 1] == ZWNJ and right < len(text)
        if left in ends and right in starts:
            sites[index[right]] = ((ends[left], starts[right]), zwnj)
        elif zwnj:
            sites[index[right]] = (NO_PAIR, True)
    return sites


def glued_sites(text: str) -> tuple[Counter, dict[int, tuple[str, int]]]:
    """Glued input: every word written without its ZWNJs (letters joined by ZWNJ, the
    ZWNJs deleted, lowercased) counted once per occurrence, and each ZWNJ of ``text`` by
    letter index (as :func:`zwnj_positions`) -> (that glued word, letters before the
    ZWNJ in it); a ZWNJ not inside such a word maps to ("", 0)."""
    index = _letter_index(text)
    words: Counter[str] = Counter()
    zwnjs: dict[int, tuple[str, int]] = {}
    _, positions = zwnj_positions(text)
    for m in re.finditer(r"[^\W\d_]+(?:\u200c+[^\W\d_]+)*", text):
        word = m.group()
        glued = word.replace(ZWNJ, "").lower()
        words[glued] += 1
        letters = 0
        for offset, char in enumerate(word):
            if char == ZWNJ:
                if word[offset + 1] != ZWNJ:
                    zwnjs[index[m.start() + offset + 1]] = (glued, letters)
            else:
                letters += 1
    for position in positions - zwnjs.keys():
        zwnjs[position] = ("", 0)
    return words, zwnjs


@dataclass
class Ceiling:
    """Per candidate type, how often the scored text writes it with a ZWNJ and apart
    (spaced: a word pair; glued: a glued word and the place inside it)."""

    zwnj: Counter = field(default_factory=Counter)
    apart: Counter = field(default_factory=Counter)

    @property
    def positives(self) -> int:
        return sum(self.zwnj.values())

    def chosen(self, threshold: float) -> list:
        """The types written with ZWNJ in at least ``threshold`` of their occurrences
        (0.5: the majority rule, ties joined)."""
        return [
            t for t, z in self.zwnj.items()
            if t != NO_PAIR and t[0] and z >= threshold * (z + self.apart[t])
        ]

    def counts(self, threshold: float = 0.5) -> tuple[int, int, int]:
        """(tp, fp, fn) of the rule "ZWNJ iff the type's ZWNJ share >= threshold"."""
        chosen = self.chosen(threshold)
        tp = sum(self.zwnj[t] for t in chosen)
        fp = sum(self.apart[t] for t in chosen)
        return tp, fp, self.positives - tp

    def best_at_precision(self, floor: float = 0.99) -> tuple[float, int, int, int]:
        """The share threshold with the highest recall at precision >= ``floor`` (types
        taken in order of falling ZWNJ share, ties together): (threshold, tp, fp, fn)."""
        shares: dict[float, list[int]] = {}
        for t, z in self.zwnj.items():
            if t == NO_PAIR or not t[0]:
                continue
            share = z / (z + self.apart[t])
            tp_fp = shares.setdefault(share, [0, 0])
            tp_fp[0] += z
            tp_fp[1] += self.apart[t]
        best = (1.0, 0, 0, self.positives)
        tp = fp = 0
        for share in sorted(shares, reverse=True):
            tp += shares[share][0]
            fp += shares[share][1]
            if tp / (tp + fp) >= floor and tp > best[1]:
                best = (share, tp, fp, self.positives - tp)
        return best

    def minority(self) -> list:
        """The types written with ZWNJ, but apart more often."""
        return [t for t, z in self.zwnj.items() if t[0] and 0 < z < self.apart[t]]

    def fixable(self, key: tuple) -> bool:
        """Whether the majority rule restores this type (ZWNJ at least as often)."""
        return key != NO_PAIR and bool(key[0]) and self.zwnj[key] >= self.apart[key]

    def add_spaced(self, sites: dict[int, tuple[tuple[str, str], bool]]) -> None:
        for key, zwnj in sites.values():
            (self.zwnj if zwnj else self.apart)[key] += 1

    def add_glued(self, zwnjs: dict[int, tuple[str, int]]) -> None:
        for key in zwnjs.values():
            self.zwnj[key] += 1

    def finish_glued(self, words: Counter) -> None:
        """Glued types are (word, place): written apart = the glued word's occurrences
        without a ZWNJ at that place (only places with a ZWNJ somewhere can be chosen)."""
        self.apart = Counter(
            {key: max(words[key[0]] - z, 0) for key, z in self.zwnj.items()}
        )


def compare_zwnj(reference: str, output: str, counts: Counter) -> set[int]:
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
    return ref_pos - out_pos


def spaced_counts(normalize: Callable[[str], str], articles: Sequence[dict]) -> Ceiling:
    """Spaced-site counts per word pair on ``normalize``'s output, over the fields that
    keep a ZWNJ (the fields the round trip scores)."""
    ceiling = Ceiling()
    for article in articles:
        for f in FIELDS:
            if article.get(f):
                ref = normalize(article[f])
                if ZWNJ in ref:
                    ceiling.add_spaced(spaced_sites(ref))
    return ceiling


def training_support(missed: Counter, here: Ceiling, train: Ceiling) -> dict[str, Counter]:
    """Misses (type -> count) grouped by whether ``here`` (the scored text) writes the
    type with ZWNJ at least as often as apart, then by what ``train`` says of it."""
    out: dict[str, Counter] = {"fixable": Counter(), "unfixable": Counter()}
    for key, n in missed.items():
        z, a = train.zwnj.get(key, 0), train.apart.get(key, 0)
        if z + a == 0:
            seen = "never seen"
        elif z == 0:
            seen = "only apart"
        elif z < a:
            seen = "apart more often"
        else:
            seen = "ZWNJ at least as often"
        out["fixable" if here.fixable(key) else "unfixable"][seen] += n
    return out


def score(name: str, normalize: Callable[[str], str], articles: Sequence[dict]) -> Scores:
    result = Scores(name)
    refs = [[(article[f], normalize(article[f])) for f in FIELDS if article.get(f)]
            for article in articles]
    result.articles = len(articles)
    glued_words: Counter[str] = Counter()
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
            spaced = spaced_sites(ref)
            words, glued = glued_sites(ref)
            result.ceiling["spaced"].add_spaced(spaced)
            result.ceiling["glued"].add_glued(glued)
            glued_words.update(words)
            for kind, (start, replacement) in ROUND_TRIPS.items():
                source = original if start == "original" else ref
                if ZWNJ in source:
                    output = normalize(source.replace(ZWNJ, replacement))
                else:
                    output = ref  # nothing removed: the input is the original itself
                missed = compare_zwnj(ref, output, result.zwnj[kind])
                if kind == "spaced":
                    result.missed[kind].update(spaced.get(i, (NO_PAIR,))[0] for i in missed)
                elif kind == "glued":
                    result.missed[kind].update(glued.get(i, ("", 0)) for i in missed)
    result.ceiling["glued"].finish_glued(glued_words)
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


def speed_ratios(results: Sequence[Scores], against: str = "hazm (default)") -> str:
    """Each normalizer's time per article as a share of hazm's, in this run (the figure
    to compare across runs on a shared machine)."""
    base = next((r for r in results if r.name == against), None)
    if base is None or not base.seconds:
        return f"(no {against} in this run: no time ratios)"
    return "\n".join(
        f"{r.name}: {1000 * r.seconds / max(r.articles, 1):.3f} ms/article, "
        f"{r.seconds / base.seconds:.2f}x {against}'s time"
        for r in results if r is not base
    )


def _pr(tp: int, fp: int, fn: int) -> str:
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return f"recall {recall:.4f} ({tp:,}/{tp + fn:,}), precision {precision:.4f} ({fp:,} wrong)"


def _type_name(kind: str, key: tuple) -> str:
    if kind == "spaced":
        return f"{key[0]} {key[1]}"
    word, place = key
    return word[:place] + ZWNJ + word[place:]


def support_report(result: Scores, train: Ceiling) -> str:
    missed, here = result.missed["spaced"], result.ceiling["spaced"]
    groups = training_support(missed, here, train)
    order = ("never seen", "only apart", "apart more often", "ZWNJ at least as often")
    lines = [
        f"{result.name}'s spaced misses by the same pair's counts in the training three "
        f"quarters ({train.positives:,} ZWNJs; {result.name}'s output):"
    ]
    for group, counts in groups.items():
        cells = ", ".join(f"{label} {counts[label]:,}" for label in order)
        lines.append(f"  {group} ({sum(counts.values()):,}): {cells}")
    c = result.zwnj["spaced"]
    gain = groups["fixable"]["ZWNJ at least as often"]
    lines.append(
        f"  all {gain:,} fixable misses the training counts support, added: recall "
        f"{(c['tp'] + gain) / (c['tp'] + c['fn']):.4f} ({c['tp'] + gain:,}/{c['tp'] + c['fn']:,})"
    )
    return "\n".join(lines)


def ceiling_report(result: Scores, top: int = 20, floor: float = 0.99) -> str:
    """The oracle ceilings on ``result``'s reference, and its misses split by whether
    the ceiling's majority rule restores their type (see the module docstring)."""
    lines = [
        f"oracle ceiling on {result.name}'s reference (decides by the word pair alone, "
        "knowing this text's own counts: ZWNJ iff the pair is written with ZWNJ at least "
        "as often as apart):"
    ]
    for kind in ("glued", "spaced"):
        ceiling = result.ceiling[kind]
        share, tp, fp, fn = ceiling.best_at_precision(floor)
        c = result.zwnj[kind]
        lines.append(f"  {kind:<7}{result.name} itself: {_pr(c['tp'], c['fp'], c['fn'])}")
        lines.append(f"  {kind:<7}majority:   {_pr(*ceiling.counts())}")
        lines.append(
            f"  {kind:<7}best at precision >= {floor}: ZWNJ share >= {share:.3f}: "
            f"{_pr(tp, fp, fn)}"
        )
        minority = ceiling.minority()
        lines.append(
            f"  {kind:<7}types written with ZWNJ here but apart more often: {len(minority):,} "
            f"({sum(ceiling.zwnj[t] for t in minority):,} with ZWNJ, "
            f"{sum(ceiling.apart[t] for t in minority):,} apart; a normalizer joining them "
            "always would write the apart ones into its own reference too, unseen here)"
        )
    for kind in ("glued", "spaced"):
        ceiling, missed = result.ceiling[kind], result.missed[kind]
        fixable = Counter({k: n for k, n in missed.items() if ceiling.fixable(k)})
        lines.append(
            f"{result.name}'s {kind} misses: {sum(missed.values()):,}; fixable (ZWNJ the "
            f"majority for the type here) {sum(fixable.values()):,} in {len(fixable):,} "
            f"types; unfixable without false joins (apart the majority) "
            f"{sum(missed.values()) - sum(fixable.values()):,}"
        )
        if kind == "spaced" and top:
            lines.append(f"  top {top} fixable spaced types: missed (here ZWNJ / apart)")
            for key, n in fixable.most_common(top):
                lines.append(
                    f"    {_type_name(kind, key)}  {n}  ({ceiling.zwnj[key]} / "
                    f"{ceiling.apart[key]})"
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
    print(speed_ratios(results))
    for result, (_, normalize) in zip(results, chosen, strict=True):
        if result.name == "khabar":
            print()
            print(ceiling_report(result))
            if args.split == "held-out":
                train = [a for a in read_news(args.data) if not held_out(a)]
                print(support_report(result, spaced_counts(normalize, train)))
    return 0
