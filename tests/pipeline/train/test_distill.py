"""Distillation plumbing (issue #19) that runs without PyTorch: the teacher's news sentences,
and the soft labels reaching the network trainer's input (``ner.prepare_fold``)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from khabar.pipeline.train import ner, teacher


def test_news_sentences_cut_at_sentence_ends_and_at_the_limit() -> None:
    text = "علی به تهران رفت. او گفت: «خوب است»؟ بله"
    got = teacher.news_sentences([text])
    assert got[0] == ["علی", "به", "تهران", "رفت", "."]
    assert got[1][-1] == "؟"
    assert all(len(s) >= 3 for s in got)  # «بله» alone is dropped
    long = " ".join(["کلمه"] * 130)
    cut = teacher.news_sentences([long], limit=60)
    assert [len(s) for s in cut] == [60, 60, 10]


def example(words: list[str], labels: list[str]) -> ner.Example:
    toks, pos = [], 0
    for w in words:
        toks.append((w, pos, pos + len(w)))
        pos += len(w) + 1
    return ner.Example(" ".join(words), toks, labels, [], 0, words)


def soft_for(exs: list[ner.Example]) -> list[np.ndarray]:
    out = []
    for ex in exs:
        p = np.full((len(ex.words), len(teacher.LABELS)), 0.01, np.float16)
        p[:, 0] = 0.86
        out.append(p)
    return out


def test_prepare_fold_attaches_the_teachers_probabilities(tmp_path: Path) -> None:
    peyma = [
        example(["حسن", "روحانی", "گفت"], ["B-PERSON", "I-PERSON", "O"]),
        example(["در", "تهران"], ["O", "B-LOCATION"]),
    ]
    arman = [example(["سازمان", "ملل"], ["B-ORGANIZATION", "I-ORGANIZATION"])]
    news = [["روحانی", "در", "تهران", "بود"]]
    soft = {
        "labels": teacher.LABELS,
        "probs": {"train": soft_for(peyma), "news": soft_for([example(news[0], ["O"] * 4)])},
        "words": news,
    }
    path = ner.prepare_fold(tmp_path, peyma, peyma, arman, arman, soft, external=False)
    with open(path, "rb") as fh:
        data = pickle.load(fh)
    assert data["soft_labels"] == teacher.LABELS
    assert [ex["soft"].shape for ex in data["peyma_train"]] == [(3, 15), (2, 15)]
    assert "soft" not in data["arman_train"][0]
    (d,) = data["distill"]
    assert d["words"] == news[0] and d["soft"].shape == (4, 15)
    # the news sentence sees the fold's whole gazetteer: تهران was mined as a LOCATION
    assert d["gz"][2] == ["gz=B-LOCATION"]
    # without soft labels nothing changes
    plain = ner.prepare_fold(tmp_path, peyma, peyma, arman, arman, external=False)
    with open(plain, "rb") as fh:
        data = pickle.load(fh)
    assert "distill" not in data and "soft" not in data["peyma_train"][0]


def test_prepare_fold_refuses_soft_labels_of_other_sentences(tmp_path: Path) -> None:
    peyma = [example(["در", "تهران"], ["O", "B-LOCATION"])]
    wrong = {"labels": teacher.LABELS, "probs": {"train": soft_for(peyma + peyma)}}
    with pytest.raises(SystemExit, match="not for these"):
        ner.prepare_fold(tmp_path, peyma, peyma, peyma, peyma, wrong)
    short = {"labels": teacher.LABELS, "probs": {"train": [np.zeros((1, 15), np.float16)]}}
    with pytest.raises(SystemExit, match="do not match"):
        ner.prepare_fold(tmp_path, peyma, peyma, peyma, peyma, short)


def test_soft_label_files_merge_by_set(tmp_path: Path) -> None:
    a = {
        "labels": teacher.LABELS,
        "probs": {"train": [1], "news": [2]},
        "scores": {"t": 1},
        "words": [["x"]],
    }
    b = {"labels": teacher.LABELS, "probs": {"news": [3, 4]}, "scores": {}, "words": [["y"], ["z"]]}
    paths = []
    for name, part in (("a", a), ("b", b)):
        paths.append(tmp_path / f"{name}.pkl")
        with open(paths[-1], "wb") as fh:
            pickle.dump(part, fh)
    got = ner.load_soft(paths)
    assert got is not None
    assert got["probs"] == {"train": [1], "news": [3, 4]} and got["words"] == [["y"], ["z"]]
    assert got["scores"] == {"t": 1}
    assert ner.load_soft([]) is None


def test_folds_option_trains_the_folds_asked_for() -> None:
    assert ner.parse_folds("2,3") == (2, 3)
    assert ner.parse_folds(" 3, 1,3 ") == (1, 3)
    for bad in ("", "0", "4", "1,x"):
        with pytest.raises(SystemExit, match="--folds"):
            ner.parse_folds(bad)
