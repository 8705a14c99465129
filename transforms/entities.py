"""Entity stage: named entities with character offsets, Persian natively, English too.

The Beam-free :class:`EntityTagger` tokenizes each field (title, lead, body) of an
article that has already been cleaned and normalized (``transforms.persian`` for
Persian), runs sequence models over each sentence and returns entities as
``{text, type, start, end, confidence}`` where ``start``/``end`` are Python ``str``
offsets into the field, so ``field[start:end] == text``.

Models live in a directory with a ``manifest.json`` (see ``transforms/models/ner/``):
per language, an ordered list of model *stages*, the resources they use (gazetteers, word
clusters) and the SHA-256 of every file, checked when the tagger loads. A stage is either
a linear-chain CRF (``"kind": "crf"``, python-crfsuite, sparse features; the English
model) or one head of a BiLSTM-CRF network in plain numpy (``"kind": "bilstm-crf"``,
:mod:`khabar.transforms.entities_nn`; the Persian model). The Persian network has two heads that
share one encoder: one trained on PEYMA/NSURL-2019 (PERSON, LOCATION, ORGANIZATION, DATE,
TIME, MONEY, PERCENT), one on ArmanPersoNER (PERSON, ORGANIZATION, LOCATION, FACILITY,
PRODUCT, EVENT); all the sentences of an article are encoded together once, each head
decodes them, and their entities are merged by the manifest's rules (which stage may emit
which type; overlaps resolved by confidence). Names found in one place of an article are
then looked up again in the rest of it (``propagate``).

Licence: the shipped Persian models are trained on corpora released for research use
only (ArmanPersoNERCorpus: academic research only; PEYMA/NSURL-2019: "for research
purposes"), so the Persian models are for research use only. The English model is
trained on WikiGold and the Broad Twitter Corpus (CC BY 4.0).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from itertools import accumulate
from pathlib import Path
from typing import Any

from khabar.transforms import metrics as M
from khabar.transforms.common import Article, Count, no_count
from khabar.transforms.entities_nn import DIGIT_FOLD as DIGIT_FOLD  # the training code uses it
from khabar.transforms.entities_nn import BiLSTMCRF, fold_digits

SHIPPED_MODEL_DIR = Path(__file__).resolve().parent / "models" / "ner"
MANIFEST = "manifest.json"
FIELDS = ("title", "lead", "body")

#: Corpus tag suffixes -> the schema's entity types.
TYPE_NAMES = {
    "PER": "PERSON",
    "PERS": "PERSON",
    "ORG": "ORGANIZATION",
    "LOC": "LOCATION",
    "FAC": "FACILITY",
    "PRO": "PRODUCT",
    "EVENT": "EVENT",
    "DAT": "DATE",
    "TIM": "TIME",
    "MON": "MONEY",
    "PCT": "PERCENT",
}

_PERSIAN_WORD = re.compile(r"[\w\u200c\u200d]+|[^\w\s\u200c\u200d]")
_ENGLISH_WORD = re.compile(r"[@#]?\w+(?:['’.&\-]\w+)*|[^\w\s]")
_PERSIAN_SPLIT = re.compile(f"({_PERSIAN_WORD.pattern})")
_ENGLISH_SPLIT = re.compile(f"({_ENGLISH_WORD.pattern})")
_SENTENCE_END = frozenset((".", "!", "?", "؟", "…"))
_MAX_SENTENCE_TOKENS = 250
_CACHE_LIMIT = 300_000
_NET_BATCH = 64  # sentences encoded side by side
#: Types whose names are looked up again across a document (``propagate``).
PROPAGATED = frozenset(("PERSON", "ORGANIZATION", "LOCATION"))


class ModelError(Exception):
    """A model directory is missing, incomplete or fails its checksums."""


def tokenize(text: str, language: str) -> list[tuple[str, int, int]]:
    """Tokens of ``text`` as ``(token, start, end)``; ``text[start:end] == token``.

    Persian: runs of letters, digits, ZWNJ (so ``می‌شود`` is one token, as hazm writes
    it) and single punctuation marks. English: words with inner apostrophes, dots,
    hyphens and ampersands, ``@mentions`` and ``#hashtags``; single punctuation marks.
    """
    # split with the pattern captured: gap, token, gap, ..., token, gap; the running sum
    # of the pieces' lengths gives every token's start and end (all C-level: a third of
    # the time of a match object per token)
    pieces = (_ENGLISH_SPLIT if language == "en" else _PERSIAN_SPLIT).split(text)
    bounds = list(accumulate(map(len, pieces)))
    return list(zip(pieces[1::2], bounds[0:-1:2], bounds[1::2], strict=True))


def split_sentences(
    tokens: Sequence[tuple[str, int, int]], text: str = ""
) -> list[list[tuple[str, int, int]]]:
    """Cut a token list after sentence-final punctuation, at line breaks of ``text`` and
    every 250 tokens."""
    sentences: list[list[tuple[str, int, int]]] = []
    current: list[tuple[str, int, int]] = []
    # the first line break at or after the previous token's end (-1: none left), found
    # again only once a token passes it: no slice of the text per token
    newline = text.find("\n") if text else -1
    for tok in tokens:
        if newline != -1 and newline < tok[1]:
            if current:
                sentences.append(current)
                current = []
            newline = text.find("\n", tok[2])
        current.append(tok)
        if tok[0] in _SENTENCE_END or len(current) >= _MAX_SENTENCE_TOKENS:
            sentences.append(current)
            current = []
    if current:
        sentences.append(current)
    return sentences


def shape(word: str) -> str:
    """Compressed word shape: Persian/Arabic letter ``a``, Latin ``X``/``x``, digit ``d``."""
    out: list[str] = []
    for ch in word:
        if ch.isdigit():
            c = "d"
        elif "\u0600" <= ch <= "\u06ff" or "\ufb50" <= ch <= "\ufeff":
            c = "a"
        elif ch.isalpha():
            c = "X" if ch.isupper() else "x"
        elif ch == "\u200c":
            c = "z"
        else:
            c = ch
        if not out or out[-1] != c:
            out.append(c)
    return "".join(out)


def iob_spans(labels: Sequence[str]) -> list[tuple[int, int, str]]:
    """``(first, last_exclusive, type)`` token spans from IOB2 labels (CoNLL rules)."""
    spans: list[tuple[int, int, str]] = []
    start = -1
    kind = ""
    for i, label in enumerate(labels):
        if label == "O" or label.startswith("B-") or (label[2:] != kind):
            if start >= 0:
                spans.append((start, i, kind))
                start = -1
            if label != "O":
                start, kind = i, label[2:]
        # an I- tag continuing the current entity needs nothing
    if start >= 0:
        spans.append((start, len(labels), kind))
    return spans


class Gazetteer:
    """Entity phrases (tuples of lower-cased tokens) -> type, matched longest first."""

    def __init__(self, phrases: dict[tuple[str, ...], str]) -> None:
        self.phrases = phrases
        self.lengths: dict[str, list[int]] = {}
        for phrase in phrases:
            self.lengths.setdefault(phrase[0], []).append(len(phrase))
        for first, lens in self.lengths.items():
            self.lengths[first] = sorted(set(lens), reverse=True)

    @classmethod
    def load(cls, path: Path) -> Gazetteer:
        phrases: dict[tuple[str, ...], str] = {}
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                kind, _, phrase = line.rstrip("\n").partition("\t")
                if phrase:
                    phrases[tuple(phrase.split(" "))] = kind
        return cls(phrases)

    def tags(self, words: Sequence[str]) -> list[str | None]:
        """Per token, ``B-TYPE``/``I-TYPE`` where a phrase matches (longest first, left to
        right, as :meth:`features`), else ``None``. Only the tokens that start some phrase
        are tried."""
        out: list[str | None] = [None] * len(words)
        lengths, phrases, n = self.lengths, self.phrases, len(words)
        free = 0
        for i in [i for i, w in enumerate(words) if w in lengths]:
            if i < free:
                continue
            for length in lengths[words[i]]:
                if i + length <= n:
                    kind = phrases.get(tuple(words[i : i + length]))
                    if kind is not None:
                        out[i] = f"B-{kind}"
                        for j in range(i + 1, i + length):
                            out[j] = f"I-{kind}"
                        free = i + length
                        break
        return out

    def features(self, words: Sequence[str], prefix: str) -> list[list[str]]:
        """Per token, ``prefix=B-TYPE``/``prefix=I-TYPE`` where a phrase matches."""
        return [[f"{prefix}={tag}"] if tag else [] for tag in self.tags(words)]


class FeatureExtractor:
    """Token features shared by every model of a language (cached per word form)."""

    def __init__(self, clusters: dict[str, tuple[str, ...]] | None = None) -> None:
        self.clusters = clusters or {}
        self._cache: dict[str, tuple[list[str], list[str], list[str], list[str], list[str]]] = {}

    def _word(self, word: str) -> tuple[list[str], list[str], list[str], list[str], list[str]]:
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        low = fold_digits(word.lower())
        sh = shape(word)
        own = [
            "w=" + low,
            "p2=" + low[:2],
            "p3=" + low[:3],
            "s1=" + low[-1:],
            "s2=" + low[-2:],
            "s3=" + low[-3:],
            "s4=" + low[-4:],
            "sh=" + sh,
            "len=" + str(min(len(word), 8)),
        ]
        if word[:1].isupper():
            own.append("title")
        if "\u200c" in word:
            own.append("zwnj")
            own.append("stem=" + low.split("\u200c")[0])
            own.append("aff=" + low.split("\u200c")[-1])
        clus = self.clusters.get(low)
        if clus is None and word != low:
            clus = self.clusters.get(word)
        ctx = ["w=" + low, "s3=" + low[-3:], "sh=" + sh]
        if clus is not None:
            for level, cid in enumerate(clus):
                own.append(f"c{level}={cid}")
            ctx.append("c1=" + clus[1] if len(clus) > 1 else "c0=" + clus[0])
        else:
            own.append("c=none")
        m2 = ["-2" + f for f in ctx[:1]] + ["-2" + f for f in ctx[3:]]
        m1 = ["-1" + f for f in ctx]
        p1 = ["+1" + f for f in ctx]
        p2 = ["+2" + f for f in ctx[:1]] + ["+2" + f for f in ctx[3:]]
        entry = (own, m2, m1, p1, p2)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[word] = entry
        return entry

    def sentence(self, words: Sequence[str]) -> list[list[str]]:
        """Features of every token of one sentence (lists of binary feature names)."""
        entries = [self._word(w) for w in words]
        lows = [e[0][0] for e in entries]
        n = len(words)
        out: list[list[str]] = []
        for i in range(n):
            feats = ["bias"]
            feats.extend(entries[i][0])
            if i >= 2:
                feats.extend(entries[i - 2][1])
            if i >= 1:
                feats.extend(entries[i - 1][2])
                feats.append("b-1=" + lows[i - 1] + "|" + lows[i])
            else:
                feats.append("BOS")
            if i + 1 < n:
                feats.extend(entries[i + 1][3])
                feats.append("b+1=" + lows[i] + "|" + lows[i + 1])
            else:
                feats.append("EOS")
            if i + 2 < n:
                feats.extend(entries[i + 2][4])
            out.append(feats)
        return out


def stacked_features(labels: Sequence[str], prefix: str) -> list[list[str]]:
    """Another model's labels at offsets -1, 0, +1 as features (stacking)."""
    n = len(labels)
    out: list[list[str]] = []
    for i in range(n):
        feats = [f"{prefix}0={labels[i]}"]
        feats.append(f"{prefix}-1={labels[i - 1]}" if i else f"{prefix}-1=BOS")
        feats.append(f"{prefix}+1={labels[i + 1]}" if i + 1 < n else f"{prefix}+1=EOS")
        if i and labels[i] != "O":
            feats.append(f"{prefix}01={labels[i - 1]}|{labels[i]}")
        out.append(feats)
    return out


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_clusters(path: Path) -> dict[str, tuple[str, ...]]:
    clusters: dict[str, tuple[str, ...]] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 2:
                clusters[parts[0]] = tuple(parts[1:])
    return clusters


