"""Build the ZWNJ lexicon of the Persian normalizer (``transforms/normalize_data``).

    python -m khabar.pipeline.train.zwnj_lexicon [--data ../shared/data/news-fa] [--out PATH]

Sources (see ``transforms/normalize_data/README.md`` for the licences):

- hazm's ``words.dat`` (193,751 words with frequencies and parts of speech, 13,278 with
  ZWNJ) and its verb conjugations (``Lemmatizer().verbs``: the single-token forms);
- ZWNJ spellings of other packages' word lists (``pipeline/train/zwnj_sources``, see its
  README): shekar's compound words and vocabulary, parsivar's normalizer dictionaries,
  and, with ``--sources ... spell-fa``, the Persian spell-checker dictionaries
  (aspell-fa, myspell-fa; GPL-2.0-or-later, so not by default);
- word and word n-gram counts of the *training* part of news-fa: articles whose URL hash
  puts them outside the held-out quarter (:func:`held_out`) that ``khabar
  bench-normalize`` reports on.

Decisions, written as flags (``khabar.transforms.zwnj`` reads them):

- ``J``: restore this ZWNJ spelling when its glued form is seen. Among the spellings that
  share a glued form the one written apart (with ZWNJ or a space) most often in the
  counts wins, and it wins over the glued form when it is seen at least ``--join-ratio``
  (0.15) times as often (``آن‌ها``, ``پنج‌شنبه``; ``بیشتر`` at 0.02 stays whole); with
  too few counts, hazm decides: a glued word hazm lists with a frequency stays whole
  unless its ZWNJ spelling is more frequent there. Two count rules add or hold back
  candidates: ``X‌ی`` after a silent ``ه`` (:func:`silent_heh_yeh`: ``جلسهی`` ->
  ``جلسه‌ی``), and a pronoun clitic after ZWNJ (``حریف‌مان``; normally written joined,
  ``دستشان``) only when the counts see it so at least three times and ``PRONOUN_RATIO``
  (2) times as often as glued.
- ``S``: join this spelling from space-separated words, never when its last part is a
  verb form: a compound hazm's dictionary lists (with a frequency or a part of speech)
  without a function word in it; one with a function word (``بین‌المللی``) only when the counts
  see it written with ZWNJ at least three times and at least as often as spaced; any
  other spelling seen in the counts only when it is written with ZWNJ at least
  ``--spaced-ratio`` times as often as spaced (``تیم ملی`` stays apart).
- ``W`` known whole (a hazm word with a frequency or a part of speech, not a ``J`` key),
  ``K`` a known stem (hazm's other words, news-fa words seen twice), ``A`` adjective
  (hazm's ``AJ``), ``V`` single-token verb form (the compound-verb guard).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from importlib.resources import files
from pathlib import Path

from hazm import Lemmatizer

from khabar.transforms.persian import fix_spacing, fold_letters
from khabar.transforms.zwnj import (
    F_ADJ,
    F_JOIN,
    F_KNOWN,
    F_SPACED,
    F_VERB,
    F_WHOLE,
    FUNCTION_WORDS,
    HEH,
    LEXICON_PATH,
    WORD,
    ZWNJ,
)

SOURCES_DIR = Path(__file__).resolve().parent / "zwnj_sources"
#: spell-fa (GPL-2.0-or-later) adds little (see the README) and is left to --sources
DEFAULT_SOURCES = ("shekar", "parsivar")
DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "news-fa"
HELD_OUT_BUCKETS = 4  # one article in four is held out
PRONOUN_CLITICS = frozenset({"شان", "تان", "مان", "ش", "م", "ت"})
PRONOUN_RATIO = 2.0


def pronoun_apart(spelling: str) -> bool:
    """A pronoun clitic after ZWNJ, not after a final ``ه`` (``دست‌شان``)."""
    parts = spelling.split(ZWNJ)
    return parts[-1] in PRONOUN_CLITICS and not parts[-2].endswith(HEH)


def held_out(article: dict) -> bool:
    """True for the quarter of news-fa the lexicon never sees (by URL hash, so the
    sites' own repeated articles fall on one side)."""
    key = (article.get("url") or article.get("title") or "").encode("utf-8")
    return hashlib.md5(key).digest()[0] % HELD_OUT_BUCKETS == 0


def read_news(data: Path) -> Iterator[dict]:
    for name in ("farsnews.jsonl", "varzesh3.jsonl"):
        path = data / name
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    yield json.loads(line)


def article_text(article: dict) -> str:
    return "\n".join(article.get(k) or "" for k in ("title", "lead", "body"))


def hazm_words() -> dict[str, tuple[int, str]]:
    """hazm's words.dat: word -> (frequency, parts of speech)."""
    out: dict[str, tuple[int, str]] = {}
    text = files("hazm").joinpath("data/words.dat").read_text(encoding="utf-8")
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) == 3 and fields[0]:
            word = fold_letters(fields[0])
            freq, pos = int(fields[1]), fields[2]
            if word in out:  # two spellings that fold alike (ي/ی): keep what each knows
                old_freq, old_pos = out[word]
                freq = max(freq, old_freq)
                pos = old_pos if pos == "0" else pos
            out[word] = (freq, pos)
    return out


