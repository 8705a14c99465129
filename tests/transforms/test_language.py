"""Tests of the language-identification stage (fast; no lingua/pycld2/langdetect needed)."""

from __future__ import annotations

import numpy as np
import pytest

from khabar.transforms.language import (
    LanguageDetector,
    LanguageResult,
    detect_language_core,
    hash_ngram_matrix,
    hash_ngrams,
)

LINGUA_75 = (
    "af ar az be bg bn bs ca cs cy da de el en eo es et eu fa fi fr ga gu he hi hr hu hy id is it "
    "ja ka kk ko la lg lt lv mi mk mn mr ms nb nl nn pa pl pt ro ru sk sl sn so sq sr st sv sw ta "
    "te th tl tn tr ts uk ur vi xh yo zh zu"
).split()

# Sample sentences written for these tests (not taken from any test set).
SENTENCES = {
    "fa": [
        "امروز هوا در تهران بسیار سرد است و مردم ترجیح می‌دهند در خانه بمانند.",
        "وزیر اقتصاد گفت که دولت برای کاهش تورم برنامه‌های تازه‌ای دارد.",
        "تیم ملی فوتبال ایران در بازی دوستانه با نتیجه دو بر یک پیروز شد.",
    ],
    "ar": [
        "قال الرئيس في مؤتمر صحفي إن الحكومة ستعمل على تحسين الاقتصاد خلال العام المقبل.",
        "أعلنت وزارة الصحة عن افتتاح مستشفى جديد في العاصمة.",
    ],
    "ur": [
        "وزیر اعظم نے کہا ہے کہ حکومت عوام کی فلاح کے لیے کام کر رہی ہے۔",
        "پاکستان کی ٹیم نے کل کا میچ جیت لیا۔",
    ],
    "ps": [
        "د افغانستان حکومت وویل چې په هېواد کې امنیت ښه شوی دی.",
        "ننګرهار ولایت کې د ښوونځیو شمېر زیات شوی دی.",
    ],
    "ckb": ["ئەمڕۆ لە شاری هەولێر کۆبوونەوەیەک بۆ گفتوگۆکردن لەسەر بودجەی هەرێم ئەنجام درا."],
    "ug": ["ئۇيغۇر تىلى تۈركىي تىللار ئائىلىسىگە مەنسۇپ بىر تىل."],
    "en": ["The government announced new measures to reduce inflation on Monday."],
    "de": ["Die Regierung hat am Montag neue Maßnahmen gegen die Inflation angekündigt."],
    "fr": ["Le gouvernement a annoncé lundi de nouvelles mesures contre l'inflation."],
    "ru": ["Правительство в понедельник объявило о новых мерах по борьбе с инфляцией."],
    "tr": ["Hükümet pazartesi günü enflasyonla mücadele için yeni önlemler açıkladı."],
    "hi": ["सरकार ने सोमवार को महंगाई कम करने के लिए नए कदमों की घोषणा की।"],
    "zh": ["政府星期一宣布了新的抗通胀措施。"],
    "ja": ["政府は月曜日にインフレ対策を発表しました。"],
    "ko": ["정부는 월요일에 새로운 물가 대책을 발표했다."],
    "el": ["Η κυβέρνηση ανακοίνωσε νέα μέτρα κατά του πληθωρισμού."],
}


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    return LanguageDetector()


def test_supports_lingua_languages_and_the_extra_arabic_script_ones(detector):
    codes = set(detector.language_codes())
    assert set(LINGUA_75) <= codes
    assert {"ps", "ckb", "ug"} <= codes


@pytest.mark.parametrize(
    ("expected", "text"), [(lang, s) for lang, items in SENTENCES.items() for s in items]
)
def test_sentences(detector, expected, text):
    result = detector.detect_text(text)
    assert isinstance(result, LanguageResult)
    assert result.language == expected, result
    assert 0.0 < result.confidence <= 1.0


def test_scripts(detector):
    assert detector.detect_text(SENTENCES["fa"][0]).script == "Arab"
    assert detector.detect_text(SENTENCES["en"][0]).script == "Latn"
    assert detector.detect_text(SENTENCES["ru"][0]).script == "Cyrl"
    assert detector.detect_text(SENTENCES["zh"][0]).script == "Hani"
    assert detector.detect_text(SENTENCES["hi"][0]).script == "Deva"


def test_persian_with_arabic_yeh_and_kaf_is_persian(detector):
    # Fars News style: Arabic yeh/kaf (ي ك) and spaced suffixes, no Persian-only letters
    # in some of these.
    texts = [
        "ارائه خدمات بر خط بانكي در دفاتر روستايي امكان پذير مي شود",
        "رئيس جمهور در جلسه هيئت دولت گفت كه بودجه سال آينده تصويب مي شود",
        "ايران و عراق در زمينه انرژي همكاري مي كنند",
    ]
    for text in texts:
        assert "ي" in text or "ك" in text
        assert detector.detect_text(text).language == "fa", text


def test_persian_with_latin_brand_names_and_digits_is_persian(detector):
    texts = [
        "شرکت Apple امروز آیفون 15 را با قیمت 999 دلار معرفی کرد",
        "نسخه جدید Windows 11 با هوش مصنوعی Copilot منتشر شد",
        "بازیکن Real Madrid در ۹۰ دقیقه دو گل زد",
    ]
    for text in texts:
        result = detector.detect_text(text)
        assert (result.language, result.script) == ("fa", "Arab"), text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "12345 678",
        "۱۴۰۲/۰۵/۱۲",
        "!!! ... ???",
        "https://example.com/path?x=1",
        "www.farsnews.ir",
        "info@example.com",
        "—– 3.14 %",
    ],
)
def test_non_linguistic_text_is_undetermined(detector, text):
    result = detector.detect_text(text)
    assert result.language == "und"
    assert result.confidence <= 0.2


