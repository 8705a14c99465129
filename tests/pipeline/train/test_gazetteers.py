"""External gazetteers for the Persian entity tagger (pipeline/train/gazetteers.py): the
corpus filter, the merge into ner.py's mined gazetteer, and the committed data + licences.
The core tests make their own tiny corpora; the one on real data skips without ../shared."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from khabar.pipeline.train import gazetteers, gazetteers_build, ner
from khabar.pipeline.train.gazetteers import Entry, filter_external
from tests.conftest import needs_shared_data, shared_data


def sentence(*tagged: str) -> ner.Example:
    """``"word/TAG"`` tokens (TAG defaults to O) as a training example."""
    words, labels = [], []
    for item in tagged:
        word, _, tag = item.partition("/")
        words.append(word)
        labels.append(tag or "O")
    return ner.Example(" ".join(words), [], labels, [], words=words)


def test_filter_drops_a_phrase_mostly_annotated_o() -> None:
    examples = [sentence("این", "کشور", "بزرگ") for _ in range(9)]
    examples.append(sentence("کشور/B-PERSON", "آمد"))
    stats: dict = {}
    kept = filter_external([Entry("PERSON", "pgd", ("کشور",))], examples, set(), stats=stats)
    assert kept == {}
    assert stats["pgd"]["evidence"] == 1


def test_filter_keeps_a_phrase_annotated_as_that_entity() -> None:
    # a first name is annotated inside full names: that counts as evidence for it
    examples = [sentence("علی/B-PERSON", "لاریجانی/I-PERSON", "گفت") for _ in range(4)]
    examples.append(sentence("علی", "گفت"))
    entries = [Entry("PERSON", "pgd", ("علی",)), Entry("LOCATION", "geonames", ("علی",))]
    kept = filter_external(entries, examples, set())
    assert kept == {("علی",): "PERSON"}


def test_filter_keeps_what_the_corpora_never_or_rarely_see() -> None:
    examples = [sentence("هاکان", "آمد"), sentence("هاکان", "رفت")]  # 2 < MIN_COUNT
    entries = [Entry("PERSON", "pgd", ("هاکان",)), Entry("LOCATION", "babel", ("ترکیه",))]
    kept = filter_external(entries, examples, set())
    assert kept == {("هاکان",): "PERSON", ("ترکیه",): "LOCATION"}


def test_common_word_needs_evidence_for_names_not_places() -> None:
    examples = [sentence("بهمن/B-PERSON")] + [sentence("بهمن", "ماه") for _ in range(3)]
    examples += [sentence("یزد/B-LOCATION")] + [sentence("یزد/B-ORGANIZATION") for _ in range(2)]
    entries = [Entry("PERSON", "pgd", ("بهمن",)), Entry("LOCATION", "geonames", ("یزد",))]
    stats: dict = {}
    kept = filter_external(entries, examples, {"بهمن", "یزد"}, stats=stats)
    # بهمن: 1/4 = 25% inside PERSON -> evidence rule; یزد: 1/3 -> kept (places skip "common")
    assert kept == {("یزد",): "LOCATION"}
    examples = [sentence("بهمن/B-PERSON") for _ in range(2)] + [sentence("بهمن") for _ in range(3)]
    kept = filter_external(entries[:1], examples, {"بهمن"}, stats=stats)
    assert kept == {}  # 40%: passes the evidence rule, not the common-word one
    assert stats["pgd"]["common"] == 1


def test_conflict_without_evidence_prefers_the_place_lists() -> None:
    entries = [Entry("PERSON", "pgd", ("آرین",)), Entry("LOCATION", "geonames", ("آرین",))]
    stats: dict = {}
    assert filter_external(entries, [], set(), stats=stats) == {("آرین",): "LOCATION"}
    assert stats["pgd"]["conflict"] == 1 and stats["geonames"]["kept"] == 1


def test_mined_phrases_win_over_external(monkeypatch: pytest.MonkeyPatch) -> None:
    external = (
        Entry("PERSON", "pgd", ("بندر",)),  # seen twice: too rare for the filter to judge
        Entry("LOCATION", "babel", ("ترکیه",)),
    )
    monkeypatch.setattr(gazetteers, "_cached_external", lambda: external)
    examples = [sentence("بندر/B-LOCATION", "عباس/I-LOCATION"), sentence("بندر/B-LOCATION")]
    mined = ner.mine_gazetteer(examples).phrases
    both = ner.mine_gazetteer(examples, external=True).phrases
    assert ("ترکیه",) not in mined and both[("ترکیه",)] == "LOCATION"
    assert mined[("بندر",)] == "LOCATION" and both[("بندر",)] == "LOCATION"
    assert both[("بندر", "عباس")] == "LOCATION"


def test_prepare_fold_writes_external_phrases_unless_off(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(
        gazetteers, "_cached_external", lambda: (Entry("LOCATION", "babel", ("ترکیه",)),)
    )
    train = [sentence("سفر", "به", "آنکارا"), sentence("علی/B-PERSON", "آمد")] * 3
    for external, want in ((True, True), (False, False)):
        fdir = tmp_path / str(external)
        fdir.mkdir()
        ner.prepare_fold(fdir, train, train[:1], train, train[:1], external=external)
        assert ("LOCATION\tترکیه\n" in (fdir / ner.FA_GAZ).read_text(encoding="utf-8")) is want


def test_external_tsv_parses_with_entity_types_only() -> None:
    entries = gazetteers.read_external()
    assert len(entries) > 10_000
    assert {e.kind for e in entries} <= set(gazetteers.ENTITY_TYPES)
    for e in entries:
        assert 1 <= len(e.phrase) <= ner.GAZ_MAX_LEN and all(e.phrase), e
        assert e.phrase == tuple(w.lower().translate(ner.DIGIT_FOLD) for w in e.phrase), e


def test_external_tsv_keys_are_normalized_as_ner_does() -> None:
    norm = ner.persian_normalizer()
    entries = gazetteers.read_external()
    sample = entries[:: max(len(entries) // 300, 1)]
    changed = [e for e in sample if gazetteers_build.key(" ".join(e.phrase), norm) != e.phrase]
    assert not changed, changed[:5]


def test_licences_name_every_source() -> None:
    text = (gazetteers.SOURCES_DIR / "LICENCES.md").read_text(encoding="utf-8")
    named = set(re.findall(r"^\| `([a-z-]+)` \|", text, flags=re.M))
    assert {e.source for e in gazetteers.read_external()} <= named
    for licence in ("MIT", "CC BY 4.0", "BSD-3-Clause", "Unicode"):
        assert licence in text


@needs_shared_data("ner-peyma")
def test_filter_on_real_test_text_keeps_countries_drops_words() -> None:
    test = ner.load_examples(shared_data("ner-peyma") / "nsurl_test.txt", "\t", "fa")
    kept = gazetteers.external_gazetteer(test)
    assert kept[("ترکیه",)] == "LOCATION"  # also in two name lists: the corpus decides
    assert ("کرد",) not in kept and ("اما",) not in kept  # "names" that are common words