def source_words(names: Sequence[str], folder: Path = SOURCES_DIR) -> set[str]:
    """ZWNJ spellings listed by other packages (``zwnj_sources/NAME.txt.gz``, one a line)."""
    out: set[str] = set()
    for name in names:
        path = folder / f"{name}.txt.gz"
        if not path.exists():
            raise SystemExit(f"zwnj_lexicon: no {path}; see {SOURCES_DIR}/README.md")
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                word = fold_letters(line.strip())
                if ZWNJ in word and WORD.fullmatch(word):
                    out.add(word)
    return out


def verb_like(part: str, verbs: set[str]) -> bool:
    """A verb form that :func:`hazm_verbs` leaves out: an infinitive (``گرفتن``), a past
    participle (``داشته``) or a second person singular (``داری``). The other packages'
    lists spell compound verbs as one word (``قرار‌گرفتن``, ``دوست‌داری``); hazm's and
    the counts' compounds need no such guard."""
    return part in verbs or (
        len(part) >= 3 and (
            (part[-1] in "نه" and part[:-1] in verbs)
            or (part[-1] == "ی" and part[:-1] + "د" in verbs)
        )
    )


def hazm_verbs() -> set[str]:
    """Single-token verb forms from hazm's conjugations, less the second person singular
    in ``ی`` (``ریزی``, ``بینی``, ``گیری``), which is spelled like the nouns that end
    compounds (``برنامه‌ریزی``, ``پیش‌بینی``) and almost never follows a noun as a verb."""
    return {
        fold_letters(form)
        for form in Lemmatizer(joined_verb_parts=False).verbs
        if " " not in form and "_" not in form and not form.endswith("ی")
    }


def count_news(texts: Sequence[str], targets: dict[str, str]) -> tuple[Counter, Counter]:
    """Token counts, and counts of the spaced forms in ``targets`` (spaced -> spelling)."""
    tokens: Counter[str] = Counter()
    spaced: Counter[str] = Counter()
    for text in texts:
        for line in fix_spacing(fold_letters(text)).split("\n"):
            matches = list(WORD.finditer(line))
            words = [m.group() for m in matches]
            tokens.update(words)
            for i in range(len(words) - 1):
                if line[matches[i].end() : matches[i + 1].start()] != " ":
                    continue
                two = words[i] + " " + words[i + 1]
                if two in targets:
                    spaced[targets[two]] += 1
                if i + 2 >= len(words):
                    continue
                if line[matches[i + 1].end() : matches[i + 2].start()] == " ":
                    three = two + " " + words[i + 2]
                    if three in targets:
                        spaced[targets[three]] += 1
    return tokens, spaced


def spaced_forms(spelling: str) -> list[str]:
    """How a ZWNJ spelling looks with its ZWNJ turned into spaces (and ``X و Y``)."""
    forms = [spelling.replace(ZWNJ, " ")]
    if ZWNJ + "و" in spelling:
        forms.append(spelling.replace(ZWNJ + "و", " و "))
    return forms


#: Clitics written with ZWNJ only after a silent final ``ه`` (``جلسه‌ای``); after a
#: sounded one they are glued (``راهی``), so seeing one marks the ``ه`` silent.
SILENT_HEH_SIGNS = ("ای", "اند", "ام", "ایم", "اید", "ی")


