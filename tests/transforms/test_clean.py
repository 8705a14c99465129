"""Clean core: markup, entities, invisible characters, whitespace; letters untouched."""

from __future__ import annotations

import unicodedata

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


# --- linear time, escaped markup, plain text, presentation forms (issue 15) -----------

ADVERSARIAL = {
    "comment opened again and again": "<!--" * 250_000,
    "br never closed": "<br" * 333_333,
    "attributes never closed": "<a " * 333_333,
    "nested beyond libxml2's limit": "<div>x" * 166_666,
    "escaped markup": "&amp;lt;b&amp;gt;" * 58_824,
    "escaped tags": "&lt;p&gt;x" * 100_000,
    "lone brackets": "<" * 1_000_000,
    "script never closed": "<script>" * 125_000,
}


def _best_of(text: str, rounds: int = 2) -> float:
    import time

    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        clean_text(text, multiline=True)
        best = min(best, time.perf_counter() - started)
    return best


def test_adversarial_markup_is_linear_against_a_plain_baseline() -> None:
    baseline = _best_of("word " * 200_000)  # 1 MB of plain text: the linear baseline
    for name, text in ADVERSARIAL.items():
        assert len(text) >= 990_000
        ratio = _best_of(text) / baseline
        assert ratio < 10, f"{name}: {ratio:.1f} x the plain-text baseline"


def test_double_escaped_markup_never_becomes_live() -> None:
    for value in (
        "&amp;lt;script&amp;gt;alert(1)&amp;lt;/script&amp;gt; news",
        "&lt;script&gt;alert(1)&lt;/script&gt; news",
        "&amp;amp;lt;script&amp;amp;gt;x",
    ):
        out = clean_article({"title": value, "body": value, "source": value})
        for key in ("title", "body", "source"):
            assert "<script" not in out[key].lower(), (value, out[key])
            assert "news" in out[key] or "x" in out[key]


def test_plain_text_fields_keep_their_brackets() -> None:
    article = {"title": "History of the <blink> tag", "body": "a <b> b", "_plain_fields": ["title"]}
    out = clean_article(article)
    assert out["title"] == "History of the <blink> tag" and out["body"] == "a b"


def test_deep_nesting_keeps_its_text() -> None:
    assert clean_text("<span>" * 20_000 + "kept" + "</span>" * 20_000) == "kept"


def test_arabic_presentation_forms_are_folded() -> None:
    shown = "\ufee3\ufeee\ufeeb\ufe8e\ufee7"  # Arabic letters in their glyph (shaped) forms
    folded = clean_text(shown)
    assert all(not 0xFB50 <= ord(c) <= 0xFEFF for c in folded)
    assert folded == unicodedata.normalize("NFKC", shown)
    assert clean_text("ﻻ") == "لا"  # a ligature becomes its two letters
    assert clean_text("x\ufb01y") == "x\ufb01y"  # Latin ligatures (outside the ranges) stay
