"""Language identification: a Beam-free detector and the ``DetectLanguage`` stage's core.

How it decides (all data ships in ``transforms/langid_data``, nothing is downloaded):

1. URLs, e-mail addresses and @handles are removed; the text is lower-cased and split into
   words of Unicode letters (digits and punctuation are ignored).
2. The dominant script (ISO 15924) is the script with most letters. Scripts used by one
   supported language decide alone (Greek → el, Hangul → ko, Thai → th, kana → ja, ...).
3. For scripts shared by several languages (Latin, Cyrillic, Arabic, Devanagari) a character
   n-gram (n = 1..5) naive-Bayes model scores the candidate languages with that script, as
   lingua's high-accuracy mode does (distinct n-grams, a missing n-gram backing off to its
   prefix). The model stores per (n-gram, language) the *delta* between the n-gram's
   log-probability and its prefix's backed-off value, so a text's score is one weighted
   ``bincount`` over the entries of its n-grams (weight: how many of the text's n-grams
   extend that one). Keys are 61-bit hashes found through 2^22 hash buckets and 16-bit
   fingerprints. The tables come from lingua 1.3.5's models (see ``langid_data/README.md``).
4. Letter rules: characters used by only one language of a script (lingua's rule set, plus
   Arabic-script rules for Pashto, Sorani Kurdish, Uyghur and Urdu) restrict or decide.
5. A word model (``words.npz``: word frequencies of 35 languages from wordfreq, and Pashto
   word lists) re-ranks the close contenders: per language, the sum over the text's words of
   log word frequency (floored at ``WORD_FLOOR``) plus ``WORD_NGRAM_WEIGHT`` x the n-gram
   score per word, plus a prior. Arabic script without a deciding letter (most Persian and
   Arabic, half of short Pashto) is always decided this way among ar, fa, ur and ps (word
   frequencies tell Persian ``سره`` from Pashto ``سره`` where letters cannot). In other
   scripts it only re-ranks the languages within ``WORD_MARGIN`` of the best n-gram score, and
   only when all of them have a word list, so languages without one are never pushed aside.

Persian written with Arabic yeh/kaf (ي ك) is handled by the Persian model itself, which holds
both spellings of every n-gram (and of every word).
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

import numpy as np

from khabar.transforms import metrics as M
from khabar.transforms.common import Count, no_count
from khabar.transforms.langid_kernel import score_ngrams, word_keys, word_sums

DATA_DIR = Path(__file__).resolve().parent / "langid_data"
MODEL_FILE = DATA_DIR / "ngrams.npz"
META_FILE = DATA_DIR / "meta.json"
WORDS_FILE = DATA_DIR / "words.npz"

MAX_ORDER = 5
#: Texts with at least this many letters are scored with n-grams up to LONG_TEXT_ORDER only.
LONG_TEXT_LETTERS = 120
LONG_TEXT_ORDER = 3
#: Characters of an article considered at most (title + lead + start of body).
ARTICLE_CHARS = 2000
#: Characters of any text considered at most.
TEXT_CHARS = 4000
#: Fixed-point scale of the stored log-probability deltas (value = delta / SCALE).
LOGP_SCALE = 8.0

_MULT = np.uint64(0x100000001B3)
_SALTS = (
    np.uint64(0),
    np.uint64(0x9E3779B97F4A7C15),
    np.uint64(0xC2B2AE3D27D4EB4F),
    np.uint64(0x165667B19E3779F9),
    np.uint64(0x27D4EB2F165667C5),
    np.uint64(0xD6E8FEB86659FD93),
)

_SALT_ARRAY = np.array(_SALTS, dtype=np.uint64)
_MIX1 = np.uint64(0xFF51AFD7ED558CCD)
_MIX2 = np.uint64(0xC4CEB9FE1A85EC53)
#: Hash buckets of the model (bits 39..60 of a key).
N_BUCKETS = 1 << 22
#: Smallest key of each order (keys carry their order in the top three bits).
_ORDER_STARTS = np.array([n << 61 for n in range(MAX_ORDER + 2)], dtype=np.uint64)
_ORDER_RANGE = np.arange(MAX_ORDER + 1)
#: Row i: the orders 1..MAX_ORDER (sliced per text instead of a per-call ``broadcast_to``).
_ORDER_TILE = np.tile(_ORDER_RANGE[1:], (TEXT_CHARS, 1))
#: Slots of a bucket compared at once by a lookup.
LOOKUP_WIDTH = 6
_WIDTH_RANGE = np.arange(LOOKUP_WIDTH)

#: Languages of the word model (``words.npz``): those wordfreq has a list for, and Pashto.
WORD_MODEL_LANGUAGES = (
    "ar bg ca cs da de en es fa fi fr hi hu id is it lt lv mk ms nb nl pl pt ro ru sk sl sv tl "
    "tr uk ur vi ps"
).split()
#: Arabic-script languages decided by the word model when no letter decides.
ARABIC_WORD_LANGUAGES = ("ar", "fa", "ur", "ps")
#: Frequency given to a word a language's list does not hold.
WORD_FLOOR = 1e-8
#: Weight of the n-gram score (per word) beside the word log-frequencies.
WORD_NGRAM_WEIGHT = 0.3
#: Outside Arabic script, the word model re-ranks the languages whose n-gram score is within
#: this of the best one.
WORD_MARGIN = 0.5
#: Log prior of a word-model language: Pashto is the rarest in news feeds and its word
#: distribution is the roughest (word lists, not counts), so it must win by a margin.
WORD_PRIORS = {"ps": -2.0}
#: Stand-in n-gram score of a language that knows none of the text's letters.
NO_NGRAM_SCORE = -30.0
#: Pashto words are looked up with Arabic yeh/kaf folded into the Persian letters.
PASHTO_FOLD = str.maketrans("يكى", "یکی")
UND = "und"
NO_SCRIPT = "Zyyy"
UNKNOWN_SCRIPT = "Zzzz"

# (first, last, ISO 15924) code point ranges of the scripts told apart here.
_SCRIPT_RANGES: tuple[tuple[int, int, str], ...] = (
    (0x0041, 0x02AF, "Latn"),  # Latin letters through IPA extensions (Azerbaijani ə)
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

_URL_RE = re.compile(
    r"(?:https?://|ftp://|www\.)\S+"
    r"|\S+@\S+\.\w+"
    r"|(?<!\w)[@#]\w+"
    r"|\b[\w-]+(?:\.[\w-]+)*\.(?:com|org|net|ir|info|io|gov|edu|co|uk|de|fr|ru)\b\S*",
    re.IGNORECASE,
)


#: Cheap test for text that may hold something ``_URL_RE`` removes (most text holds none).
_URL_HINT_RE = re.compile(
    r"://|www\.|@|#|\.(?:com|org|net|ir|info|io|gov|edu|co|uk|de|fr|ru)\b", re.IGNORECASE
)


@dataclass(frozen=True)
class LanguageResult:
    language: str
    confidence: float
    script: str


UNDETERMINED = LanguageResult(UND, 0.0, NO_SCRIPT)


# --------------------------------------------------------------------------- hashing


def _finish(h: np.ndarray, n: np.ndarray | int) -> np.ndarray:
    """Final key of raw polynomial hashes of order ``n``: a 61-bit mix, order in the top bits.

    Keys therefore sort by order; bits 39..60 pick the model's hash bucket and bits 23..38
    are the 16-bit fingerprint stored in the model.
    """
    k = h ^ (_SALT_ARRAY[n] if isinstance(n, np.ndarray) else _SALTS[n])
    k = k ^ (k >> np.uint64(33))
    k = k * _MIX1
    k = k ^ (k >> np.uint64(33))
    k = k * _MIX2
    k = k ^ (k >> np.uint64(33))
    order = n.astype(np.uint64) if isinstance(n, np.ndarray) else np.uint64(n)
    return (order << np.uint64(61)) | (k >> np.uint64(3))


def hash_ngram_matrix(codepoints: np.ndarray) -> np.ndarray:
    """Keys of n-grams given as an ``(N, n)`` matrix of code points (used by training)."""
    n = codepoints.shape[1]
    cps = codepoints.astype(np.uint64) + np.uint64(1)
    h = cps[:, 0].copy()
    for k in range(1, n):
        h = h * _MULT + cps[:, k]
    return _finish(h, n)


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


def bucket_and_fingerprint(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bucket index, 16-bit fingerprint) of final keys."""
    bucket = ((keys >> np.uint64(39)) & np.uint64(N_BUCKETS - 1)).astype(np.intp)
    fp = ((keys >> np.uint64(23)) & np.uint64(0xFFFF)).astype(np.uint16)
    return bucket, fp


