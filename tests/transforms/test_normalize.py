"""Normalize core: the Persian normalizer (mask, hazm's letter policy, ZWNJ, restore) for
Persian only; NFC for everything else."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from khabar.transforms.normalize import Normalizer
from tests.conftest import ROOT, SEEDS, shared_data

ZWNJ = "\u200c"
NEWS_FA = shared_data("news-fa")


@pytest.fixture(scope="module")
def normalizer() -> Normalizer:
    return Normalizer()


def fa(normalizer: Normalizer, text: str) -> str:
    return normalizer.normalize(text, "fa")


def test_persian_letters_zwnj_and_digits(normalizer: Normalizer) -> None:
    out = fa(normalizer, "رئيس جمهوري مي گويد كتاب ها")
    assert out == f"رئیس{ZWNJ}جمهوری می{ZWNJ}گوید کتاب{ZWNJ}ها"


def test_persian_keeps_quotes_names_and_zwnj(normalizer: Normalizer) -> None:
    out = fa(normalizer, f"«اسماعیل هنیه» رئیس{ZWNJ}جمهوری")
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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("سود ۱۸.۵ درصد", "سود ۱۸٫۵ درصد"),
        ("قیمت 3,450,000 ریال", "قیمت ۳,۴۵۰,۰۰۰ ریال"),
        ("در تاریخ 1402/11/22 و ساعت ۰۸:۳۰", "در تاریخ ۱۴۰۲/۱۱/۲۲ و ساعت ۰۸:۳۰"),
        ("نتیجه ۴-۲ بود", "نتیجه ۴-۲ بود"),
        ("رشد 9% شد", "رشد ۹٪ شد"),
        ("شماره ۰۹۳۵-۹۸۷۶۵۴۳ است", "شماره ۰۹۳۵-۹۸۷۶۵۴۳ است"),
        ("نسخه Android 14 و iOS 17.2 آمد", "نسخه Android 14 و iOS 17.2 آمد"),
        ("گوشی Archos 10 در 3 رنگ", "گوشی Archos 10 در ۳ رنگ"),
        ("ببینید:http://www.farhang.gov.ir/fa/news.", "ببینید: http://www.farhang.gov.ir/fa/news."),
        ("نشانی www.example.ir و سایت farsnews.com", "نشانی www.example.ir و سایت farsnews.com"),
        ("ایمیل a.b@c.ir است", "ایمیل a.b@c.ir است"),
        ("@irna_fa و #خبر_فوری", "@irna_fa و #خبر_فوری"),
    ],
)
def test_protected_spans_come_back_whole(normalizer: Normalizer, text: str, expected: str) -> None:
    assert fa(normalizer, text) == expected


def test_hazm_letter_and_punctuation_policy_kept(normalizer: Normalizer) -> None:
    assert fa(normalizer, "كتاب ﻻ يك") == "کتاب لا یک"  # Arabic kaf/yeh, lam-alef ligature
    assert fa(normalizer, "حَذفِ اِعراب") == "حذف اعراب"  # diacritics
    assert fa(normalizer, "سلام ،دنیا") == "سلام، دنیا"
    assert fa(normalizer, 'او گفت "بله"') == "او گفت «بله»"
    assert fa(normalizer, "خبرــــــــ") == "خبر"  # tatweel
    assert fa(normalizer, "عاليييي") == "عالی"  # repeated letters


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("سوره 6ــ1 و 71ـ70", "سوره ۶ــ۱ و ۷۱ـ۷۰"),  # tatweel used as a dash
        ("نمره ٩.۱ شد", "نمره ۹٫۱ شد"),  # Arabic-Indic and Persian digits mixed
        ("عدد ۱۲\u200c۳۴", "عدد ۱۲ ۳۴"),  # a ZWNJ between numbers never glues them
        ("شنیده می\u200c\u200eشود", "شنیده می\u200cشود"),  # ZWNJ + LRM
        ("عمیق\u00ad\u00adترین", "عمیق\u200cترین"),  # soft hyphens for ZWNJ
        ("سال\u200dهای", "سال\u200cهای"),  # ZWJ for ZWNJ
        # an RLM or LRM beside a space between letters goes, so the space is restored
        ("روزه می\u200f گرفت", "روزه می\u200cگرفت"),
        ("کتاب \u200eها", "کتاب\u200cها"),
        ("گفت \u200eApple", "گفت \u200eApple"),  # before Latin it sets the direction
        ("همه.. . جدی", "همه … جدی"),
        ("گفت «... فوتبال", "گفت «… فوتبال"),
    ],
)
def test_web_oddities(normalizer: Normalizer, text: str, expected: str) -> None:
    assert fa(normalizer, text) == expected
    assert fa(normalizer, expected) == expected


def test_presentation_forms_are_folded(normalizer: Normalizer) -> None:
    assert fa(normalizer, "ﺳﻼﻡ ﺑﺮ ﺷﻤﺎ") == "سلام بر شما"


def test_seed_article_gofto_gu(normalizer: Normalizer) -> None:
    text = (SEEDS / "000_3016482c832c8a52.txt").read_text(encoding="utf-8")
    out = fa(normalizer, text)
    assert "گفتوگو" in text
    assert "گفتوگو" not in out
    assert f"گفت{ZWNJ}وگو" in out


# --------------------------------------------------------------------------- properties

DIGIT_RUN = re.compile(r"[0-9\u06f0-\u06f9\u0660-\u0669]+")
_TO_LATIN = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
URL = re.compile(r"(?:https?://|www\.)[^\s«»\"<>\u200c]+", re.I)
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


def digit_runs(text: str) -> list[str]:
    return [run.translate(_TO_LATIN) for run in DIGIT_RUN.findall(text)]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="کتابهامیشودنهای ‌.,:/-%٪12۳۴a Bwe@#\n«»\"()،يك", max_size=60))
def test_idempotent_and_digits_conserved_on_any_text(text: str) -> None:
    normalizer = _shared_normalizer()
    once = fa(normalizer, text)
    assert fa(normalizer, once) == once
    assert digit_runs(once) == digit_runs(text)


_NORMALIZER: list[Normalizer] = []


def _shared_normalizer() -> Normalizer:
    if not _NORMALIZER:
        _NORMALIZER.append(Normalizer())
    return _NORMALIZER[0]


def news_fa_fields():
    if not (NEWS_FA / "farsnews.jsonl").exists():
        pytest.skip(f"news-fa not found at {NEWS_FA} (shared data is not in a fresh clone)")
    for name in ("farsnews.jsonl", "varzesh3.jsonl"):
        for line in (NEWS_FA / name).open(encoding="utf-8"):
            article = json.loads(line)
            for key in ("title", "lead", "body"):
                if article.get(key):
                    yield article[key]


def test_news_fa_idempotent_and_no_digit_sequence_changes(normalizer: Normalizer) -> None:
    """Every field of every news-fa article: normalize(normalize(x)) == normalize(x), and
    the digit runs are the same numbers in the same order (no digit gained or lost)."""
    not_idempotent, digits_changed, fields = [], [], 0
    for text in news_fa_fields():
        fields += 1
        once = fa(normalizer, text)
        if fa(normalizer, once) != once:
            not_idempotent.append(text[:80])
        if digit_runs(once) != digit_runs(text):
            digits_changed.append(text[:80])
    assert fields > 10_000
    assert not not_idempotent, not_idempotent[:5]
    assert not digits_changed, digits_changed[:5]


def test_news_fa_urls_and_emails_survive_byte_for_byte(normalizer: Normalizer) -> None:
    wanted: Counter[str] = Counter()
    survived: Counter[str] = Counter()
    for text in news_fa_fields():
        found = [m.group().rstrip(".,;:!?)]}'\"،؛؟…") for m in URL.finditer(text)]
        found += EMAIL.findall(text)
        if not found:
            continue
        out = fa(normalizer, text)
        for address in found:
            wanted[address] += 1
            survived[address] += address in out
    assert sum(wanted.values()) >= 15  # news-fa holds a few dozen
    assert survived == wanted


def test_hazm_tables_without_hazms_nlp_stack() -> None:
    """The normalizer reads hazm's own tables, but a process that normalizes does not pay
    for importing hazm's NLP stack (nltk: over a second of start-up per worker)."""
    import subprocess
    import sys

    import hazm.constants

    from khabar.transforms import persian

    for name in ("DIACRITICS_PATTERNS", "SPECIAL_CHARS_PATTERNS", "TRANSLATION_DST",
                 "TRANSLATION_SRC", "UNICODE_REPLACEMENTS"):  # fmt: skip
        assert getattr(persian, name) == getattr(hazm.constants, name)
    probe = (
        "import sys, khabar.transforms.normalize as n; n.normalize_core()"
        "({'language': 'fa', 'title': 'كتاب ها', 'body': 'متن'}); "
        "print(sorted(m for m in ('nltk', 'hazm') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


#: The SHA-256 of the normalizer's output over every field of news-fa (each followed by a
#: NUL), with the field count, as recorded when issue 20 asked for byte-identical output
#: across speed work. A change meant to alter normalization writes a new one:
#: ``python -m tests.transforms.test_normalize`` (prints it; redirect into the file).
NEWS_FA_DIGEST = ROOT / "tests" / "golden" / "normalize-news-fa.sha256"


def news_fa_digest(normalizer: Normalizer) -> str:
    digest, count = hashlib.sha256(), 0
    for text in news_fa_fields():
        digest.update(fa(normalizer, text).encode("utf-8") + b"\x00")
        count += 1
    return f"{count} {digest.hexdigest()}"


def test_news_fa_output_is_byte_identical_to_the_recorded_one(normalizer: Normalizer) -> None:
    """Speed work on the normalizer may not change a byte of its output on real news."""
    assert news_fa_digest(normalizer) == NEWS_FA_DIGEST.read_text(encoding="ascii").strip()


if __name__ == "__main__":
    print(news_fa_digest(Normalizer()))
