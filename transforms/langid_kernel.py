"""Compiled (numba) scoring kernel of the language detector.

``score_ngrams`` computes exactly what ``LanguageDetector._score_numpy`` computes (the same
distinct n-grams, prefix-chain weights, model lookups and summation order, so the same
floating-point results), in one pass of machine code instead of some forty numpy calls per
text; on short texts the numpy calls' own overhead was most of the detector's time. The
function is compiled once per process (``cache=True`` keeps the machine code on disk next
to this file, or in numba's user cache when that is not writable). That cache is keyed by
this file's modification time and names the module it was compiled in
(``khabar.transforms.langid_kernel``): a cache left by the module under another name fails
to load, so renaming the module means touching this file.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_MULT = np.uint64(0x100000001B3)
_MIX1 = np.uint64(0xFF51AFD7ED558CCD)
_MIX2 = np.uint64(0xC4CEB9FE1A85EC53)
_SALTS = np.array(
    [
        0,
        0x9E3779B97F4A7C15,
        0xC2B2AE3D27D4EB4F,
        0x165667B19E3779F9,
        0x27D4EB2F165667C5,
        0xD6E8FEB86659FD93,
    ],
    dtype=np.uint64,
)


@njit(cache=True, nogil=True)
def _finish(h: np.uint64, n: int) -> np.uint64:
    k = h ^ _SALTS[n]
    k = k ^ (k >> np.uint64(33))
    k = k * _MIX1
    k = k ^ (k >> np.uint64(33))
    k = k * _MIX2
    k = k ^ (k >> np.uint64(33))
    return (np.uint64(n) << np.uint64(61)) | (k >> np.uint64(3))


@njit(cache=True, nogil=True)
def score_ngrams(
    cps: np.ndarray,
    letters: np.ndarray,
    max_order: int,
    starts: np.ndarray,
    fingerprints: np.ndarray,
    offsets: np.ndarray,
    langs: np.ndarray,
    deltas: np.ndarray,
    wanted: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, int]:
    """(sum of weighted deltas per language, distinct unigrams known per language, n-grams
    of the text found in the model) for the letters of ``cps`` (n = 1..max_order). Sums and
    counts are kept only for the languages ``wanted`` marks (the others stay 0)."""
    n_lang = wanted.size
    t = cps.size
    # every n-gram of letters (n = 1..max_order) starting at each position, in the order
    # the numpy version flattens them: by position, then by order
    total = 0
    run = np.zeros(t, dtype=np.int64)
    nxt = 0
    for i in range(t - 1, -1, -1):
        nxt = nxt + 1 if letters[i] else 0
        run[i] = min(nxt, max_order)
        total += run[i]
    keys = np.empty(total, dtype=np.uint64)
    parent = np.empty(total, dtype=np.int64)  # flat index of the (n-1)-prefix, -1 for n = 1
    pos = 0
    for i in range(t):
        h = np.uint64(0)
        for n in range(1, run[i] + 1):
            h = h * _MULT + (np.uint64(cps[i + n - 1]) + np.uint64(1))  # 0 * _MULT = 0 at n = 1
            keys[pos] = _finish(h, n)
            parent[pos] = pos - 1 if n > 1 else -1
            pos += 1
    sums = np.zeros(n_lang, dtype=np.float64)
    hits = np.zeros(n_lang, dtype=np.int64)
    if total == 0:
        return sums, hits, 0
    perm = np.argsort(keys, kind="mergesort")
    uid = np.empty(total, dtype=np.int64)  # flat index -> distinct n-gram id (sorted order)
    ukeys = np.empty(total, dtype=np.uint64)
    first = np.empty(total, dtype=np.int64)
    n_uniq = -1
    for j in range(total):
        p = perm[j]
        if n_uniq < 0 or keys[p] != ukeys[n_uniq]:
            n_uniq += 1
            ukeys[n_uniq] = keys[p]
            first[n_uniq] = p
        uid[p] = n_uniq
    n_uniq += 1
    # w[u]: distinct n-grams of the text whose prefix chain contains u; ids sort by order,
    # so walking them backwards sees every n-gram before its prefix
    w = np.ones(n_uniq, dtype=np.float64)
    for u in range(n_uniq - 1, -1, -1):
        par = parent[first[u]]
        if par >= 0:
            w[uid[par]] += w[u]
    found = 0
    n_buckets_mask = np.uint64((1 << 22) - 1)
    for u in range(n_uniq):
        key = ukeys[u]
        bucket = np.int64((key >> np.uint64(39)) & n_buckets_mask)
        fp = np.uint16((key >> np.uint64(23)) & np.uint64(0xFFFF))
        row = -1
        for r in range(starts[bucket], starts[bucket + 1]):
            if fingerprints[r] == fp:
                row = r
                break
        if row < 0:
            continue
        found += 1
        unigram = (key >> np.uint64(61)) == np.uint64(1)
        for e in range(offsets[row], offsets[row + 1]):
            lang = langs[e]
            if not wanted[lang]:
                continue
            sums[lang] += w[u] * np.float64(deltas[e])
            if unigram:
                hits[lang] += 1
    return sums, hits, found


#: Arabic yeh, kaf and alef maksura, folded into the Persian letters (Pashto word keys).
_FOLD_FROM = np.array([0x064A, 0x0643, 0x0649], dtype=np.uint32)
_FOLD_TO = np.array([0x06CC, 0x06A9, 0x06CC], dtype=np.uint32)


@njit(cache=True, nogil=True)
def word_keys(cps: np.ndarray, letters: np.ndarray, fold: bool) -> np.ndarray:
    """64-bit keys of the words (maximal runs of ``letters``) of ``cps``, in text order; with
    ``fold``, Arabic yeh/kaf/alef maksura are read as Persian yeh/kaf first."""
    n_words = 0
    for i in range(cps.size):
        if letters[i] and (i == 0 or not letters[i - 1]):
            n_words += 1
    keys = np.empty(n_words, dtype=np.uint64)
    j = -1
    h = np.uint64(0)
    for i in range(cps.size):
        if not letters[i]:
            continue
        c = cps[i]
        if fold:
            for f in range(_FOLD_FROM.size):
                if c == _FOLD_FROM[f]:
                    c = _FOLD_TO[f]
        if i == 0 or not letters[i - 1]:  # a word starts
            j += 1
            h = np.uint64(0)
        h = h * _MULT + (np.uint64(c) + np.uint64(1))
        keys[j] = _finish(h, 0)
    return keys


@njit(cache=True, nogil=True)
def word_sums(
    keys: np.ndarray,
    table_keys: np.ndarray,
    offsets: np.ndarray,
    langs: np.ndarray,
    centibels: np.ndarray,
    n_lang: int,
    floor: int,
) -> np.ndarray:
    """Per language, the sum over ``keys`` of the word's frequency in centibels
    (-100 log10 f) as the word table lists it, ``floor`` where it does not."""
    sums = np.zeros(n_lang, dtype=np.float64)
    listed = np.zeros(n_lang, dtype=np.int64)
    for k in range(keys.size):
        r = np.searchsorted(table_keys, keys[k])
        if r < table_keys.size and table_keys[r] == keys[k]:
            for e in range(offsets[r], offsets[r + 1]):
                sums[langs[e]] += centibels[e]
                listed[langs[e]] += 1
    for lang in range(n_lang):
        sums[lang] += (keys.size - listed[lang]) * floor
    return sums
