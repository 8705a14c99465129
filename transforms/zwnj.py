"""ZWNJ restoration (U+200C, نیم‌فاصله), Beam-free.

Persian web text very often arrives with the ZWNJ dropped (glued: ``میشود``,
``گفتوگو``) or replaced by a space (``می شود``, ``کتاب ها``). :class:`ZwnjRestorer`
puts it back, from a lexicon and a few rules, and joins two words only where the lexicon
or a rule is sure.

Glued words (no ZWNJ inside):

- a word the lexicon knows whole is never split (``پیشنهاد``, ``بیشتر``, ``تنها``);
- a glued spelling of a lexicon word with ZWNJ is restored (``گفتوگو`` ->
  ``گفت‌وگو``, ``میشود`` -> ``می‌شود``, ``نمیتواند`` -> ``نمی‌تواند``);
- inflection by rule, not by listing, on a stem of three letters or more that the lexicon
  knows: plurals ``ها/های/هایی/…`` (``پرونده‌های``), ``ای/ام/اند/ایم/اید/ات/اش/ی`` after a
  final ``ه`` (``شده‌اند``, ``رسانه‌ای``), ``تر/ترین`` after an adjective
  (``بزرگ‌تر``; the lexicalized ``بهتر، بیشتر، کمتر، بهترین`` are known whole), and any
  suffix after a ZWNJ compound (``گفت‌وگوی``);
- the lexicon also carries the count rules of its builder: ``ی`` after a silent ``ه``
  (``جلسهی`` -> ``جلسه‌ی``) and a pronoun clitic after ZWNJ where the counts clearly
  see it written so (``حریفمان`` -> ``حریف‌مان``; ``دستشان`` stays);
- when two readings fit (``نامهای``: ``نامه‌ای`` or ``نام‌های``), the one seen clearly
  more often in the counts wins (both spellings counted: by their own counts, three
  times as often); otherwise the word is left as it is.

Spaced words (two words with one space between them):

- ``می``/``نمی`` + a verb form (``می شود`` -> ``می‌شود``; ``ماه می`` stays), also inside
  a particle verb (``برمی گردد`` -> ``برمی‌گردد``);
- a pronoun clitic written apart after a word that is not a function word or a verb form
  (``تیم مان`` -> ``تیم‌مان``; ``در شان`` stays: شأن);
- a plural suffix written apart (``کتاب ها``), a clitic after final ``ه`` (``شده اند``,
  ``خانه ای``) or ``ی`` (``اصلی اش``), a copula after any word (``مخالف اند``),
  ``تر/ترین`` after an adjective (``بیش تر`` -> ``بیشتر``, which is known
  whole; ``بزرگ تر`` -> ``بزرگ‌تر``);
- a compound the lexicon marks as safe to join from spaced words (``گفت و گو``,
  ``حمل و نقل``, ``بین المللی``), two or three words;
- never across a compound verb: a lexicon join is refused when the second word is a verb
  form (``انجام داده``, ``صورت گرفته``, ``کشته شدند`` stay two words).

The lexicon (``transforms/normalize_data/lexicon.tsv.gz``) is built by
``python -m khabar.pipeline.train.zwnj_lexicon`` from hazm's word list and verb conjugations and
from word counts of part of news-fa; its README gives the sources and licences.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import compress, repeat
from operator import is_, or_
from pathlib import Path
from typing import Final

ZWNJ: Final = "\u200c"
HEH: Final = "ه"
LEXICON_PATH: Final = Path(__file__).resolve().parent / "normalize_data" / "lexicon.tsv.gz"

PLURALS: Final = (
    "هایشان", "هایتان", "هایمان", "هاست", "هایی", "هایم", "هایت", "هایش", "های", "ها",
)
#: Clitics that take a ZWNJ after a final ``ه``.
HEH_CLITICS: Final = ("اند", "ایم", "اید", "ای", "ام", "ات", "اش", "ی")
#: Written apart after a final ``ه`` they are joined too (``خوشمزه شان``).
SPACED_HEH_CLITICS: Final = HEH_CLITICS + ("شان", "تان", "مان")
#: Second parts that make compounds written with ZWNJ (``برنامه ریزی``, ``مقاوم سازی``,
#: ``حسن زاده``) when the first word is a known word and not a function word.
COMPOUND_TAILS: Final = frozenset(
    "سازی ساز سازان گذاری گذار گذاران ریزی رسانی گیری بندی کننده کنندگان آوری اندازی "
    "زایی شناسی شناس شناسان پذیر پذیری آمیز انگیز زدایی گرایی گرا زاده نژاد گری گران"
    .split()
)
#: Comparatives and superlatives written whole (never split into stem + تر/ترین).
LEXICALIZED: Final = frozenset(
    "بیشتر بیشترین بهتر بهترین کمتر کمترین بدتر بدترین مهتر کهتر".split()
)
#: Number words: ``بیست و هفتمین`` is not joined into one word.
NUMBER_WORDS: Final = frozenset(
    "یک دو سه چهار پنج شش هفت هشت نه ده یازده دوازده سیزده چهارده پانزده شانزده هفده "
    "هجده نوزده بیست سی چهل پنجاه شصت هفتاد هشتاد نود صد دویست سیصد چهارصد پانصد "
    "ششصد هفتصد هشتصد نهصد هزار".split()
)
#: Function words that never start a compound joined from spaced words.
FUNCTION_WORDS: Final = frozenset(
    "و در به از که این آن با را برای تا بر یا هم نیز یک هر چند خود همه می نمی اگر چون "
    "ما من تو او شما آنها ایشان وی".split()
)
COMPARATIVES: Final = ("ترین", "تری", "تر")
#: Suffixes that attach directly (without ZWNJ) unless the stem ends in ``ه``.
DIRECT: Final = ("یشان", "یتان", "یمان", "شان", "تان", "مان", "یی", "ان", "ی", "ش", "م", "ت")
_SUFFIX_WORDS: Final = frozenset(PLURALS + SPACED_HEH_CLITICS + COMPARATIVES)
ALL_SUFFIXES: Final = tuple(
    sorted(set(PLURALS + HEH_CLITICS + COMPARATIVES + DIRECT), key=len, reverse=True)
)
#: The suffixes and the compound tails by length, longest first: a word ends in at most
#: one of each length, so :func:`_endings` finds them in the order a loop over
#: ``ALL_SUFFIXES`` (sorted by length) would, with one set lookup per length.
_SUFFIX_SET: Final = frozenset(ALL_SUFFIXES)
_SUFFIX_SIZES: Final = tuple(sorted({len(s) for s in ALL_SUFFIXES}, reverse=True))
_TAIL_SIZES: Final = tuple(sorted({len(s) for s in COMPOUND_TAILS}, reverse=True))
MI_PREFIXES: Final = ("می", "نمی")
_PLURAL_SET: Final = frozenset(PLURALS)
_CLITIC_SET: Final = frozenset(SPACED_HEH_CLITICS)
_COMPARATIVE_SET: Final = frozenset(COMPARATIVES)
#: Copulas never stand alone: joined after any word (``مخالف اند``).
_COPULAS: Final = frozenset({"اند", "ایم", "اید"})
#: Clitics joined with ZWNJ after a final ``ی`` (``اصلی اش``, ``مالی شان``).
_AFTER_YEH: Final = frozenset({"ام", "ات", "اش", "ای", "شان", "تان", "مان"})
#: Words that end in ``ه`` but never take a clitic written apart (``که ای کاش``).
NO_CLITIC: Final = frozenset({"که", "چه", "به", "نه", "ته", "سه"})
MIN_STEM: Final = 3
#: A plural against a clitic after ``ه`` (``حرفهای``): both spellings counted this often
#: together, the one written this many times as often wins.
AMBIGUOUS_MIN: Final = 10
AMBIGUOUS_RATIO: Final = 3
#: Pronoun clitics written apart after a noun (``تیم مان``): joined with ZWNJ.
SPACED_PRONOUNS: Final = frozenset({"شان", "تان", "مان", "اش"})
#: Words before which ``شان`` is the noun شأن (``در شان``, ``دون شان``), not a clitic.
NOT_BEFORE_PRONOUN: Final = frozenset({"دون"})
#: Verb particles that take ``می`` inside the verb (``برمی‌گردد``, ``درمی‌آید``).
PARTICLES: Final = ("بر", "باز", "در", "فرو", "فرا", "ور")

_LETTERS = r"\u0621-\u063a\u0641-\u064a\u0671-\u06d3\u06d5\u06ee\u06ef\u06fa-\u06fc\u06ff"
WORD: Final = re.compile(f"[{_LETTERS}]+(?:{ZWNJ}[{_LETTERS}]+)*")
#: The same, captured: ``split`` gives gap, word, gap, ..., word, gap in one pass.
_SPLIT_WORDS: Final = re.compile(f"({WORD.pattern})")

# flags in the lexicon file
F_JOIN, F_SPACED, F_WHOLE, F_KNOWN, F_ADJ, F_VERB = "J", "S", "W", "K", "A", "V"


@dataclass(frozen=True, slots=True)
class Lexicon:
    """What the restorer knows; see :func:`load_lexicon` and the module docstring."""

    joins: dict[str, str]  # glued spelling -> the ZWNJ spelling to restore
    spaced: frozenset[str]  # ZWNJ spellings safe to join from space-separated words
    whole: frozenset[str]  # words known whole: never split
    known: frozenset[str]  # other known words: stems for the inflection rules
    adjectives: frozenset[str]
    verbs: frozenset[str]  # single-token verb forms (the compound-verb guard)
    counts: dict[str, int]  # corpus counts of spellings, for ambiguous readings

    def is_word(self, word: str) -> bool:
        return word in self.whole or word in self.known or word in self.joins

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str, int]]) -> Lexicon:
        """Rows of (spelling, flags, count); flags as in the lexicon file."""
        table = list(rows)
        return cls.from_columns(
            [row[0] for row in table], [row[1] for row in table], [row[2] for row in table]
        )

    @classmethod
    def from_columns(
        cls, words: Sequence[str], flags: Sequence[str], counts: Sequence[int | str]
    ) -> Lexicon:
        """The same from three columns (counts as ints or as the file's decimal strings):
        each flag's set is one comprehension over the columns."""
        pairs = list(zip(words, flags, strict=True))

        def having(flag: str) -> frozenset[str]:
            return frozenset([word for word, fl in pairs if flag in fl])

        return cls(
            {word.replace(ZWNJ, ""): word for word, fl in pairs if F_JOIN in fl},
            having(F_SPACED),
            having(F_WHOLE),
            having(F_KNOWN),
            having(F_ADJ),
            having(F_VERB),
            {
                word: n
                for word, count in zip(words, counts, strict=True)
                if count != "0" and (n := int(count))
            },
        )


@lru_cache(maxsize=2)
def load_lexicon(path: Path = LEXICON_PATH) -> Lexicon:
    """The shipped lexicon (loaded once per process, in every worker that normalizes).

    The file is read whole, its comment and blank lines dropped, and the rest split into
    its three columns at once (one join, one split); each flag's set is one comprehension:
    0.25 s here against 0.75 s for a per-line generator feeding one loop that tested every
    flag (measured; the same sets and counts, tested). Lines end in ``\\n`` (the shipped
    file has no ``\\r``).
    """
    with gzip.open(path, "rb") as handle:
        text = handle.read().decode("utf-8")
    lines = [line for line in text.split("\n") if line and line[0] != "#"]
    cells = "\t".join(lines).split("\t") if lines else []
    if len(cells) != 3 * len(lines):
        raise ValueError(f"{path}: every line must have three tab-separated fields")
    return Lexicon.from_columns(cells[0::3], cells[1::3], cells[2::3])


def _endings(word: str, sizes: Sequence[int], members: frozenset[str]) -> list[str]:
    """The members that ``word`` ends with, longest first (``sizes``: their lengths,
    longest first; a word ends in at most one string of each length)."""
    n = len(word)
    return [word[-k:] for k in sizes if k <= n and word[-k:] in members]


def _zwnj_at(word: str) -> set[int]:
    """Where a word's ZWNJs are, as letter counts before each."""
    out: set[int] = set()
    letters = 0
    for char in word:
        if char == ZWNJ:
            out.add(letters)
        else:
            letters += 1
    return out


def _plural_or_heh(a: str, b: str) -> bool:
    """Whether two readings are a plural and a clitic after ``ه`` of one glued word."""
    tails = {a.rsplit(ZWNJ, 1)[-1], b.rsplit(ZWNJ, 1)[-1]}
    return bool(tails & _PLURAL_SET) and bool(tails & _CLITIC_SET)


def attach(base: str, suffix: str) -> str:
    """``base`` + ``suffix`` spelled as the style guides agree."""
    if suffix in PLURALS or suffix in COMPARATIVES:
        return base + ZWNJ + suffix
    if base.endswith(HEH) and suffix in HEH_CLITICS and suffix != "ی":
        return base + ZWNJ + suffix
    return base + suffix


#: A cache miss (None is a cached answer: "keep the words apart").
_UNSEEN = object()


class ZwnjRestorer:
    """Restores dropped ZWNJ in glued and spaced Persian words (module docstring)."""

    def __init__(self, lexicon: Lexicon, cache_size: int = 50_000) -> None:
        self.lexicon = lexicon
        self._glued_cache: dict[str, str] = {}
        self._pair_cache: dict[tuple[str, str], str | None] = {}
        self._cache_size = cache_size
        # first words of the compounds that may be joined from spaced words
        self._heads = frozenset(s.split(ZWNJ, 1)[0] for s in lexicon.spaced)
        self._two_part_tails: dict[str, set[str]] = {}
        for spelling in lexicon.spaced:
            head, _, tail = spelling.rpartition(ZWNJ)
            self._two_part_tails.setdefault(head, set()).add(tail)
        # a pair can join only if its first word is one of these or its second word is
        self._particle_mi = frozenset(p + "می" for p in PARTICLES)
        self._pair_starts = (
            frozenset(self._two_part_tails) | set(MI_PREFIXES) | {"بی"} | self._particle_mi
        )
        self._pair_ends = _PLURAL_SET | _CLITIC_SET | _COMPARATIVE_SET | COMPOUND_TAILS
        # for a first word whose only rule is a spaced compound (a head, not می, نمی, بی
        # or a particle + می) and a second word that ends no pair, a join needs one of the
        # head's compound tails to begin the second word (the word itself, or its stem
        # before a suffix): the first two letters of the head's tails (heads with a tail
        # shorter than that are left out: no such check for them)
        special = set(MI_PREFIXES) | {"بی"} | self._particle_mi
        self._tail_starts: dict[str, frozenset[str]] = {
            head: frozenset(t[:2] for t in tails)
            for head, tails in self._two_part_tails.items()
            if head not in special and all(len(t) >= 2 for t in tails)
        }
        # what _may_join looks up: first words that may join with any second word, and
        # (first word, first two letters of the second) for the heads checked above and
        # for the heads of three-word compounds before و
        self._join_firsts = self._pair_starts - self._tail_starts.keys()
        self._join_lefts = self._join_firsts | self._tail_starts.keys() | self._heads
        self._join_prefixes = frozenset(
            (head, start) for head, starts in self._tail_starts.items() for start in starts
        ) | {(head, "و") for head in self._heads}

    # ------------------------------------------------------------------ glued

    def glued(self, word: str) -> str:
        """The spelling of one word written without ZWNJ (cached)."""
        cached = self._glued_cache.get(word)
        if cached is None:
            cached = self._glued(word)
            if len(self._glued_cache) >= self._cache_size:
                self._glued_cache.clear()
            self._glued_cache[word] = cached
        return cached

    def _glued(self, word: str) -> str:
        if ZWNJ not in word:
            return self._glued_part(word)
        # a word with some ZWNJ: restored as if fully glued, kept only if that keeps
        # every ZWNJ already there (تاکسیرانی‌ها -> تاکسی‌رانی‌ها; گفت‌وگوها stays)
        restored = self._glued_part(word.replace(ZWNJ, ""))
        return restored if _zwnj_at(restored) >= _zwnj_at(word) else word

    def _glued_part(self, word: str) -> str:
        lex = self.lexicon
        if len(word) < MIN_STEM or word in _SUFFIX_WORDS:
            return word
        joined = lex.joins.get(word)
        if joined is not None:
            return joined
        if word in lex.whole or word in LEXICALIZED:
            return word
        candidates: dict[str, tuple[int, int]] = {}  # spelling -> (its count, stem's)
        for suffix in _endings(word, _SUFFIX_SIZES, _SUFFIX_SET):
            if len(word) - len(suffix) < MIN_STEM - (
                suffix in _PLURAL_SET  # a two-letter word's plural competes too: سد‌های
                and word[: -len(suffix)] in lex.whole
            ):
                continue
            stem = word[: -len(suffix)]
            base = self.glued(stem)  # the stem restored too (راهپیمایی‌هایی)
            if base == stem and stem not in lex.whole and (
                stem not in lex.known or stem not in lex.counts
            ):
                continue  # a stem must be a dictionary word or seen in the counts
            if suffix in COMPARATIVES and ZWNJ not in base and stem not in lex.adjectives:
                continue  # فیلتر is not فیل + تر
            if suffix in HEH_CLITICS and suffix not in DIRECT and not base.endswith(HEH):
                continue
            if suffix == "ی" and base.endswith(HEH):
                continue  # شاهی, ماهی: no ZWNJ for a glued ی
            spelled = attach(base, suffix)
            if spelled == word and base not in lex.whole:
                continue
            # a reading that changes nothing (انتها + ی) competes with the others
            reading = (lex.counts.get(spelled, 0) + (spelled == word), lex.counts.get(stem, 0))
            candidates[spelled] = max(reading, candidates.get(spelled, reading))
        for tail in _endings(word, _TAIL_SIZES, COMPOUND_TAILS):
            if len(word) - len(tail) >= MIN_STEM:
                head = word[: -len(tail)]
                if head in lex.whole and head not in FUNCTION_WORDS:
                    spelled = head + ZWNJ + tail  # تولیدکننده, بمبگذاری
                    candidates[spelled] = (lex.counts.get(spelled, 0), lex.counts.get(head, 0))
        if not candidates:
            return word
        if len(candidates) == 1:
            return next(iter(candidates))
        ranked = sorted(candidates.items(), key=lambda item: item[1], reverse=True)
        (best, (best_count, best_stem)), (second, (second_count, second_stem)) = ranked[:2]
        if _plural_or_heh(best, second):
            # a plural against a clitic after ه (سفرهای: سفر‌های or سفره‌ای). Both spellings
            # seen in the counts, AMBIGUOUS_MIN times or more together: the one written at
            # least AMBIGUOUS_RATIO times as often wins (حرفهای -> حرفه‌ای, 189 against
            # 36), else the word is left alone
            if best_count and second_count and best_count + second_count >= AMBIGUOUS_MIN:
                return best if best_count >= AMBIGUOUS_RATIO * second_count else word
            # otherwise the spelling's count times its stem's, three times the other's
            def weight(item: tuple[str, tuple[int, int]]) -> int:
                return (item[1][0] + 1) * (item[1][1] + 1)

            ranked = sorted(candidates.items(), key=weight, reverse=True)
            if weight(ranked[0]) >= 3 * weight(ranked[1]):
                return ranked[0][0]
            return word
        if best_count >= 2 * second_count and best_count > 0:
            return best
        if best_count == second_count == 0 and best_stem >= 2 * second_stem and best_stem > 0:
            return best  # neither spelling counted: the clearly more frequent stem
        return word  # ambiguous: never guess

    # ------------------------------------------------------------------ spaced

    def _verb_guard(self, word: str) -> bool:
        return word in self.lexicon.verbs

    def join_pair(self, a: str, b: str) -> str | None:
        """The joined spelling of two space-separated words, or None to keep them apart
        (cached)."""
        key = (a, b)
        # one lookup (not `in` then `[]`): another thread may clear the cache in between
        joined = self._pair_cache.get(key, _UNSEEN)
        if joined is not _UNSEEN:
            return joined  # type: ignore[return-value]
        joined = self._join_pair(a, b)
        if len(self._pair_cache) >= self._cache_size:
            self._pair_cache.clear()
        self._pair_cache[key] = joined
        return joined

    def _join_pair(self, a: str, b: str) -> str | None:
        lex = self.lexicon
        if a in MI_PREFIXES:
            spelled = a + ZWNJ + b
            if spelled in lex.verbs or lex.joins.get(spelled.replace(ZWNJ, "")) == spelled:
                return spelled
            return None
        if a in self._particle_mi:
            # برمی آید, بازمی گردد: a particle verb, when می + the rest is a verb form
            if "می" + ZWNJ + b in lex.verbs:
                return a + ZWNJ + b
            return None
        if b in _PLURAL_SET:
            return a + ZWNJ + b if len(a) >= 2 else None
        if b in _CLITIC_SET:
            if len(a) < MIN_STEM or a in NO_CLITIC:
                return None
            if a.endswith(HEH):
                return a + ZWNJ + b  # شده اند, خانه ای, همه اش
            if a in FUNCTION_WORDS:
                return None
            if b in _COPULAS or (a.endswith("ی") and b in _AFTER_YEH):
                return a + ZWNJ + b  # مخالف اند; اصلی اش, زندگی ام, مالی شان
            if b in SPACED_PRONOUNS and a not in NOT_BEFORE_PRONOUN and lex.is_word(a) and (
                not self._verb_guard(a)
            ):
                return a + ZWNJ + b  # تیم مان, بازیکنان شان (the writer kept them apart)
            return None
        if b in _COMPARATIVE_SET:
            if a + b in lex.whole or a + b in LEXICALIZED:
                return a + b  # lexicalized: بیشتر، بهتر، کمتر
            if a in lex.adjectives or (
                lex.is_word(a) and a not in FUNCTION_WORDS and len(a) >= MIN_STEM
            ):
                return a + ZWNJ + b
            return None
        if b in COMPOUND_TAILS and len(a) >= 2 and a not in FUNCTION_WORDS and (
            lex.is_word(a) or ZWNJ in a
        ) and not self._verb_guard(a):
            return a + ZWNJ + b
        if a == "بی" and lex.is_word(b):
            return a + ZWNJ + b  # بی سابقه: بی never stands alone
        if self._verb_guard(b):
            return None
        tails = self._two_part_tails.get(a)
        if tails is None:
            return None
        if b in tails:
            return a + ZWNJ + b
        for suffix in _endings(b, _SUFFIX_SIZES, _SUFFIX_SET):
            if len(b) - len(suffix) >= 2:
                stem = b[: -len(suffix)].rstrip(ZWNJ)
                if stem in tails and not self._verb_guard(stem):
                    return attach(a + ZWNJ + stem, suffix)
        return None

    def join_triple(self, a: str, b: str, c: str) -> str | None:
        """Three words that the lexicon spells as one (``گفت و گو``, ``آب شیرین کن``)."""
        if a not in self._heads or (b == "و" and a in NUMBER_WORDS):
            return None  # بیست و هفتمین stays three words
        spelled = a + ZWNJ + b + ZWNJ + c if b != "و" else a + ZWNJ + b + c
        if spelled in self.lexicon.spaced and not self._verb_guard(c):
            return spelled
        return None

    # ------------------------------------------------------------------ text

    def restore(self, text: str) -> str:
        """Restore ZWNJ in every Persian word of ``text``; nothing else changes.

        Joins are repeated until none applies (``پنجاه و نه ساله``: ``نه‌ساله`` first,
        then the three words), so restoring twice gives what restoring once gave."""
        pieces = _SPLIT_WORDS.split(text)  # gap0 w0 gap1 w1 ... wn gap(n+1)
        if len(pieces) == 1:
            return text
        gaps, words = pieces[::2], pieces[1::2]
        # each word as glued() spells it: cached words in one pass, the rest computed
        restored = list(map(self._glued_cache.get, words))
        if None in restored:
            for i in compress(range(len(words)), map(is_, restored, repeat(None))):
                restored[i] = self.glued(words[i])
        changed = restored != words
        words = restored
        places: Iterable[int] = self._may_join(words)
        for _ in range(8):
            joined = self._join_all(words, gaps, places)
            if joined is None:
                break
            words, gaps, new = joined
            changed = True
            # the next pass can only join where a word joined in this one takes part, as
            # the first or second word of a pair or the third of a three-word compound:
            # elsewhere it would see the same words as this pass did, which did not join
            # them
            places = sorted({j for k in new for j in (k - 1, k, k + 1) if 0 < j < len(words)})
        if not changed:
            return text
        pieces = [""] * (2 * len(words) + 1)
        pieces[::2] = gaps
        pieces[1::2] = words
        return "".join(pieces)

    def _may_join(self, words: list[str]) -> list[int]:
        """The places j, in order, where words[j - 1] and words[j] may be joined (a
        superset of the places where ``_join_all``'s rules do not stop at once): the
        first word joins with anything (``می``, ``بی``, ...), or the second word ends a
        pair, or a compound tail of the first word (or ``و``, after a three-word
        compound's head) begins the second. The words are looked up in C-level loops;
        only the few places so found are checked in Python."""
        ends, firsts, prefixes = self._pair_ends, self._join_firsts, self._join_prefixes
        found = compress(
            range(1, len(words)),
            map(
                or_,
                map(self._join_lefts.__contains__, words[:-1]),
                map(ends.__contains__, words[1:]),
            ),
        )
        return [
            j for j in found
            if words[j] in ends or words[j - 1] in firsts
            or (words[j - 1], words[j][:2]) in prefixes
        ]

    def _join_all(
        self, words: list[str], gaps: list[str], places: Iterable[int]
    ) -> tuple[list[str], list[str], list[int]] | None:
        """One left-to-right pass of the spaced-word joins: the new words and gaps, and
        where the joined words are among the new words; None if nothing was joined.

        Only ``places`` are visited (j: words[j - 1] and words[j], in order): they must
        include every place where a join may start (:meth:`_may_join`); every other word
        stays as it is, with its gap."""
        n = len(words)
        if n < 2:
            return None
        starts, ends, heads = self._pair_starts, self._pair_ends, self._heads
        tail_starts = self._tail_starts
        out_words: list[str] = []
        out_gaps: list[str] = [gaps[0]]
        new: list[int] = []  # where the joined words are in out_words
        done = 0  # words[:done] are in out_words
        for place in places:
            if place <= done or gaps[place] != " ":
                continue  # inside the last joined word, or no single space before
            first = place - 1
            out_words.extend(words[done:first])
            out_gaps.extend(gaps[done + 1 : place])
            current = words[first]
            i = place
            while i < n and gaps[i] == " ":
                b = words[i]
                if b == "و" and i + 1 < n and gaps[i + 1] == " " and current in heads:
                    joined = self.join_triple(current, b, words[i + 1])
                    if joined is not None:
                        current = joined
                        i += 2
                        continue
                if b not in ends:
                    if current not in starts:
                        break  # the common case: no rule can join these two
                    prefixes = tail_starts.get(current)
                    if prefixes is not None and b[:2] not in prefixes:
                        break  # no compound tail of this head begins b: join_pair gives None
                joined = self.join_pair(current, b)
                if joined is None:
                    break
                current = joined
                i += 1
            if i > place:
                new.append(len(out_words))
                current = self.glued(current)  # checked as a whole word would be
            out_words.append(current)
            out_gaps.append(gaps[i])
            done = i
        if not new:
            return None
        out_words.extend(words[done:])
        out_gaps.extend(gaps[done + 1 :])
        return out_words, out_gaps, new