def silent_heh_yeh(tokens: Counter, words: dict[str, tuple[int, str]]) -> set[str]:
    """``X‌ی`` (ezafe or indefinite ``ی`` after a silent ``ه``: ``جلسه‌ی``) for each word X
    of three letters or more whose ``ه`` the counts or hazm's dictionary show silent
    (``X‌ای``, ``X‌اند``, ... written with ZWNJ or a space) and whose glued ``Xی`` the
    counts never see and hazm's dictionary does not list as a word (``راهی``, ``آگاهی``
    stay whole)."""
    seen_apart: set[str] = set()
    for token in list(tokens) + [w for w in words if ZWNJ in w]:
        parts = token.split(ZWNJ)
        for i in range(1, len(parts)):
            if parts[i] in SILENT_HEH_SIGNS and parts[i - 1].endswith(HEH):
                seen_apart.add(ZWNJ.join(parts[:i]))
    out = set()
    for stem in seen_apart:
        glued = stem.replace(ZWNJ, "") + "ی"
        freq, pos = words.get(glued, (0, "0"))
        if len(stem) >= 3 and not tokens.get(glued) and freq == 0 and pos in ("0", ""):
            out.add(stem + ZWNJ + "ی")
    return out


def build(
    data: Path, spaced_ratio: float = 0.5, join_ratio: float = 0.15, min_news: int = 2,
    sources: Sequence[str] = DEFAULT_SOURCES,
) -> list[tuple[str, str, int]]:
    words = hazm_words()
    verbs = hazm_verbs()
    texts = [article_text(a) for a in read_news(data) if not held_out(a)]

    # candidate ZWNJ spellings: hazm's, the verb forms, and news tokens (counted twice+)
    first_tokens, _ = count_news(texts, {})
    zwnj_spellings = {w for w in words if ZWNJ in w}
    zwnj_spellings |= {v for v in verbs if ZWNJ in v}
    zwnj_spellings |= {t for t, c in first_tokens.items() if ZWNJ in t and c >= min_news}
    # the same clitics written apart after the word (نیمه ای) count as ZWNJ spellings
    apart_signs = {
        f"{t} {sign}": f"{t}{ZWNJ}{sign}"
        for t in first_tokens if t.endswith(HEH) for sign in SILENT_HEH_SIGNS
    }
    _, signs_spaced = count_news(texts, apart_signs)
    zwnj_spellings |= silent_heh_yeh(first_tokens + signs_spaced, words)
    # spellings only the other packages' lists give (a dictionary's word, but no hazm
    # entry and no news count to back it): see the S and J rules below
    listed = {
        s for s in source_words(sources) - zwnj_spellings
        if not verb_like(s.split(ZWNJ)[-1], verbs)
    }
    zwnj_spellings |= listed
    targets: dict[str, str] = {}
    for spelling in sorted(zwnj_spellings):
        if spelling.count(ZWNJ) <= 2:
            for form in spaced_forms(spelling):
                targets.setdefault(form, spelling)
    tokens, spaced = count_news(texts, targets)

    # a spelling is also seen inside longer tokens: بزرگراه in بزرگراه‌ها
    seen: Counter[str] = Counter()
    for token, count in tokens.items():
        parts = token.split(ZWNJ)
        for i in range(1, len(parts) + 1):
            seen[ZWNJ.join(parts[:i])] += count

    def apart(s: str) -> int:
        return seen[s] + spaced[s]

    def hazm_freq(w: str) -> int:
        return words.get(w, (0, ""))[0]

    def strong(w: str) -> bool:
        freq, pos = words.get(w, (0, "0"))
        return freq > 0 or pos not in ("0", "")

    by_key: dict[str, list[str]] = {}
    for spelling in sorted(zwnj_spellings):
        by_key.setdefault(spelling.replace(ZWNJ, ""), []).append(spelling)

    flags: dict[str, set[str]] = {}
    counts: dict[str, int] = {}
    for key, spellings in by_key.items():
        best = max(
            spellings, key=lambda s: (apart(s), hazm_freq(s), s in verbs, s not in listed, s)
        )
        glued = seen[key]
        if glued + apart(best) >= 3:
            # the ZWNJ spelling is the standard one (آن‌ها, پنج‌شنبه): restore it when
            # writers use it at least ``join_ratio`` times as often as the glued form
            # (a glued form that hazm's dictionary lists, such as میدانی, only when the
            # ZWNJ spelling is at least as frequent)
            restore = apart(best) >= (1.0 if strong(key) else join_ratio) * glued
        else:
            whole = strong(key)
            restore = not whole or hazm_freq(best) > hazm_freq(key)
        if best in listed and apart(best) < glued:
            restore = False  # a listed spelling the counts see glued more often
        if pronoun_apart(best):
            # دستشان, not دست‌شان: pronoun clitics are written joined, unless the counts
            # clearly see this word written apart (تیم‌مان: at least three times, and at
            # least PRONOUN_RATIO times as often as glued)
            restore = apart(best) >= 3 and apart(best) >= PRONOUN_RATIO * glued
        if restore and best.endswith(HEH + ZWNJ + "ای") and key.endswith("های"):
            # سفرهای: سفره‌ای or سفر‌های? the glued count cannot tell; the restorer's
            # ambiguity rule decides at run time
            restore = key[:-3] not in words and key[:-3] not in first_tokens
        if restore:
            flags.setdefault(best, set()).add(F_JOIN)
        for spelling in spellings:
            if apart(spelling):
                counts[spelling] = apart(spelling)
            parts = spelling.split(ZWNJ)
            if len(parts) > 3 or spelling in verbs or parts[-1] in verbs:
                continue
            if parts[0] in ("می", "نمی") or pronoun_apart(spelling):
                continue  # the می rule and the clitic rule decide those
            c_z, c_s = seen[spelling], spaced[spelling]
            function_part = any(
                p in FUNCTION_WORDS and not (p == "و" and 0 < i < len(parts) - 1)
                for i, p in enumerate(parts)
            )
            if function_part:
                # a function word inside: only with clear evidence (بین‌المللی)
                ok = c_z >= 3 and c_z >= c_s
            elif strong(spelling):
                ok = True  # a compound hazm's dictionary lists: رئیس‌جمهور, برنامه‌ریزی
            elif spelling in listed:
                # another dictionary's compound: trusted unless the counts see it
                # written apart clearly more often (three times or more)
                ok = c_z + c_s < 3 or c_z >= spaced_ratio * c_s
            else:
                ok = c_z + c_s >= 3 and c_z >= spaced_ratio * c_s and c_z > 0
            if ok:
                flags.setdefault(spelling, set()).add(F_SPACED)

    for word, (_, pos) in words.items():
        if ZWNJ in word:
            continue
        restored = any(F_JOIN in flags.get(s, ()) for s in by_key.get(word, ()))
        if restored:
            continue
        # hazm's list holds real words and glued web spellings alike (``کتابها``,
        # ``میشود``, both with frequency 0 and no part of speech): only words with a
        # frequency or a part of speech are known whole; the others are known stems
        flags.setdefault(word, set()).add(F_WHOLE if strong(word) else F_KNOWN)
        if "AJ" in pos.split(","):
            flags.setdefault(word, set()).add(F_ADJ)
    for word in verbs:
        flags.setdefault(word, set()).add(F_VERB)
    for word, count in tokens.items():
        if ZWNJ in word:
            continue
        if count >= min_news and not flags.get(word):
            restored = any(F_JOIN in flags.get(s, ()) for s in by_key.get(word, ()))
            if not restored:
                flags.setdefault(word, set()).add(F_KNOWN)
        if word in flags:
            counts[word] = count

    order = (F_JOIN, F_SPACED, F_WHOLE, F_KNOWN, F_ADJ, F_VERB)
    return sorted(
        (word, "".join(f for f in order if f in fl), counts.get(word, 0))
        for word, fl in flags.items()
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m khabar.pipeline.train.zwnj_lexicon")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=LEXICON_PATH)
    parser.add_argument("--spaced-ratio", type=float, default=0.5)
    parser.add_argument("--join-ratio", type=float, default=0.15)
    parser.add_argument(
        "--sources", nargs="*", default=list(DEFAULT_SOURCES),
        help="word lists in pipeline/train/zwnj_sources to add (none: hazm and counts only)",
    )
    args = parser.parse_args(argv)
    if not (args.data / "farsnews.jsonl").exists():
        print(f"zwnj_lexicon: error: no news-fa in {args.data}", file=sys.stderr)
        return 2
    rows = build(args.data, args.spaced_ratio, args.join_ratio, sources=args.sources)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(args.out, "wb", mtime=0) as raw:
        raw.write(
            b"# word\tflags (J join when glued, S join when spaced, W whole, K known, "
            b"A adjective, V verb form)\tcount in the training part of news-fa\n"
        )
        raw.write("".join(f"{w}\t{f}\t{c}\n" for w, f, c in rows).encode("utf-8"))
    kinds = Counter(ch for _, f, _ in rows for ch in f)
    print(f"wrote {args.out}: {len(rows):,} entries, " + ", ".join(
        f"{k} {kinds[k]:,}" for k in "JSWKAV"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
