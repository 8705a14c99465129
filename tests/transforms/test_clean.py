"""Clean core: markup, entities, invisible characters, whitespace; letters untouched."""

from __future__ import annotations

import pytest

from khabar.transforms.clean import EmptyArticle, clean_article, clean_text

ZWNJ = "\u200c"


def test_markup_and_entities_removed() -> None:
    assert clean_text("<p>سلام&nbsp;<b>دنیا</b></p>") == "سلام دنیا"
    assert clean_text("&lt;p&gt;escaped &amp;amp; twice&lt;/p&gt;") == "escaped & twice"
    assert clean_text("<script>alert(1)</script>text<style>p{}</style>") == "text"
    assert clean_text("5 < 6 and 7 > 3") == "5 < 6 and 7 > 3"


def test_invisible_and_bidi_controls_removed_but_zwnj_kept() -> None:
    text = f"رئیس{ZWNJ}جمهوری\u200b \u202eevil\u202c \u2066iso\u2069 \ufeffa\u200db\x07"
    assert clean_text(text) == f"رئیس{ZWNJ}جمهوری evil iso ab"
    assert clean_text(f"می{ZWNJ}{ZWNJ}شود {ZWNJ} x") == f"می{ZWNJ}شود x"


def test_arabic_letters_untouched() -> None:
    assert clean_text("في الكتاب") == "في الكتاب"


def test_paragraphs_kept_when_multiline() -> None:
    text = "one\r\nline wrap\n\n\n\ntwo  \t three\u2029four"
    assert clean_text(text, multiline=True) == "one line wrap\n\ntwo three four"
    assert clean_text(text) == "one line wrap two three four"


def test_block_tags_become_paragraph_breaks() -> None:
    assert clean_text("<p>a</p><p>b</p>", multiline=True).split() == ["a", "b"]


def test_clean_article_fills_title_and_drops_lead_echo() -> None:
    out = clean_article({"title": "", "lead": "Lead text", "body": "Lead text\n\nMore text"})
    assert out["title"] == "Lead text"
    assert out["body"] == "More text"
    with pytest.raises(EmptyArticle):
        clean_article({"title": "<b></b>", "lead": None, "body": "\u200b"})
