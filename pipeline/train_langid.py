"""Build the language-identification model shipped in ``transforms/langid_data``.

Run ``python -m pipeline.train_langid``. It fetches its sources with pip (no other network
access) and writes ``ngrams.npz`` and ``meta.json``; the same inputs give the same bytes.

Sources (see ``transforms/langid_data/README.md`` for licences):
- lingua-language-detector 1.3.5 (Apache-2.0): its n-gram models (n = 1..5) for 75 languages
  and its letter rules (unique characters, shared-character groups, alphabets).
- pashto-stopwords 1.0.0 (MIT): Pashto function words.
- klpt 0.1.7 (CC BY-SA 4.0): the Sorani Kurdish (ckb, Arabic script) lexicon.
- Unicode CLDR as shipped in Babel (Unicode licence): every Arabic-script string of the
  ``ps``, ``ckb`` and ``ug`` locales (names of countries, languages, months, units...).

Persian is stored in both spellings: every Persian n-gram with Persian yeh/kaf (ی ک) is
also stored with the Arabic letters (ي ك), so Persian typed with Arabic letter variants
scores as Persian.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter, defaultdict
from pathlib import Path
from types import ModuleType

import numpy as np

from transforms.language import LOGP_SCALE, MAX_ORDER, hash_ngrams

OUT_DIR = Path(__file__).resolve().parent.parent / "transforms" / "langid_data"
LINGUA = "lingua-language-detector==1.3.5"
PASHTO_STOPWORDS = "pashto-stopwords==1.0.0"
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
ARABIC_TO_PERSIAN = str.maketrans({"ي": "ی", "ك": "ک"})
#: Core Pashto function words (written from grammar knowledge, not from any corpus): the
#: genitive "d", "pa", "ke", "che", "ye", "ta", "de", "tsakha", "shawi", "kri", "wu", "lapara".
PASHTO_FUNCTION_WORDS = tuple("د په کې چې یې ته دې څخه شوی کړی وو لپاره".split())
#: Pashto stopwords that are also everyday Urdu or Arabic words (loanwords, months).
NOT_PASHTO_MARKERS = frozenset(("موسم", "پوليس", "جاپان", "نرس", "نومبر", "پروفيسر", "اوس"))
#: Entries whose probability is below this are dropped (they carry almost no evidence).
MIN_LOGP = -12.0


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


def persian_vocabulary(news_dir: Path) -> set[str]:
    """Words of the Persian news corpus, in both yeh/kaf spellings."""
    vocab: set[str] = set()
    for path in sorted(news_dir.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            for field in ("title", "lead", "body"):
                for word in ARABIC_WORD.findall(row.get(field) or ""):
                    vocab.add(word)
                    vocab.add(word.translate(ARABIC_TO_PERSIAN))
                    vocab.add(word.translate(PERSIAN_TO_ARABIC))
    return vocab


def pashto_marker_words(stopwords: list[str], persian: set[str]) -> list[str]:
    """Pashto words that never occur in the Persian news corpus, plus core function words."""
    words = {w for w in stopwords if w not in persian and w not in NOT_PASHTO_MARKERS}
    return sorted(words | set(PASHTO_FUNCTION_WORDS))


def read_pashto_stopwords(tmp: Path) -> list[str]:
    with zipfile.ZipFile(pip_download(PASHTO_STOPWORDS, tmp)) as zf:
        name = next(n for n in zf.namelist() if n.endswith("pashto-stopwords.txt"))
        text = zf.read(name).decode("utf-8")
    return [line.strip() for line in text.splitlines() if ARABIC_WORD.fullmatch(line.strip())]


def extra_word_lists(tmp: Path) -> dict[str, Counter[str]]:
    words = {code: cldr_words(code) for code in EXTRA_LANGUAGES}
    # function words are frequent in running text: weight them like it
    for word in read_pashto_stopwords(tmp):
        words["ps"][word] += 20
    with zipfile.ZipFile(pip_download(KLPT, tmp)) as zf:
        lexicon = json.load(io.BytesIO(zf.read("klpt/data/lexicon_ckb_arab.json")))
    for key in lexicon["Lexicon"]:
        for word in ARABIC_WORD.findall(key):
            words["ckb"][word] += 1
    return words


def build(out_dir: Path, tmp: Path, news_dir: Path) -> None:
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
    for code, words in extra_word_lists(tmp).items():
        languages.append(code)
        scripts["Arab"].append(code)
        models = models_from_words(words)
        tables.append(models)
        print(f"{code}: {[len(t) for t in models]} from {len(words)} words", file=sys.stderr)
    char_groups = [
        [chars, sorted(lang.iso_code_639_1.name.lower() for lang in langs)]
        for chars, langs in constants.CHARS_TO_LANGUAGES_MAPPING.items()
    ]

    key_parts: list[np.ndarray] = []
    lang_parts: list[np.ndarray] = []
    q_parts: list[np.ndarray] = []
    for li, models in enumerate(tables):
        for table in models:
            items = [(g, p) for g, p in table.items() if p >= MIN_LOGP]
            if not items:
                continue
            keys, _ = hash_ngrams(g for g, _ in items)
            logp = np.array([p for _, p in items], dtype=np.float64)
            key_parts.append(keys)
            lang_parts.append(np.full(keys.size, li, dtype=np.uint8))
            q_parts.append(np.clip(np.rint(-logp * LOGP_SCALE), 0, 255).astype(np.uint8))
    keys = np.concatenate(key_parts)
    langs = np.concatenate(lang_parts)
    q = np.concatenate(q_parts)
    order = np.lexsort((langs, keys))
    keys, langs, q = keys[order], langs[order], q[order]
    dup = np.zeros(keys.size, dtype=bool)
    dup[1:] = (keys[1:] == keys[:-1]) & (langs[1:] == langs[:-1])
    keys, langs, q = keys[~dup], langs[~dup], q[~dup]
    uniq, counts = np.unique(keys, return_counts=True)
    deltas = np.diff(uniq, prepend=np.uint64(0))
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out_dir / "ngrams.npz",
        key_deltas=deltas,
        counts=counts.astype(np.uint8),
        langs=langs,
        logq=q,
    )
    meta = {
        "languages": languages,
        "scripts": {s: sorted(set(c)) for s, c in sorted(scripts.items())},
        "unique_characters": unique_chars,
        "char_groups": char_groups,
        "pashto_words": pashto_marker_words(
            read_pashto_stopwords(tmp), persian_vocabulary(news_dir)
        ),
        "sources": [LINGUA, PASHTO_STOPWORDS, KLPT, "babel CLDR locales ps ckb ug"],
    }
    (out_dir / "meta.json").write_text(
        json.dumps(meta, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    print(f"{uniq.size} keys, {keys.size} entries -> {out_dir}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    parser.add_argument(
        "--news-fa",
        type=Path,
        default=Path(os.environ.get("KHABAR_SHARED_DATA", "/work/shared/data")) / "news-fa",
        help="Persian news (JSON lines) used to keep Persian words out of the Pashto word list",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        build(args.out, Path(tmp), args.news_fa)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
