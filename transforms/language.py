"""Language identification: a Beam-free detector plus the ``DetectLanguage`` stage.

How it decides (all data ships in ``transforms/langid_data``, nothing is downloaded):

1. URLs, e-mail addresses and @handles are removed; the text is lower-cased and split into
   words of Unicode letters (digits and punctuation are ignored).
2. The dominant script (ISO 15924) is the script with most letters. Scripts used by one
   supported language decide alone (Greek → el, Hangul → ko, Thai → th, kana → ja, ...).
3. For scripts shared by several languages (Latin, Cyrillic, Arabic, Devanagari) a character
   n-gram (n = 1..5) naive-Bayes model scores the candidate languages with that script. The
   n-gram tables are hashed into one sorted ``uint64`` key array with a CSR list of
   ``(language, log-probability)`` entries per key; a text is scored with a handful of
   vectorised numpy operations (backing off from a missing n-gram to its prefix, as
   lingua does). The tables come from lingua 1.3.5's models (see ``langid_data/README.md``).
4. Letter rules: characters used by only one language of a script (lingua's rule set, plus
   Arabic-script rules for Pashto, Sorani Kurdish, Uyghur and Urdu) restrict or decide.

Persian written with Arabic yeh/kaf (ي ك) is handled by the Persian model itself, which holds
both spellings of every n-gram.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from transforms.common import run_stage

DATA_DIR = Path(__file__).resolve().parent / "langid_data"
MODEL_FILE = DATA_DIR / "ngrams.npz"
META_FILE = DATA_DIR / "meta.json"

MAX_ORDER = 5
#: Texts with at least this many letters are scored with n-grams up to LONG_TEXT_ORDER only.
LONG_TEXT_LETTERS = 120
LONG_TEXT_ORDER = 3
#: Characters of an article considered at most (title + lead + start of body).
ARTICLE_CHARS = 2000
#: Characters of any text considered at most.
TEXT_CHARS = 4000
#: Fixed-point scale of the stored log-probabilities (value = -q / SCALE).
LOGP_SCALE = 16.0

_MULT = np.uint64(0x100000001B3)
_SALTS = (
    np.uint64(0),
    np.uint64(0x9E3779B97F4A7C15),
    np.uint64(0xC2B2AE3D27D4EB4F),
    np.uint64(0x165667B19E3779F9),
    np.uint64(0x27D4EB2F165667C5),
    np.uint64(0xD6E8FEB86659FD93),
)

_INV_SCALE = np.float32(-1.0 / LOGP_SCALE)

#: Share of words that must be Pashto marker words to call letter-less Arabic script Pashto.
PASHTO_WORD_SHARE = 0.15
UND = "und"
NO_SCRIPT = "Zyyy"
UNKNOWN_SCRIPT = "Zzzz"

# (first, last, ISO 15924) code point ranges of the scripts told apart here.
_SCRIPT_RANGES: tuple[tuple[int, int, str], ...] = (
    (0x0041, 0x024F, "Latn"),
    (0x1E00, 0x1EFF, "Latn"),
    (0x2C60, 0x2C7F, "Latn"),
    (0xA720, 0xA7FF, "Latn"),
    (0xFF21, 0xFF5A, "Latn"),
    (0x0370, 0x03FF, "Grek"),
    (0x1F00, 0x1FFF, "Grek"),
    (0x0400, 0x052F, "Cyrl"),
    (0x1C80, 0x1C8F, "Cyrl"),
    (0x2DE0, 0x2DFF, "Cyrl"),
    (0xA640, 0xA69F, "Cyrl"),
    (0x0530, 0x058F, "Armn"),
    (0x0590, 0x05FF, "Hebr"),
    (0xFB1D, 0xFB4F, "Hebr"),
    (0x0600, 0x06FF, "Arab"),
    (0x0750, 0x077F, "Arab"),
    (0x08A0, 0x08FF, "Arab"),
    (0xFB50, 0xFDFF, "Arab"),
    (0xFE70, 0xFEFF, "Arab"),
    (0x0700, 0x074F, "Syrc"),
    (0x0780, 0x07BF, "Thaa"),
    (0x0900, 0x097F, "Deva"),
    (0x0980, 0x09FF, "Beng"),
    (0x0A00, 0x0A7F, "Guru"),
    (0x0A80, 0x0AFF, "Gujr"),
    (0x0B00, 0x0B7F, "Orya"),
    (0x0B80, 0x0BFF, "Taml"),
    (0x0C00, 0x0C7F, "Telu"),
    (0x0C80, 0x0CFF, "Knda"),
    (0x0D00, 0x0D7F, "Mlym"),
    (0x0D80, 0x0DFF, "Sinh"),
    (0x0E00, 0x0E7F, "Thai"),
    (0x0E80, 0x0EFF, "Laoo"),
    (0x0F00, 0x0FFF, "Tibt"),
    (0x1000, 0x109F, "Mymr"),
    (0x10A0, 0x10FF, "Geor"),
    (0x1C90, 0x1CBF, "Geor"),
    (0x1100, 0x11FF, "Hang"),
    (0x3130, 0x318F, "Hang"),
    (0xAC00, 0xD7AF, "Hang"),
    (0x1200, 0x139F, "Ethi"),
    (0x1780, 0x17FF, "Khmr"),
    (0x1800, 0x18AF, "Mong"),
    (0x3040, 0x309F, "Hira"),
    (0x30A0, 0x30FF, "Kana"),
    (0x31F0, 0x31FF, "Kana"),
    (0xFF66, 0xFF9F, "Kana"),
    (0x3400, 0x4DBF, "Hani"),
    (0x4E00, 0x9FFF, "Hani"),
    (0xF900, 0xFAFF, "Hani"),
)

#: Scripts written (among the supported languages) by one language only.
SINGLE_LANGUAGE_SCRIPTS: dict[str, str] = {
    "Grek": "el",
    "Armn": "hy",
    "Hebr": "he",
    "Geor": "ka",
    "Hang": "ko",
    "Thai": "th",
    "Beng": "bn",
    "Gujr": "gu",
    "Guru": "pa",
    "Taml": "ta",
    "Telu": "te",
    "Hani": "zh",
}

# Arabic-script letters that mark one language (or a small group) of the Arabic-script ones.
PASHTO_LETTERS = "ټډړښږځڅګڼۍ"  # and ې, which Uyghur shares
SORANI_ONLY_LETTERS = "ڵڕێ"
UYGHUR_ONLY_LETTERS = "ۈۇۋ"
UYGHUR_SORANI_LETTERS = "ۆە"
URDU_LETTERS = "ٹڈڑںےۓ"

_ARABIC_WORD_RE = re.compile(r"[\u0620-\u064a\u066e-\u06d3\u06d5\u06fa-\u06ff]+")
_URL_RE = re.compile(
    r"(?:https?://|ftp://|www\.)\S+"
    r"|\S+@\S+\.\w+"
    r"|(?<!\w)[@#]\w+"
    r"|\b[\w-]+(?:\.[\w-]+)*\.(?:com|org|net|ir|info|io|gov|edu|co|uk|de|fr|ru)\b\S*",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class LanguageResult:
    language: str
    confidence: float
    script: str


UNDETERMINED = LanguageResult(UND, 0.0, NO_SCRIPT)


# --------------------------------------------------------------------------- hashing


def hash_ngram_matrix(codepoints: np.ndarray) -> np.ndarray:
    """Keys of n-grams given as an ``(N, n)`` matrix of code points (used by training)."""
    n = codepoints.shape[1]
    cps = codepoints.astype(np.uint64) + np.uint64(1)
    h = cps[:, 0].copy()
    for k in range(1, n):
        h = h * _MULT + cps[:, k]
    return h ^ _SALTS[n]


def hash_ngrams(ngrams: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
    """Keys of arbitrary n-grams (1..MAX_ORDER code points); returns ``(keys, order)``."""
    items = list(ngrams)
    keys = np.zeros(len(items), dtype=np.uint64)
    lengths = np.fromiter((len(s) for s in items), dtype=np.int64, count=len(items))
    for n in range(1, MAX_ORDER + 1):
        idx = np.nonzero(lengths == n)[0]
        if idx.size == 0:
            continue
        blob = "".join(items[i] for i in idx).encode("utf-32-le")
        mat = np.frombuffer(blob, dtype=np.uint32).reshape(idx.size, n)
        keys[idx] = hash_ngram_matrix(mat)
    return keys, lengths


@lru_cache(maxsize=1)
def _char_tables() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """(is-letter table, script-id table) for the Basic Multilingual Plane, and script names."""
    is_letter = np.zeros(0x10000, dtype=bool)
    for cp in range(0x10000):
        if unicodedata.category(chr(cp)).startswith("L"):
            is_letter[cp] = True
    names: list[str] = [UNKNOWN_SCRIPT]
    script = np.zeros(0x10000, dtype=np.uint8)
    for first, last, name in _SCRIPT_RANGES:
        if name not in names:
            names.append(name)
        script[first : last + 1] = names.index(name)
    script[~is_letter] = 0
    return is_letter, script, tuple(names)


# --------------------------------------------------------------------------- model


class _Model:
    """The shipped n-gram tables and rule data."""

    def __init__(self, model_file: Path = MODEL_FILE, meta_file: Path = META_FILE) -> None:
        with np.load(model_file) as data:
            keys = data["key_deltas"]
            np.cumsum(keys, out=keys)
            self.keys: np.ndarray = keys
            counts = data["counts"]
            self.langs: np.ndarray = data["langs"]
            self.logq: np.ndarray = data["logq"]
        self.offsets = np.zeros(counts.size + 1, dtype=np.int32)
        np.cumsum(counts, out=self.offsets[1:])
        del counts
        meta: dict[str, Any] = json.loads(meta_file.read_text(encoding="utf-8"))
        self.languages: list[str] = meta["languages"]
        self.index = {code: i for i, code in enumerate(self.languages)}
        self.scripts: dict[str, list[str]] = meta["scripts"]
        self.unique_chars: dict[str, str] = meta["unique_characters"]
        self.char_groups: list[tuple[str, list[str]]] = [
            (chars, langs) for chars, langs in meta["char_groups"]
        ]
        self.pashto_words: frozenset[str] = frozenset(meta.get("pashto_words", ()))


class LanguageDetector:
    """Detect the language of (news) text. Build once per worker; thread-compatible."""

    def __init__(self) -> None:
        self._model = _Model()
        self._is_letter, self._script_of, self._script_names = _char_tables()
        m = self._model
        self._n_lang = len(m.languages)
        self._script_masks: dict[str, np.ndarray] = {}
        for script, codes in m.scripts.items():
            mask = np.zeros(self._n_lang, dtype=bool)
            mask[[m.index[c] for c in codes if c in m.index]] = True
            self._script_masks[script] = mask
        self._unique_owner: dict[str, str] = {}
        for code, chars in m.unique_chars.items():
            for ch in chars:
                self._unique_owner[ch] = code
        self._rule_chars = frozenset(self._unique_owner) | frozenset(
            ch for chars, _ in m.char_groups for ch in chars
        )
        self._char_groups = [(frozenset(chars), langs) for chars, langs in m.char_groups]
        self._pashto_words = m.pashto_words

    # ------------------------------------------------------------------ public API

    def detect_text(self, text: str) -> LanguageResult:
        return self._detect(text[:TEXT_CHARS])

    def detect_article(self, title: str, lead: str, body: str) -> LanguageResult:
        parts = [p for p in (title or "", lead or "", body or "") if p]
        text = " \n ".join(parts)
        return self._detect(text[:ARTICLE_CHARS])

    def language_codes(self) -> list[str]:
        """All language codes the detector can return (besides ``und``)."""
        return list(self._model.languages)

    # ------------------------------------------------------------------ internals

    def _detect(self, text: str) -> LanguageResult:
        if not text:
            return UNDETERMINED
        text = _URL_RE.sub(" ", text).lower()
        cps = np.frombuffer(text.encode("utf-32-le", "replace"), dtype=np.uint32)
        bmp = cps < 0x10000
        cps_bmp = np.where(bmp, cps, 0)
        letters = self._is_letter[cps_bmp] | (~bmp & (cps >= 0x20000) & (cps < 0x31350))
        n_letters = int(letters.sum())
        if n_letters == 0:
            return UNDETERMINED
        script_ids = np.where(bmp, self._script_of[cps_bmp], self._script_names.index("Hani"))
        counts = np.bincount(script_ids[letters], minlength=len(self._script_names))
        script = self._dominant_script(counts)
        if script == UNKNOWN_SCRIPT:
            return LanguageResult(UND, 0.0, script)
        if n_letters < 2 and script not in SINGLE_LANGUAGE_SCRIPTS and script != "Hira":
            return LanguageResult(UND, 0.0, script)
        if script in ("Hani", "Hira", "Kana"):
            names = self._script_names
            kana = counts[names.index("Hira")] + counts[names.index("Kana")]
            if kana > 0:
                return LanguageResult("ja", 1.0, "Jpan" if script != "Hani" else "Hani")
            return LanguageResult("zh", 1.0, "Hani")
        single = SINGLE_LANGUAGE_SCRIPTS.get(script)
        if single is not None:
            return LanguageResult(single, 1.0, script)
        mask = self._script_masks.get(script)
        if mask is None:
            return LanguageResult(UND, 0.0, script)
        # keep only letters of the dominant script for the n-gram model
        in_script = letters & (script_ids == self._script_names.index(script))
        words = None
        if not self._rule_chars.isdisjoint(text):
            words = _words(text, in_script)
            decided = self._unique_char_rule(words)
            if decided is not None and mask[self._model.index[decided]]:
                return LanguageResult(decided, 1.0, script)
            mask = self._filter_by_char_groups(words, mask)
        if script == "Arab":
            mask = self._arabic_rules(text, mask)
        candidates = np.nonzero(mask)[0]
        if candidates.size == 1:
            return LanguageResult(self._model.languages[int(candidates[0])], 1.0, script)
        max_order = MAX_ORDER if int(in_script.sum()) < LONG_TEXT_LETTERS else LONG_TEXT_ORDER
        scores = self._score(cps, in_script, candidates, max_order)
        if scores is None:
            return LanguageResult(UND, 0.0, script)
        best = int(np.argmax(scores))
        shifted = np.exp(scores - scores[best])
        confidence = float(1.0 / shifted.sum())
        return LanguageResult(self._model.languages[int(candidates[best])], confidence, script)

    def _dominant_script(self, counts: np.ndarray) -> str:
        names = self._script_names
        merged = counts.copy()
        hani, hira, kana = names.index("Hani"), names.index("Hira"), names.index("Kana")
        if merged[hira] + merged[kana] > 0:
            # Japanese mixes kanji and kana: count them together as one script
            total = merged[hani] + merged[hira] + merged[kana]
            merged[hani] = 0
            merged[hira] = total
            merged[kana] = 0
        best = int(np.argmax(merged))
        return names[best]

    def _unique_char_rule(self, words: list[str]) -> str | None:
        """lingua's rule: letters used by exactly one language decide if most words agree."""
        totals: Counter[str | None] = Counter()
        for word in words:
            found: Counter[str] = Counter()
            for ch in word:
                owner = self._unique_owner.get(ch)
                if owner is not None:
                    found[owner] += 1
            if not found:
                totals[None] += 1
            elif len(found) == 1:
                totals[next(iter(found))] += 1
            else:
                (first, c1), (_, c2) = found.most_common(2)
                totals[first if c1 > c2 else None] += 1
        if totals[None] < len(words) * 0.5:
            del totals[None]
        if len(totals) != 1:
            if len(totals) > 1:
                (first, c1), (_, c2) = totals.most_common(2)
                if c1 > c2 and first is not None:
                    return first
            return None
        return next(iter(totals))

    def _filter_by_char_groups(self, words: list[str], mask: np.ndarray) -> np.ndarray:
        """lingua's filter: letters shared by a few languages restrict the candidates."""
        counts = np.zeros(self._n_lang, dtype=np.int64)
        idx = self._model.index
        for chars, langs in self._char_groups:
            hits = sum(1 for word in words for ch in chars if ch in word)
            if hits:
                for code in langs:
                    if code in idx:
                        counts[idx[code]] += hits
        subset = mask & (counts >= len(words) * 0.5)
        return subset if subset.any() else mask

    def _arabic_rules(self, text: str, mask: np.ndarray) -> np.ndarray:
        """Letters and function words that tell Pashto, Sorani, Uyghur and Urdu apart."""
        idx = self._model.index
        ps = sum(text.count(c) for c in PASHTO_LETTERS)
        ug = sum(text.count(c) for c in UYGHUR_ONLY_LETTERS)
        ckb = sum(text.count(c) for c in SORANI_ONLY_LETTERS)
        ug_or_ckb = sum(text.count(c) for c in UYGHUR_SORANI_LETTERS)
        ur = sum(text.count(c) for c in URDU_LETTERS)
        if ug and ug >= ckb:
            chosen: tuple[str, ...] = ("ug",)
        elif ckb or ug_or_ckb > ps:
            chosen = ("ckb",)
        elif ps + text.count("ې") > ur:
            chosen = ("ps",)
        elif ur:
            chosen = ("ur",)
        elif self._pashto_words and self._pashto_evidence(text):
            chosen = ("ps",)
        else:
            chosen = tuple(c for c in ("ar", "fa", "ur") if c in idx)
        keep = np.zeros_like(mask)
        for code in chosen:
            if code in idx:
                keep[idx[code]] = True
        keep &= mask
        return keep if keep.any() else mask

    def _pashto_evidence(self, text: str) -> bool:
        """Enough Pashto-only function words (for text without any Pashto-only letter)."""
        words = _ARABIC_WORD_RE.findall(text)
        hits = sum(1 for w in words if w in self._pashto_words)
        return hits > 0 and hits >= PASHTO_WORD_SHARE * len(words)

    def _score(
        self, cps: np.ndarray, letters: np.ndarray, candidates: np.ndarray, max_order: int
    ) -> np.ndarray | None:
        """Naive-Bayes scores of the candidate languages (None when no n-gram is known)."""
        m = self._model
        t = cps.size
        h = cps.astype(np.uint64) + np.uint64(1)
        nonletter = np.zeros(t + 1, dtype=np.int32)
        np.cumsum(~letters, out=nonletter[1:])
        key_parts: list[np.ndarray] = []
        prefix_parts: list[np.ndarray] = []
        order_parts: list[np.ndarray] = []
        offset = 0
        prev_rank: np.ndarray | None = None
        prev_offset = 0
        cur = h
        for n in range(1, max_order + 1):
            if n > 1:
                cur = cur[:-1] * _MULT + h[n - 1 :]
            if cur.size == 0:
                break
            valid = (nonletter[n:] - nonletter[: t - n + 1]) == 0
            pos = np.nonzero(valid)[0]
            if pos.size == 0:
                break
            key_parts.append(cur[pos] ^ _SALTS[n])
            order_parts.append(np.full(pos.size, n, dtype=np.int8))
            if prev_rank is None:
                prefix_parts.append(np.full(pos.size, -1, dtype=np.int64))
            else:
                prefix_parts.append(prev_offset + prev_rank[pos])
            rank = np.cumsum(valid) - 1
            prev_rank, prev_offset = rank, offset
            offset += pos.size
        if not key_parts:
            return None
        all_keys = np.concatenate(key_parts)
        uniq, first, inverse = np.unique(all_keys, return_index=True, return_inverse=True)
        order = np.concatenate(order_parts)[first]
        prefix_occ = np.concatenate(prefix_parts)[first]
        prefix = np.where(prefix_occ >= 0, inverse[np.maximum(prefix_occ, 0)], -1)

        pos_in_model = np.searchsorted(m.keys, uniq)
        pos_in_model[pos_in_model >= m.keys.size] = 0
        found = m.keys[pos_in_model] == uniq
        rows = np.nonzero(found)[0]
        n_cand = candidates.size
        col_of = np.full(self._n_lang, -1, dtype=np.intp)
        col_of[candidates] = np.arange(n_cand)
        values = np.full((uniq.size, n_cand), np.nan, dtype=np.float32)
        if rows.size:
            starts = m.offsets[pos_in_model[rows]]
            lengths = m.offsets[pos_in_model[rows] + 1] - starts
            total = int(lengths.sum())
            entry_rows = np.repeat(rows, lengths)
            base = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
            entries = base + np.arange(total)
            cols = col_of[m.langs[entries]]
            keep = cols >= 0
            values[entry_rows[keep], cols[keep]] = m.logq[entries[keep]] * _INV_SCALE
        for n in range(2, max_order + 1):
            r = np.nonzero(order == n)[0]
            if r.size == 0:
                break
            sub = values[r]
            missing = np.isnan(sub)
            if missing.any():
                sub[missing] = values[prefix[r]][missing]
                values[r] = sub
        unigram_hits = (~np.isnan(values[order == 1])).sum(axis=0)
        sums = np.nansum(values, axis=0)
        ok = unigram_hits > 0
        if not ok.any():
            return None
        scores = np.full(n_cand, -np.inf, dtype=np.float64)
        scores[ok] = sums[ok] / unigram_hits[ok]
        return scores


def _words(text: str, letters: np.ndarray) -> list[str]:
    chars = [ch if ok else " " for ch, ok in zip(text, letters.tolist(), strict=False)]
    return "".join(chars).split()


# --------------------------------------------------------------------------- Beam stage


def detect_language_core() -> Callable[[dict], dict]:
    """Factory called once per worker: returns a function that takes an article dict with str
    keys 'title','lead','body' and returns it with 'language','language_confidence','script'
    set."""
    detector = LanguageDetector()
    counters: dict[str, Any] = {}

    def core(article: dict) -> dict:
        result = detector.detect_article(
            article.get("title") or "", article.get("lead") or "", article.get("body") or ""
        )
        article["language"] = result.language
        article["language_confidence"] = result.confidence
        article["script"] = result.script
        counter = counters.get(result.language)
        if counter is None:
            counter = counters[result.language] = Metrics.counter("language", result.language)
        counter.inc()
        return article

    return core


class DetectLanguage(beam.PTransform):
    """Set 'language', 'language_confidence' and 'script' on every article."""

    def expand(self, pcoll):
        return run_stage(pcoll, "DetectLanguage", "language", detect_language_core)