@lru_cache(maxsize=1)
def char_tables() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
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
    """The shipped n-gram tables and rule data.

    ``ngrams.npz`` holds, for every stored n-gram key, its bucket (``bucket_counts``: keys per
    bucket), its 16-bit fingerprint (``fingerprints``, sorted within a bucket) and its CSR list
    of ``(language, delta)`` entries (``counts``, ``langs``, ``deltas``). A delta is the
    n-gram's log-probability minus the value its prefix gives the language (its own or, where
    missing, its prefix's, down to the unigram), times ``LOGP_SCALE``. So the backed-off
    log-probability of any n-gram is the sum of the deltas along its prefix chain, and a text
    is scored with one weighted ``bincount``.
    """

    def __init__(
        self,
        model_file: Path = MODEL_FILE,
        meta_file: Path = META_FILE,
        words_file: Path = WORDS_FILE,
    ) -> None:
        with np.load(model_file) as data:
            bucket_counts = data["bucket_counts"]
            self.fingerprints: np.ndarray = data["fingerprints"]
            counts = data["counts"]
            self.langs: np.ndarray = data["langs"]
            self.deltas: np.ndarray = data["deltas"]  # int8, log-probability x LOGP_SCALE
        self.starts = np.zeros(bucket_counts.size + 1, dtype=np.int32)
        np.cumsum(bucket_counts, out=self.starts[1:])
        self.max_bucket = int(bucket_counts.max())
        self.offsets = np.zeros(counts.size + 1, dtype=np.int32)
        np.cumsum(counts, out=self.offsets[1:])
        del counts, bucket_counts
        meta: dict[str, Any] = json.loads(meta_file.read_text(encoding="utf-8"))
        self.languages: list[str] = meta["languages"]
        self.index = {code: i for i, code in enumerate(self.languages)}
        self.scripts: dict[str, list[str]] = meta["scripts"]
        self.unique_chars: dict[str, str] = meta["unique_characters"]
        self.char_groups: list[tuple[str, list[str]]] = [
            (chars, langs) for chars, langs in meta["char_groups"]
        ]
        with np.load(words_file) as data:
            self.word_keys: np.ndarray = data["keys"]
            self.word_langs: np.ndarray = data["langs"]
            self.word_centibels: np.ndarray = data["centibels"]
            word_counts = data["counts"]
        self.word_offsets = np.zeros(word_counts.size + 1, dtype=np.int64)
        np.cumsum(word_counts, out=self.word_offsets[1:])

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(indices into ``keys`` that are stored, their row numbers in the model)."""
        bucket, fp = bucket_and_fingerprint(keys)
        lo = self.starts[bucket]
        size = self.starts[bucket + 1] - lo
        width = min(LOOKUP_WIDTH, self.max_bucket)
        slots = np.minimum(lo[:, None] + _WIDTH_RANGE[:width], self.fingerprints.size - 1)
        match = (self.fingerprints[slots] == fp[:, None]) & (_WIDTH_RANGE[:width] < size[:, None])
        hit = match.any(axis=1)
        idx = np.flatnonzero(hit)
        rows = lo[idx] + match[idx].argmax(axis=1)
        if self.max_bucket > width:
            # rare: buckets longer than the probe width
            rest = np.flatnonzero(~hit & (size > width))
            extra_idx, extra_rows = [], []
            for i in rest.tolist():
                seg = self.fingerprints[lo[i] + width : lo[i] + size[i]]
                j = np.flatnonzero(seg == fp[i])
                if j.size:
                    extra_idx.append(i)
                    extra_rows.append(int(lo[i]) + width + int(j[0]))
            if extra_idx:
                idx = np.concatenate([idx, np.array(extra_idx, dtype=idx.dtype)])
                rows = np.concatenate([rows, np.array(extra_rows, dtype=rows.dtype)])
                order = np.argsort(idx, kind="stable")
                idx, rows = idx[order], rows[order]
        return idx, rows


class LanguageDetector:
    """Detect the language of (news) text. Build once per worker; thread-compatible."""

    def __init__(self) -> None:
        self._model = _Model()
        self._is_letter, self._script_of, self._script_names = char_tables()
        self._cjk_ids = tuple(self._script_names.index(s) for s in ("Hani", "Hira", "Kana"))
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
        # letters with a rule, found with one C-level regex scan per word
        self._unique_re = re.compile("[" + re.escape("".join(sorted(self._unique_owner))) + "]")
        group_chars = sorted({ch for chars, _ in m.char_groups for ch in chars})
        self._group_re = re.compile("[" + re.escape("".join(group_chars)) + "]")
        # rule letter -> how many of each language's groups hold it (a language vector)
        self._group_votes: dict[str, np.ndarray] = {}
        for ch in group_chars:
            vec = np.zeros(self._n_lang, dtype=np.int64)
            for chars, langs in m.char_groups:
                if ch in chars:
                    for code in langs:
                        if code in m.index:
                            vec[m.index[code]] += 1
            self._group_votes[ch] = vec
        self._has_words = np.zeros(self._n_lang, dtype=bool)
        self._has_words[[m.index[c] for c in WORD_MODEL_LANGUAGES]] = True
        self._word_priors = np.zeros(self._n_lang)
        for code, prior in WORD_PRIORS.items():
            self._word_priors[m.index[code]] = prior
        self._pashto = m.index["ps"]
        self._floor_cb = round(-100.0 * np.log10(WORD_FLOOR))

    # ------------------------------------------------------------------ public API

    def detect_text(self, text: str) -> LanguageResult:
        return self._detect(text[:TEXT_CHARS])

    def detect_article(self, title: str, lead: str, body: str) -> LanguageResult:
        parts = [p for p in (title or "", lead or "", body or "") if p]
        text = " \n ".join(parts)
        return self._detect(text[:ARTICLE_CHARS])

    def word_log10_frequency(self, word: str, language: str) -> float | None:
        """The word model's log10 frequency of ``word`` in ``language`` (None: not listed)."""
        m = self._model
        cps = np.frombuffer(word.lower().encode("utf-32-le"), dtype=np.uint32)
        keys = word_keys(cps, np.ones(cps.size, dtype=np.bool_), language == "ps")
        if keys.size != 1 or language not in m.index:
            return None
        row = int(np.searchsorted(m.word_keys, keys[0]))
        if row >= m.word_keys.size or m.word_keys[row] != keys[0]:
            return None
        for e in range(int(m.word_offsets[row]), int(m.word_offsets[row + 1])):
            if int(m.word_langs[e]) == m.index[language]:
                return -float(m.word_centibels[e]) / 100.0
        return None

    def language_codes(self) -> list[str]:
        """All language codes the detector can return (besides ``und``)."""
        return list(self._model.languages)

    # ------------------------------------------------------------------ internals

    def _detect(self, text: str) -> LanguageResult:
        if not text:
            return UNDETERMINED
        if _URL_HINT_RE.search(text):
            text = _URL_RE.sub(" ", text)
        text = text.lower()
        cps = np.frombuffer(text.encode("utf-32-le", "replace"), dtype=np.uint32)
        if int(cps.max()) < 0x10000:  # common case: Basic Multilingual Plane only
            letters = self._is_letter[cps]
            script_ids = self._script_of[cps]
        else:
            bmp = cps < 0x10000
            cps_bmp = np.where(bmp, cps, 0)
            letters = self._is_letter[cps_bmp] | (~bmp & (cps >= 0x20000) & (cps < 0x31350))
            script_ids = np.where(bmp, self._script_of[cps_bmp], self._script_names.index("Hani"))
        n_letters = int(letters.sum())
        if n_letters == 0:
            return UNDETERMINED
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
            words = words_of(cps, in_script)
            decided = self._unique_char_rule(words)
            if decided is not None and mask[self._model.index[decided]]:
                return LanguageResult(decided, 1.0, script)
            mask = self._filter_by_char_groups(words, mask)
        use_words = False
        if script == "Arab":
            mask, use_words = self._arabic_rules(text, mask)
        candidates = np.nonzero(mask)[0]
        if candidates.size == 1:
            return LanguageResult(self._model.languages[int(candidates[0])], 1.0, script)
        max_order = MAX_ORDER if int(in_script.sum()) < LONG_TEXT_LETTERS else LONG_TEXT_ORDER
        scores = self._score(cps, in_script, candidates, max_order)
        if scores is not None or use_words:
            scores = self._word_scores(cps, in_script, candidates, scores, use_words)
        if scores is None:
            return LanguageResult(UND, 0.0, script)
        best = int(np.argmax(scores))
        shifted = np.exp(scores - scores[best])
        confidence = float(1.0 / shifted.sum())
        return LanguageResult(self._model.languages[int(candidates[best])], confidence, script)

    def _dominant_script(self, counts: np.ndarray) -> str:
        names = self._script_names
        hani, hira, kana = self._cjk_ids
        if counts[hira] + counts[kana] == 0:
            return names[int(counts.argmax())]
        # Japanese mixes kanji and kana: count them together as one script
        merged = counts.copy()
        merged[hira] = merged[hani] + merged[hira] + merged[kana]
        merged[hani] = merged[kana] = 0
        return names[int(merged.argmax())]

    def _unique_char_rule(self, words: list[str]) -> str | None:
        """lingua's rule: letters used by exactly one language decide if most words agree."""
        totals: Counter[str | None] = Counter()
        owner = self._unique_owner
        find = self._unique_re.findall
        for word in words:
            chars = find(word)
            if not chars:
                totals[None] += 1
                continue
            found = Counter(owner[ch] for ch in chars)
            if len(found) == 1:
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
        """lingua's filter: letters shared by a few languages restrict the candidates.

        A language's count is, over its groups, the number of words holding each letter of
        the group (a word with two letters of one group counts twice, as in lingua)."""
        in_words: Counter[str] = Counter()
        find = self._group_re.findall
        for word in words:
            chars = find(word)
            if chars:
                in_words.update(set(chars))
        if not in_words:
            return mask
        counts = np.zeros(self._n_lang, dtype=np.int64)
        for ch, n in in_words.items():
            counts += n * self._group_votes[ch]
        subset = mask & (counts >= len(words) * 0.5)
        return subset if subset.any() else mask

    def _arabic_rules(self, text: str, mask: np.ndarray) -> tuple[np.ndarray, bool]:
        """Letters that tell Pashto, Sorani, Uyghur and Urdu apart: the candidates left, and
        whether no letter decided (then the word model chooses among ar, fa, ur and ps)."""
        idx = self._model.index
        ps = sum(text.count(c) for c in PASHTO_LETTERS)
        ug = sum(text.count(c) for c in UYGHUR_ONLY_LETTERS)
        ckb = sum(text.count(c) for c in SORANI_ONLY_LETTERS)
        ug_or_ckb = sum(text.count(c) for c in UYGHUR_SORANI_LETTERS)
        ur = sum(text.count(c) for c in URDU_LETTERS)
        use_words = False
        if ug and ug >= ckb:
            chosen: tuple[str, ...] = ("ug",)
        elif ckb or ug_or_ckb > ps:
            chosen = ("ckb",)
        elif ps + text.count("ې") > ur:
            chosen = ("ps",)
        elif ur:
            chosen = ("ur",)
        else:
            chosen = ARABIC_WORD_LANGUAGES
            use_words = True
        keep = np.zeros_like(mask)
        for code in chosen:
            if code in idx:
                keep[idx[code]] = True
        keep &= mask
        return (keep, use_words) if keep.any() else (mask, False)

    def _word_scores(
        self,
        cps: np.ndarray,
        letters: np.ndarray,
        candidates: np.ndarray,
        ngram: np.ndarray | None,
        arabic: bool,
    ) -> np.ndarray | None:
        """Candidate scores with the word model applied (see the module docstring): to all
        candidates when ``arabic``, else to the close contenders if they all have words."""
        has = self._has_words[candidates]
        if arabic:
            if not has.all():
                return ngram
            base = np.full(candidates.size, NO_NGRAM_SCORE) if ngram is None else ngram
            close = np.ones(candidates.size, dtype=bool)
        else:
            if ngram is None or candidates.size < 2:
                return ngram
            best = int(np.argmax(ngram))
            close = ngram >= ngram[best] - WORD_MARGIN
            if not has[best] or int(close.sum()) < 2 or not has[close].all():
                return ngram
            base = ngram
        m = self._model
        keys = word_keys(cps, letters, False)
        if keys.size == 0:
            return ngram
        table = (m.word_keys, m.word_offsets, m.word_langs, m.word_centibels)
        cb = word_sums(keys, *table, self._n_lang, self._floor_cb)
        if arabic:
            # Pashto words are listed yeh/kaf-folded
            folded = word_sums(word_keys(cps, letters, True), *table, self._n_lang, self._floor_cb)
            cb[self._pashto] = folded[self._pashto]
        base = np.where(np.isfinite(base), base, NO_NGRAM_SCORE)
        words = -cb[candidates] * (np.log(10.0) / 100.0)
        scores = np.full(candidates.size, -np.inf)
        scores[close] = (
            words + WORD_NGRAM_WEIGHT * keys.size * base + self._word_priors[candidates]
        )[close]
        return scores

    def _score(
        self, cps: np.ndarray, letters: np.ndarray, candidates: np.ndarray, max_order: int
    ) -> np.ndarray | None:
        """Naive-Bayes scores of the candidate languages (None when no n-gram is known).

        Like lingua's high-accuracy mode: the distinct n-grams (n = 1..max_order) of the text,
        each scored with its log-probability or, when missing, its prefix's; the sum divided
        by the number of the text's distinct unigrams the language knows. Computed by the
        compiled kernel (``khabar.transforms.langid_kernel``); ``_score_numpy`` is the same
        in numpy.
        """
        m = self._model
        wanted = np.zeros(self._n_lang, dtype=np.bool_)
        wanted[candidates] = True
        sums, hits_all, found = score_ngrams(
            cps, letters, max_order, m.starts, m.fingerprints, m.offsets, m.langs, m.deltas, wanted
        )
        if found == 0:
            return None
        return _per_unigram(sums, hits_all[candidates], candidates)

    def _score_numpy(
        self, cps: np.ndarray, letters: np.ndarray, candidates: np.ndarray, max_order: int
    ) -> np.ndarray | None:
        """``_score`` written with numpy calls only: the reference the kernel is tested
        against (about 40 numpy calls per text, whose overhead dominates short texts)."""
        m = self._model
        t = cps.size
        # run[i]: letters from position i up to the next non-letter (capped at max_order)
        positions = np.arange(t)
        stops = np.flatnonzero(~letters)
        next_stop = np.append(stops, t)[np.searchsorted(stops, positions)]
        run = np.minimum(next_stop - positions, max_order)
        if not run.any():
            return None
        # hashes of the n-grams starting at each position, one column per order; the valid
        # ones of a row are a prefix of it, so in the flattened list an n-gram's prefix is
        # the element just before it
        h = cps.astype(np.uint64) + np.uint64(1)
        raw = np.empty((t, max_order), dtype=np.uint64)
        raw[:, 0] = h
        for n in range(1, min(max_order, t)):
            raw[: t - n, n] = raw[: t - n, n - 1] * _MULT + h[n:]
        valid = _ORDER_RANGE[:max_order] < run[:, None]
        orders = _ORDER_TILE[:t, :max_order][valid] if t <= TEXT_CHARS else None
        if orders is None:
            orders = np.broadcast_to(_ORDER_RANGE[1 : max_order + 1], (t, max_order))[valid]
        keys = _finish(raw[valid], orders)
        # np.unique(keys, return_index=True, return_inverse=True) without its overhead
        perm = keys.argsort(kind="stable")
        sorted_keys = keys[perm]
        new = np.empty(sorted_keys.size, dtype=bool)
        new[0] = True
        np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=new[1:])
        uniq = sorted_keys[new]
        first = perm[new]
        inverse = np.empty(keys.size, dtype=np.intp)
        inverse[perm] = np.cumsum(new) - 1
        # uniq is sorted by order (top bits): block boundaries of each order
        bounds = np.searchsorted(uniq, _ORDER_STARTS[: max_order + 2])
        n_uni = int(bounds[2])
        # w[u]: distinct n-grams of the text whose prefix chain contains n-gram u
        w = np.ones(uniq.size, dtype=np.float64)
        if uniq.size > n_uni:
            parent = inverse[first[n_uni:] - 1]
            for n in range(max_order, 1, -1):
                lo, hi = int(bounds[n]), int(bounds[n + 1])
                if hi > lo:
                    w += np.bincount(parent[lo - n_uni : hi - n_uni], w[lo:hi], uniq.size)
        idx, rows = m.lookup(uniq)
        if idx.size == 0:
            return None
        starts = m.offsets[rows]
        lengths = m.offsets[rows + 1] - starts
        ends = np.cumsum(lengths)
        total = int(ends[-1])
        entries = np.repeat(starts - ends + lengths, lengths) + np.arange(total)
        langs = m.langs[entries]
        sums = np.bincount(langs, np.repeat(w[idx], lengths) * m.deltas[entries], self._n_lang)
        n_uni_found = int(np.searchsorted(idx, n_uni))
        uni_entries = int(ends[n_uni_found - 1]) if n_uni_found else 0
        hits = np.bincount(langs[:uni_entries], minlength=self._n_lang)[candidates]
        return _per_unigram(sums, hits, candidates)


