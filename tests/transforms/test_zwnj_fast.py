"""The ZWNJ restorer's fast paths against the plain loop they replaced (issue 20).

``ZwnjRestorer.restore`` visits only the places where a join may start (found with set
lookups over the word list), repeats a pass only beside the words the last pass joined,
and finds suffixes by length. The reference below is the loop it replaced, word by word
and pair by pair; on adversarial text built from the words the rules care about (heads
and tails of compounds, ``و``, ``می``, ``بی``, suffixes, verb forms, number words) both must
give the same output."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from khabar.transforms.zwnj import (
    COMPARATIVES,
    COMPOUND_TAILS,
    HEH_CLITICS,
    NUMBER_WORDS,
    PLURALS,
    SPACED_PRONOUNS,
    WORD,
    ZWNJ,
    ZwnjRestorer,
    load_lexicon,
)

_RESTORER: list[ZwnjRestorer] = []


def restorer() -> ZwnjRestorer:
    if not _RESTORER:
        _RESTORER.append(ZwnjRestorer(load_lexicon()))
    return _RESTORER[0]


def reference_restore(r: ZwnjRestorer, text: str) -> str:
    """The restorer's text loop before issue 20's speed work, verbatim in effect."""
    gaps = WORD.split(text)
    words = WORD.findall(text)
    if not words:
        return text
    words = [r.glued(w) for w in words]
    for _ in range(8):
        words, gaps, joined = _reference_join_all(r, words, gaps)
        if not joined:
            break
    pieces = [gaps[0]]
    for word, gap in zip(words, gaps[1:], strict=True):
        pieces.append(word)
        pieces.append(gap)
    return "".join(pieces)


def _reference_join_all(
    r: ZwnjRestorer, words: list[str], gaps: list[str]
) -> tuple[list[str], list[str], bool]:
    starts, ends, heads = r._pair_starts, r._pair_ends, r._heads
    out_words: list[str] = []
    out_gaps: list[str] = [gaps[0]]
    joined_any = False
    i, n = 0, len(words)
    while i < n:
        current = words[i]
        first = i
        i += 1
        while i < n and gaps[i] == " ":
            b = words[i]
            if b == "و" and i + 1 < n and gaps[i + 1] == " " and current in heads:
                joined = r.join_triple(current, b, words[i + 1])
                if joined is not None:
                    current = joined
                    i += 2
                    continue
            if current not in starts and b not in ends:
                break
            joined = r.join_pair(current, b)
            if joined is None:
                break
            current = joined
            i += 1
        if i > first + 1:
            joined_any = True
            current = r.glued(current)
        out_words.append(current)
        out_gaps.append(gaps[i])
    return out_words, out_gaps, joined_any


def _vocabulary() -> list[str]:
    """Words the rules look at, a fixed sample of the lexicon's compounds (their parts,
    spelled whole, glued and with ZWNJ), and plain words."""
    r = restorer()
    rng = random.Random(20)
    spaced = sorted(r.lexicon.spaced)
    verbs = sorted(r.lexicon.verbs)
    words: set[str] = {"و", "می", "نمی", "بی", "بر", "برمی", "درمی", "که", "در", "از", "دون"}
    words |= set(PLURALS) | set(HEH_CLITICS) | set(COMPARATIVES) | set(SPACED_PRONOUNS)
    words |= set(COMPOUND_TAILS) | set(rng.sample(sorted(NUMBER_WORDS), 8))
    for compound in rng.sample(spaced, 60):
        parts = compound.split(ZWNJ)
        words |= set(parts) | {compound, compound.replace(ZWNJ, "")}
        words |= {parts[-1] + suffix for suffix in ("ها", "های", "ی", "ای")}
    for verb in rng.sample(verbs, 30):
        words |= {verb, verb.replace(ZWNJ, "")} | set(verb.split(ZWNJ))
    words |= {"کتاب", "خانه", "شده", "سال", "ایران", "تیم", "بزرگ", "اصلی", "پنجاه", "نه",
              "ساله", "گفت", "گو", "حمل", "نقل", "بین", "المللی", "فوتبال", "12", "Apple"}
    return sorted(words)


VOCABULARY = _vocabulary()
SEPARATORS = [" ", " ", " ", " ", "  ", ZWNJ, "\n", "، ", " (", ") ", "-", ""]

texts = st.lists(
    st.tuples(st.sampled_from(VOCABULARY), st.sampled_from(SEPARATORS)), max_size=14
).map(lambda pairs: "".join(word + sep for word, sep in pairs))


@settings(max_examples=1500, deadline=None)
@given(texts)
def test_restore_equals_the_plain_loop(text: str) -> None:
    r = restorer()
    assert r.restore(text) == reference_restore(r, text)


@pytest.mark.parametrize(
    "text",
    [
        "پنجاه و نه ساله",  # a join, then a three-word compound in the next pass
        "گفت و گو و گفت و گو",
        "می شود می شود کتاب ها",
        "بی سابقه ترین",
        "",
        "Apple 12",
    ],
)
def test_restore_equals_the_plain_loop_on_known_cases(text: str) -> None:
    r = restorer()
    assert r.restore(text) == reference_restore(r, text)