class LanguageModel:
    """The model stages of one language (CRFs, BiLSTM-CRF heads), applied in order; a CRF
    stage may read an earlier stage's labels as features (``stack``)."""

    def __init__(self, directory: Path, spec: dict[str, Any]) -> None:
        import pycrfsuite

        self.language: str = spec["language"]
        self.name: str = spec["name"]
        clusters = spec.get("clusters")
        self.features = FeatureExtractor(load_clusters(directory / clusters) if clusters else None)
        self.stages: list[dict[str, Any]] = []
        nets: dict[str, BiLSTMCRF] = {}
        gazetteers: dict[str, Gazetteer] = {}
        for stage in spec["models"]:
            kind = stage.get("kind", "crf")
            gaz = stage.get("gazetteer")
            if gaz and gaz not in gazetteers:
                gazetteers[gaz] = Gazetteer.load(directory / gaz)
            entry: dict[str, Any] = {
                "id": stage["id"],
                "kind": kind,
                "gazetteer": gazetteers[gaz] if gaz else None,
                "gazetteer_file": gaz,
                "stack": stage.get("stack"),
                "types": {t: TYPE_NAMES.get(t, t) for t in stage["types"]},
            }
            if kind == "crf":
                tagger = pycrfsuite.Tagger()
                tagger.open(str(directory / stage["file"]))
                entry["tagger"] = tagger
            elif kind == "bilstm-crf":
                if stage["file"] not in nets:
                    nets[stage["file"]] = BiLSTMCRF(directory / stage["file"])
                entry["net"] = nets[stage["file"]]
                entry["net_file"] = stage["file"]
                entry["head"] = stage.get("head", stage["id"])
                if entry["head"] not in entry["net"].heads:
                    raise ModelError(f"{stage['file']} has no head {entry['head']!r}")
                #: Subtracted from the head's O score before decoding: > 0 trades
                #: precision for recall (a user's knob; the shipped model sets none).
                entry["o_bias"] = float(stage.get("o_bias", 0.0))
            else:
                raise ModelError(f"unknown entity model kind {kind!r}")
            self.stages.append(entry)
        #: ``{type: [model ids]}``: the models whose entities of that type are kept.
        self.owner: dict[str, list[str]] = {
            t: [ids] if isinstance(ids, str) else list(ids)
            for t, ids in spec["merge"]["owner"].items()
        }
        #: Overlaps are resolved by model order (a list of ids) or by ``"confidence"``.
        self.priority: list[str] | str = spec["merge"]["priority"]
        self.propagate: bool = bool(spec.get("propagate", False))

    def stage_features(
        self,
        base: list[list[str]],
        words: Sequence[str],
        stage: dict[str, Any],
        labels: dict[str, list[str]],
    ) -> list[list[str]]:
        extra: list[list[list[str]]] = []
        if stage["gazetteer"] is not None:
            lows = [fold_digits(w.lower()) for w in words]
            extra.append(stage["gazetteer"].features(lows, "gz"))
        if stage["stack"]:
            extra.append(stacked_features(labels[stage["stack"]], "st"))
        if not extra:
            return base
        out = []
        for i, feats in enumerate(base):
            merged = list(feats)
            for block in extra:
                merged.extend(block[i])
            out.append(merged)
        return out

    def entities(self, text: str) -> list[dict[str, Any]]:
        """Entities of one text: ``{text, type, start, end, confidence}``."""
        return [ent for _, ent in self.document({"text": text})]

    def document(self, fields: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
        """Entities of the fields of one document, as ``(field, entity)``."""
        return self.documents([fields])[0]

    def documents(
        self, documents: Sequence[dict[str, str]]
    ) -> list[list[tuple[str, dict[str, Any]]]]:
        """Entities of the fields of several documents, as ``(field, entity)`` per document.

        The networks read the sentences of all the documents together (batches of similar
        length across documents), so tagging articles in groups costs less per article than
        one at a time; each document's result is the same either way.

        With ``propagate`` set in the manifest, names found with confidence >= 0.5 are
        looked up again in the rest of the document (a later bare surname or a repeated
        name the model missed in another context gets the same type), after a vote that
        gives each name one PERSON/ORGANIZATION/LOCATION type per document.
        """
        found: list[tuple[int, str, str, list[tuple[str, int, int]]]] = []
        for d, fields in enumerate(documents):
            for field, text in fields.items():
                for sentence in split_sentences(tokenize(text, self.language), text):
                    found.append((d, field, text, sentence))
        neural = self._neural([s for _, _, _, s in found])
        tagged: list[list[tuple[str, str, list[tuple[str, int, int]], list]]] = [
            [] for _ in documents
        ]
        for k, (d, field, text, sentence) in enumerate(found):
            tagged[d].append((field, text, sentence, self._sentence(sentence, neural[k])))
        results: list[list[tuple[str, dict[str, Any]]]] = []
        for doc in tagged:
            if self.propagate:
                self._propagate(doc)
            out: list[tuple[str, dict[str, Any]]] = []
            for field, text, sentence, kept in doc:
                for first, last, etype, conf in kept:
                    start, end = sentence[first][1], sentence[last - 1][2]
                    ent = {
                        "text": text[start:end],
                        "type": etype,
                        "start": start,
                        "end": end,
                        "confidence": round(float(conf), 4),
                    }
                    out.append((field, ent))
            results.append(out)
        return results

    def _neural(
        self, sentences: Sequence[Sequence[tuple[str, int, int]]]
    ) -> list[dict[str, tuple[list[str], Any]]]:
        """Labels and marginals of every BiLSTM-CRF stage for every sentence: each network
        encodes the sentences together, in batches of similar length, and each head decodes
        a batch in one call."""
        out: list[dict[str, tuple[list[str], Any]]] = [{} for _ in sentences]
        groups: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
        for stage in self.stages:
            if stage["kind"] == "bilstm-crf":
                groups.setdefault((stage["net_file"], stage["gazetteer_file"]), []).append(stage)
        for stages in groups.values():
            net: BiLSTMCRF = stages[0]["net"]
            gazetteer: Gazetteer | None = stages[0]["gazetteer"]
            gazes: list[list[str | None]] = []
            for sentence in sentences:
                gaz: list[str | None] = [None] * len(sentence)
                if gazetteer is not None:
                    # tokens hold no line break: fold them all in one call
                    lows = fold_digits("\n".join(t[0] for t in sentence).lower())
                    gaz = gazetteer.tags(lows.split("\n"))
                gazes.append(gaz)
            order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
            for b in range(0, len(order), _NET_BATCH):
                batch = order[b : b + _NET_BATCH]
                states = net.encode_words(
                    [[t[0] for t in sentences[i]] for i in batch], [gazes[i] for i in batch]
                )
                for stage in stages:
                    decoded = net.decode_many(stage["head"], states, stage["o_bias"])
                    for i, result in zip(batch, decoded, strict=True):
                        out[i][stage["id"]] = result
        return out

    def _sentence(
        self,
        sentence: Sequence[tuple[str, int, int]],
        neural: dict[str, tuple[list[str], Any]],
    ) -> list:
        words = [t[0] for t in sentence]
        base: list[list[str]] | None = None
        labels: dict[str, list[str]] = {}
        candidates: list[tuple[int, int, int, str, float]] = []
        for rank, stage in enumerate(self.stages):
            if stage["kind"] == "bilstm-crf":
                seq, marginals = neural[stage["id"]]

                def marginal(k: int, seq=seq, marginals=marginals) -> float:
                    return float(marginals[k])
            else:
                if base is None:
                    base = self.features.sentence(words)
                xseq = self.stage_features(base, words, stage, labels)
                tagger = stage["tagger"]
                seq = tagger.tag(xseq)

                def marginal(k: int, seq=seq, tagger=tagger) -> float:
                    return tagger.marginal(seq[k], k)

            labels[stage["id"]] = seq
            for first, last, kind in iob_spans(seq):
                etype = stage["types"].get(kind, kind)
                if stage["id"] not in self.owner.get(etype, (stage["id"],)):
                    continue
                conf = 1.0
                for k in range(first, last):
                    conf = min(conf, marginal(k))
                candidates.append((rank, first, last, etype, conf))
        return self._merge(candidates, len(sentence))

    def _merge(
        self, candidates: list[tuple[int, int, int, str, float]], length: int
    ) -> list[tuple[int, int, str, float]]:
        if self.priority == "confidence":
            candidates.sort(key=lambda c: (-c[4], c[1]))
        else:
            order = {mid: i for i, mid in enumerate(self.priority)}
            ids = [s["id"] for s in self.stages]
            candidates.sort(key=lambda c: (order.get(ids[c[0]], 99), -c[4]))
        taken = [False] * length
        kept: list[tuple[int, int, str, float]] = []
        for _, first, last, etype, conf in candidates:
            if any(taken[first:last]):
                continue
            for k in range(first, last):
                taken[k] = True
            kept.append((first, last, etype, conf))
        kept.sort()
        return kept

    @staticmethod
    def _vote(tagged: list) -> None:
        """One type per name in a document: an entity whose words were also found with
        another PERSON/ORGANIZATION/LOCATION type elsewhere in the document takes the type
        with the highest summed confidence (NSURL documents: F1 0.7955 -> 0.7989, measured)."""
        votes: dict[tuple[str, ...], dict[str, float]] = {}
        for _, _, sentence, kept in tagged:
            for first, last, etype, conf in kept:
                if etype in PROPAGATED:
                    key = tuple(t[0] for t in sentence[first:last])
                    by_type = votes.setdefault(key, {})
                    by_type[etype] = by_type.get(etype, 0.0) + conf
        for _, _, sentence, kept in tagged:
            for j, (first, last, etype, conf) in enumerate(kept):
                if etype not in PROPAGATED:
                    continue
                by_type = votes[tuple(t[0] for t in sentence[first:last])]
                if len(by_type) > 1:
                    best = max(by_type, key=lambda t: (by_type[t], t))
                    if best != etype:
                        kept[j] = (first, last, best, conf)

    def _propagate(self, tagged: list) -> None:
        self._vote(tagged)
        names: dict[tuple[str, ...], tuple[str, float]] = {}
        for _, _, sentence, kept in tagged:
            for first, last, etype, conf in kept:
                if etype not in PROPAGATED or conf < 0.5:
                    continue
                words = tuple(t[0] for t in sentence[first:last])
                names.setdefault(words, (etype, conf))
                if etype == "PERSON" and len(words) > 1 and len(words[-1]) > 2:
                    names.setdefault(words[-1:], (etype, conf))
        if not names:
            return
        # name lengths by first word, longest first (most words start no name at all)
        starts: dict[str, list[int]] = {}
        for key in names:
            starts.setdefault(key[0], []).append(len(key))
        for lens in starts.values():
            lens.sort(reverse=True)
        for _, _, sentence, kept in tagged:
            if not any(t[0] in starts for t in sentence):
                continue
            taken = [False] * len(sentence)
            for first, last, _, _ in kept:
                for k in range(first, last):
                    taken[k] = True
            words = [t[0] for t in sentence]
            added = []
            i = 0
            while i < len(words):
                step = 1
                if not taken[i] and words[i] in starts:
                    for n in starts[words[i]]:
                        key = tuple(words[i : i + n])
                        if len(key) == n and key in names and not any(taken[i : i + n]):
                            if (i > 0 and taken[i - 1]) or (i + n < len(words) and taken[i + n]):
                                continue  # would touch another entity: leave it
                            etype, conf = names[key]
                            added.append((i, i + n, etype, conf * 0.8))
                            step = n
                            break
                i += step
            if added:
                kept.extend(added)
                kept.sort()


def read_manifest(model_dir: Path) -> dict[str, Any]:
    path = model_dir / MANIFEST
    if not path.is_file():
        raise ModelError(f"no {MANIFEST} in entity model directory {model_dir}")
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def verify_checksums(model_dir: Path, manifest: dict[str, Any]) -> None:
    for name, expected in manifest["sha256"].items():
        path = model_dir / name
        if not path.is_file():
            raise ModelError(f"entity model file missing: {path}")
        actual = sha256_file(path)
        if actual != expected:
            raise ModelError(f"checksum mismatch for {path}: {actual} != {expected}")


class EntityTagger:
    """Tag entities in text or articles; ``model_dir=None`` loads the shipped models."""

    def __init__(self, model_dir: str | None = None) -> None:
        directory = Path(model_dir) if model_dir else SHIPPED_MODEL_DIR
        manifest = read_manifest(directory)
        verify_checksums(directory, manifest)
        self.manifest = manifest
        self.licence: str = manifest.get("licence", "")
        self.languages: dict[str, LanguageModel] = {
            lang: LanguageModel(directory, spec) for lang, spec in manifest["languages"].items()
        }
        names = [m.name for m in self.languages.values()]
        self.model_name: str = manifest.get("name") or ", ".join(names)

    def model_for(self, language: str) -> LanguageModel | None:
        return self.languages.get(language)

    def tag(self, text: str, language: str) -> list[dict[str, Any]]:
        model = self.languages.get(language)
        if model is None or not text:
            return []
        return model.entities(text)

    def tag_article(self, article: Article) -> Article:
        return self.tag_articles([article])[0]

    def tag_articles(self, articles: Sequence[Article]) -> list[Article]:
        """Articles with ``entities`` and ``entity_model``; the articles of one language are
        tagged together (:meth:`LanguageModel.documents`), each as it would be alone."""
        by_language: dict[str, list[int]] = {}
        for i, article in enumerate(articles):
            by_language.setdefault(article.get("language") or "und", []).append(i)
        found: list[list[tuple[str, dict[str, Any]]]] = [[] for _ in articles]
        for language, indices in by_language.items():
            model = self.languages.get(language)
            if model is None:
                continue
            fields = [{f: articles[i][f] for f in FIELDS if articles[i].get(f)} for i in indices]
            for i, result in zip(indices, model.documents(fields), strict=True):
                found[i] = result
        out = []
        for article, result in zip(articles, found, strict=True):
            model = self.languages.get(article.get("language") or "und")
            tagged = dict(article)
            tagged["entities"] = [{"field": field, **ent} for field, ent in result]
            tagged["entity_model"] = model.name if model is not None else None
            out.append(tagged)
        return out


def tag_entities_core(
    model_dir: str | None = None, count: Count = no_count
) -> Callable[[Article], Article]:
    """Build the tagger once (per worker) and return the per-article core, counting
    entities per type and articles of a language without a model (PTransform:
    ``khabar.pipeline.stages.entities``)."""
    tagger = EntityTagger(model_dir)
    known = set(tagger.languages)

    def counted(outs: list[Article]) -> list[Article]:
        for out in outs:
            language = out.get("language") or "und"
            if language not in known:
                count(M.ENTITIES, "no_model_" + language)
            for ent in out["entities"]:
                count(M.ENTITIES, ent["type"])
        return outs

    def core(article: Article) -> Article:
        return counted(tagger.tag_articles([article]))[0]

    def many(articles: list[Article]) -> list[Article]:
        """Several articles at once (the networks read their sentences together: 6.4
        against 9.4 ms per article in groups of 32, news-fa, one core)."""
        return counted(tagger.tag_articles(articles))

    core.many = many  # type: ignore[attr-defined]
    return core


def entity_types(entities: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Count entities per type (handy for reports)."""
    counts: dict[str, int] = {}
    for ent in entities:
        counts[ent["type"]] = counts.get(ent["type"], 0) + 1
    return counts