def _per_unigram(sums: np.ndarray, hits: np.ndarray, candidates: np.ndarray) -> np.ndarray | None:
    """Candidate scores: summed deltas (x ``LOGP_SCALE``) per distinct unigram the language
    knows (-inf where it knows none; None where no candidate knows any)."""
    ok = hits > 0
    if not ok.any():
        return None
    scores = np.full(candidates.size, -np.inf, dtype=np.float64)
    scores[ok] = sums[candidates][ok] / LOGP_SCALE / hits[ok]
    return scores


def words_of(cps: np.ndarray, letters: np.ndarray) -> list[str]:
    """The runs of ``letters`` in the code points ``cps``, as strings."""
    spaced = np.where(letters, cps, np.uint32(32)).astype(np.uint32)
    return spaced.tobytes().decode("utf-32-le").split()


# --------------------------------------------------------------------------- stage core


def detect_language_core(count: Count = no_count) -> Callable[[dict], dict]:
    """Factory called once per worker: returns a function that takes an article dict with str
    keys 'title','lead','body' and returns it with 'language','language_confidence','script'
    set, counted per language (PTransform: ``khabar.pipeline.stages.language``)."""
    detector = LanguageDetector()

    def core(article: dict) -> dict:
        result = detector.detect_article(
            article.get("title") or "", article.get("lead") or "", article.get("body") or ""
        )
        article["language"] = result.language
        article["language_confidence"] = result.confidence
        article["script"] = result.script
        count(M.LANGUAGE, result.language)
        return article

    return core
