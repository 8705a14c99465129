"""Decoding: every encoding Python or WHATWG knows, UTF-16/32 with and without BOM,
bogus declarations, and undeclared legacy bytes detected (Persian cp1256, Latin cp1252)."""

from __future__ import annotations

import pytest

from khabar.transforms.encodings import codec_for, decode
from khabar.transforms.parse import parse_record
from khabar.transforms.split import RawRecord, split_records

# Persian as a cp1256 page holds it: Arabic yeh and kaf (cp1256 has no Persian yeh).
FA_CP1256 = (
    "خبرگزاری فارس: رئیس‌جمهور امروز در جلسه هیئت دولت گفت که برنامه‌های اقتصادی کشور"
    " ادامه پیدا می‌کند و مردم باید صبور باشند."
).translate({ord("ی"): "ي", ord("ک"): "ك"})
EN_CP1252 = "Café déjà vu — “smart quotes” and naïve résumé, señor. It’s fine."
XML = '<?xml version="1.0" encoding="{enc}"?><rss version="2.0"><channel><title>{t}</title>' \
    "<item><title>{t}</title><description>{t}</description></item></channel></rss>"


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("u16", "utf-16"),
        ("utf16", "utf-16"),
        ("utf_16", "utf-16"),
        ("UTF8", "utf-8"),
        ("x-cp1256", "cp1256"),  # WHATWG label Python does not know
        ("ks_c_5601-1989", "cp949"),
        ("csbig5", "big5"),
        ("x-sjis", "cp932"),  # WHATWG Shift_JIS is Windows-31J
        ("latin1", "iso8859-1"),
        ("bogus", None),
    ],
)
def test_labels_python_and_whatwg(label: str, codec: str | None) -> None:
    assert codec_for(label) == codec


@pytest.mark.parametrize(
    ("text", "codec"), [(FA_CP1256, "cp1256"), (EN_CP1252, "cp1252")]
)
def test_undeclared_legacy_bytes_are_detected(text: str, codec: str) -> None:
    decoded = decode(text.encode(codec))
    assert (decoded.text, decoded.encoding, decoded.how) == (text, codec, "detected")


def test_undeclared_cp1256_article_is_read_and_kept_whole() -> None:
    payload = ("عنوان خبر\n\n" + FA_CP1256).encode("cp1256")
    article = parse_record(RawRecord("mem://fa.txt", 0, "text", payload).to_dict())
    assert article["title"] == "عنوان خبر" and article["body"] == FA_CP1256


@pytest.mark.parametrize(
    ("enc", "codec", "text"),
    [
        ("big5", "big5", "中文新聞今天報導"),
        ("euc-kr", "euc-kr", "한국 뉴스 오늘"),
        ("gb2312", "gb2312", "中文新闻今天报道"),
        ("shift_jis", "shift_jis", "日本のニュース"),
        ("windows-1256", "cp1256", "سلام خبر"),
        ("koi8-r", "koi8-r", "Новости дня"),
        ("utf8", "utf-8", "Ünïcödé"),
        ("u16", "utf-16-le", "Ünïcödé"),
        ("utf16", "utf-16-be", "Ünïcödé"),
        ("utf_16", "utf-16", "Ünïcödé"),  # with BOM
        ("utf-32", "utf-32", "Ünïcödé"),
        ("utf-32", "utf-32-be", "Ünïcödé"),
        ("bogus", "utf-8", "Ünïcödé"),  # bogus declaration: detection (here UTF-8)
        ("bogus", "cp1252", EN_CP1252),  # bogus declaration over legacy bytes
    ],
)
def test_feeds_in_every_declared_encoding(enc: str, codec: str, text: str) -> None:
    data = XML.format(enc=enc, t=text).encode(codec)
    records = list(split_records("mem://f.xml", data, "feed"))
    article = parse_record(records[0].to_dict())
    assert article["title"] == text and article["feed"] == text


def test_utf32_and_utf16_without_bom_or_declaration() -> None:
    for codec in ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"):
        data = '<rss version="2.0"><channel><item><title>خبر</title></item></channel></rss>'
        (record,) = split_records("mem://f.xml", data.encode(codec), "feed")
        assert parse_record(record.to_dict())["title"] == "خبر"
