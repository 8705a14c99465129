"""Normalize core: hazm for Persian only."""

from __future__ import annotations

import pytest

from khabar.transforms.normalize import Normalizer

ZWNJ = "\u200c"


@pytest.fixture(scope="module")
def normalizer() -> Normalizer:
    return Normalizer()


def test_persian_gets_hazm(normalizer: Normalizer) -> None:
    out = normalizer.normalize("رئيس جمهوري مي گويد كتاب ها", "fa")
    assert out == f"رئیس{ZWNJ}جمهوری می{ZWNJ}گوید کتاب{ZWNJ}ها"


def test_persian_keeps_quotes_names_and_zwnj(normalizer: Normalizer) -> None:
    out = normalizer.normalize(f"«اسماعیل هنیه» رئیس{ZWNJ}جمهوری", "fa")
    assert "«اسماعیل هنیه»" in out
    assert f"رئیس{ZWNJ}جمهوری" in out


def test_other_languages_never_get_persian_rules(normalizer: Normalizer) -> None:
    arabic = "قال الرئيس إن الكتاب في المكتبة"
    assert normalizer.normalize(arabic, "ar") == arabic
    urdu = "وزیر اعظم نے کہا کہ"
    assert normalizer.normalize(urdu, "ur") == urdu


def test_paragraphs_survive_and_word_count(normalizer: Normalizer) -> None:
    article = {"language": "fa", "title": "عنوان خبر", "lead": None, "body": "یک دو\n\nسه"}
    out = normalizer.normalize_article(article)
    assert out["body"] == "یک دو\n\nسه"
    assert out["word_count"] == 5