def test_pashto_letters_beat_persian_and_urdu(detector):
    # same frame, Pashto-only letters decide
    assert detector.detect_text("د کابل ښار").language == "ps"
    assert detector.detect_text("په ننګرهار کې").language == "ps"
    assert detector.detect_text("شهر کابل").language == "fa"


def test_pashto_without_pashto_only_letters_is_decided_by_words(detector):
    # half of short Pashto has none of ټ ډ ړ ښ ږ ځ څ ګ ڼ ې ۍ: the word model decides
    for text in ("دغه راز", "وزیر وويل", "دوه تنه وژل شوي", "د هغوی خبرو"):
        assert detector.detect_text(text).language == "ps", text
    # the same frames in Persian stay Persian
    for text in ("این راز", "وزیر گفت", "دو تن کشته شدند"):
        assert detector.detect_text(text).language == "fa", text


def test_word_model_table(detector):
    freq = detector.word_log10_frequency
    # Persian holds both spellings of "that" (که / كه), the Persian one more often
    assert freq("که", "fa") > freq("كه", "fa") > -4
    # Arabic "في" is far likelier in Arabic than in Persian
    assert freq("في", "ar") > freq("في", "fa") + 1
    # the Pashto list knows the genitive particle د, in either yeh/kaf spelling of a word
    assert freq("د", "ps") > -3
    assert freq("يوه", "ps") == freq("یوه", "ps") is not None
    assert freq("the", "en") > -2
    assert freq("the", "ms") is None or freq("the", "ms") < freq("the", "en")
    assert freq("qqqqzz", "en") is None


def test_word_model_does_not_touch_languages_without_a_word_list(detector):
    # Afrikaans has no word list: Dutch-looking Afrikaans stays Afrikaans
    assert (
        detector.detect_text("Die regering het Maandag nuwe maatreëls aangekondig.").language
        == "af"
    )
    assert (
        detector.detect_text("De regering heeft maandag nieuwe maatregelen aangekondigd.").language
        == "nl"
    )


def test_score_kernel_matches_numpy_reference(detector):
    texts = [t for group in SENTENCES.values() for t in group] + [
        "the government announced qqqqq",
        "Azərbaycan hökuməti",
        "a",
        "",
    ]
    for text in texts:
        cps = np.frombuffer(text.lower().encode("utf-32-le"), dtype=np.uint32)
        letters = detector._is_letter[np.minimum(cps, 0xFFFF)]
        candidates = np.arange(len(detector.language_codes()))
        for max_order in (3, 5):
            fast = detector._score(cps, letters, candidates, max_order)
            slow = detector._score_numpy(cps, letters, candidates, max_order)
            assert (fast is None) == (slow is None), text
            if fast is not None:
                assert np.array_equal(fast, slow), text


def test_azerbaijani_schwa_is_a_latin_letter(detector):
    # ə (U+0259) sits in the IPA block: it must count as a Latin letter, not split words
    assert detector.detect_text("Azərbaycan hökuməti yeni qərar qəbul etdi").language == "az"
    assert detector.detect_text("əhali").language == "az"


def test_urdu_letters(detector):
    assert detector.detect_text("لاہور میں بارش ہوئی ہے").language == "ur"


def test_article_short_title_does_not_decide_alone(detector):
    body = " ".join(SENTENCES["fa"] * 3)
    result = detector.detect_article("iPhone 15 Pro Max", "", body)
    assert result.language == "fa"
    result = detector.detect_article("Breaking news", SENTENCES["fa"][1], body)
    assert result.language == "fa"
    english = detector.detect_article("تهران", "", " ".join(SENTENCES["en"] * 4))
    assert english.language == "en"


def test_article_without_text_is_undetermined(detector):
    assert detector.detect_article("", "", "").language == "und"
    assert detector.detect_article("2024", "...", "12:30").language == "und"


def test_hashing_is_consistent():
    keys, lengths = hash_ngrams(["ab", "abc", "ب", "abc"])
    assert lengths.tolist() == [2, 3, 1, 3]
    assert keys[1] == keys[3] and len(set(keys.tolist())) == 3
    mat = np.array([[ord("a"), ord("b")]], dtype=np.uint32)
    assert hash_ngram_matrix(mat)[0] == keys[0]


def test_core_sets_fields():
    core = detect_language_core()
    article = {"title": "خبر فوری", "lead": SENTENCES["fa"][0], "body": SENTENCES["fa"][1]}
    out = core(article)
    assert out["language"] == "fa"
    assert out["script"] == "Arab"
    assert 0.0 < out["language_confidence"] <= 1.0
    empty = core({"title": "", "lead": None, "body": ""})
    assert empty["language"] == "und"


def test_sorani_test_set(detector):
    from khabar.pipeline.bench.langid import CKB_TEST, read_lines

    lines = read_lines(CKB_TEST, 1000)
    assert len(lines) >= 200
    hits = sum(detector.detect_text(line).language == "ckb" for line in lines)
    assert hits >= 0.9 * len(lines)


def test_backoff_to_prefix_is_scored_like_the_prefix(detector):
    # an unknown 5-gram backs off along its prefix chain: the score stays finite and the
    # language decided by the known part
    result = detector.detect_text("the government announced qqqqq")
    assert result.language == "en"
