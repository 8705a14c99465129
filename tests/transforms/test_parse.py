"""Parse core: decoding, format detection, splitting and per-format parsing."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

import pytest

from khabar.transforms.common import EmptyInput, InvalidRecord, StageError, TooLarge
from khabar.transforms.dates import DateParseError
from khabar.transforms.feeds import MalformedXML, XMLSecurityError
from khabar.transforms.parse import (
    DecodeError,
    decode,
    extract_dateline,
    parse_record,
    parse_text,
    record_id,
)
from khabar.transforms.split import RawRecord, detect_format, split_records
from tests.conftest import ROOT

SEED = ROOT / "seeds" / "000_3016482c832c8a52.txt"


def raw(payload: bytes, fmt: str, uri: str = "mem://x", position: int = 0) -> dict:
    return RawRecord(uri, position, fmt, payload).to_dict()


def test_decode_utf8_bom_and_utf16() -> None:
    text = "سلام دنیا"
    assert decode(text.encode("utf-8")) == text
    assert decode(b"\xef\xbb\xbf" + text.encode("utf-8")) == text
    assert decode(text.encode("utf-16")) == text  # with BOM
    assert decode(("hello " * 20).encode("utf-16-le")) == "hello " * 20  # sniffed, no BOM


def test_decode_dead_letters_only_bytes_no_encoding_fits() -> None:
    rng = random.Random(7)
    with pytest.raises(DecodeError, match="no credible text encoding"):
        decode(bytes(rng.randrange(256) for _ in range(2000)))
    with pytest.raises(DecodeError):
        decode(b"\x89PNG\r\n\x1a\n" + bytes(rng.randrange(256) for _ in range(500)))


def test_detect_format_by_extension_and_content() -> None:
    assert detect_format("gs://b/a.jsonl", b"") == "jsonl"
    assert detect_format("a/b.HTML", b"") == "html"
    assert detect_format("feed.xml.gz", b"") == "feed"
    assert detect_format("noext", b'{"title": "x"}') == "jsonl"
    assert detect_format("noext", b"<?xml version='1.0'?><rss>") == "feed"
    assert detect_format("noext", b"<!DOCTYPE html><html>") == "html"
    assert detect_format("noext", "سلام".encode()) == "text"
    assert detect_format("a.txt", b"{}", override="jsonl") == "jsonl"


def test_seed_text_article() -> None:
    article = parse_record(raw(SEED.read_bytes(), "text", str(SEED)))
    assert article["title"].startswith("دیدار و گفتوگوی نماینده پوتین با سران حماس")
    assert article["lead"].startswith("نماینده رئیس جمهوری روسیه")
    assert article["source"] == "آران نیوز"
    assert article["body"].startswith("وزارت امور خارجه روسیه اعلام کرد")
    assert "«اسماعیل هنیه»" in article["body"]
    assert article["input_uri"] == str(SEED)
    assert article["_raw"] == SEED.read_bytes()


def test_dateline() -> None:
    assert extract_dateline("آران نیوز؛ وزارت امور خارجه") == ("آران نیوز", "وزارت امور خارجه")
    assert extract_dateline("وزارت امور خارجه روسیه اعلام کرد؛ که")[0] is None
    assert extract_dateline("no dateline here")[0] is None


def test_text_without_title_is_empty() -> None:
    with pytest.raises(EmptyInput):
        parse_text("   \n\n  ")


def test_jsonl_fields_dates_and_wrong_types() -> None:
    line = json.dumps(
        {
            "title": "عنوان",
            "body": "متن خبر",
            "url": "https://example.ir/a",
            "published": "1405/09/07 10:30",
            "source": "ایرنا",
        },
        ensure_ascii=False,
    ).encode()
    article = parse_record(raw(line, "jsonl", position=3))
    assert article["published_at"] == dt.datetime(2026, 11, 28, 7, 0, tzinfo=dt.UTC)
    assert article["source"] == "ایرنا" and article["input_position"] == 3
    with pytest.raises(InvalidRecord, match="must be a string"):
        parse_record(raw(b'{"title": {"a": 1}, "body": "x"}', "jsonl"))
    with pytest.raises(InvalidRecord, match="expected an object"):
        parse_record(raw(b"[1, 2]", "jsonl"))
    with pytest.raises(ValueError):
        parse_record(raw(b'{"title": "x", "body": ', "jsonl"))
    # an unreadable date leaves published_at empty, with the reason; the article is kept
    line = b'{"title": "x", "body": "y", "published": "yesterday-ish"}'
    article = parse_record(raw(line, "jsonl"))
    assert article["published_at"] is None and "yesterday-ish" in article["_date_error"]
    assert issubclass(DateParseError, ValueError)
    with pytest.raises(InvalidRecord, match="too deeply"):
        parse_record(raw(b"[" * 100000 + b"]" * 100000, "jsonl"))


def test_record_size_limit() -> None:
    with pytest.raises(TooLarge):
        parse_record(raw(b"x" * 101, "text"), max_record_bytes=100)


def test_ids_are_deterministic_and_positional() -> None:
    assert record_id("a", 1, b"x") == record_id("a", 1, b"x")
    assert record_id("a", 1, b"x") != record_id("a", 2, b"x")
    assert len(record_id("a", 1, b"x")) == 32


RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>خبرگزاری نمونه</title>
<item><title>خبر یک</title><link>https://ex.ir/1?utm_source=rss</link>
<guid>https://ex.ir/1</guid><pubDate>Sat, 28 Nov 2026 07:00:00 GMT</pubDate>
<description>&lt;p&gt;متن &lt;b&gt;اول&lt;/b&gt;&lt;/p&gt;</description></item>
<item><title>خبر دو</title><link>https://ex.ir/2</link>
<content:encoded><![CDATA[<p>متن کامل دوم</p>]]></content:encoded>
<description>خلاصه دوم</description></item>
</channel></rss>""".encode()

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Example</title>
<entry><title>One</title><link rel="alternate" href="https://ex.com/one"/><id>urn:1</id>
<published>2026-11-28T10:00:00+03:30</published><summary>Summary one</summary>
<author><name>Example Wire</name></author></entry>
</feed>"""


def test_rss_split_and_items() -> None:
    records = list(split_records("f.rss", RSS, "feed"))
    assert [r.position for r in records] == [0, 1]
    assert records[0].attributes["feed_title"] == "خبرگزاری نمونه"
    first = parse_record(records[0].to_dict())
    assert first["url"] == "https://ex.ir/1?utm_source=rss"
    assert first["published_at"] == dt.datetime(2026, 11, 28, 7, 0, tzinfo=dt.UTC)
    assert "<b>" in first["body"]  # markup is the clean stage's job
    assert first["feed"] == "خبرگزاری نمونه"
    second = parse_record(records[1].to_dict())
    assert second["body"] == "<p>متن کامل دوم</p>" and second["lead"] == "خلاصه دوم"


def test_atom_items() -> None:
    (record,) = split_records("f.atom", ATOM, "feed")
    article = parse_record(record.to_dict())
    assert article["url"] == "https://ex.com/one"
    assert article["source"] == "Example"  # the feed, not the author
    assert article["published_at"] == dt.datetime(2026, 11, 28, 6, 30, tzinfo=dt.UTC)


def test_billion_laughs_and_xxe_are_refused(tmp_path: Path) -> None:
    laughs = b"""<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">
<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<rss><channel><item><title>&lol3;</title></item></channel></rss>"""
    with pytest.raises(XMLSecurityError):
        list(split_records("bomb.xml", laughs, "feed"))
    secret = tmp_path / "secret"
    secret.write_text("TOP SECRET")
    xxe = f"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://{secret}">]>
<rss><channel><item><title>&x;</title></item></channel></rss>""".encode()
    with pytest.raises(XMLSecurityError):
        list(split_records("xxe.xml", xxe, "feed"))


def test_malformed_and_non_feed_xml() -> None:
    # an unclosed feed is recovered as feedparser recovers it; its empty item fails alone
    (item,) = list(split_records("t.xml", b"<rss><channel><item>", "feed"))
    with pytest.raises(StageError, match="without title and text"):
        parse_record(item.to_dict())
    with pytest.raises(MalformedXML, match="not a feed"):
        list(split_records("t.xml", b"<svg></svg>", "feed"))
    with pytest.raises(EmptyInput):
        list(split_records("t.txt", b"  \n", "text"))


def test_html_extraction_with_metadata() -> None:
    html = b"""<!DOCTYPE html><html lang="en"><head><title>Quake hits coast | Example News</title>
<meta property="og:title" content="Quake hits coast">
<meta property="og:site_name" content="Example News">
<meta property="article:published_time" content="2026-11-28T08:15:00Z"></head>
<body><nav>Home | World | Sport</nav><article><h1>Quake hits coast</h1>
<p>A strong earthquake struck the coast early on Saturday, officials said, and rescue teams
were sent to the worst-hit towns while residents spent the night outdoors.</p>
<p>There were no immediate reports of casualties, the regional governor told reporters in a
brief statement broadcast on state television.</p></article>
<footer>Copyright Example News</footer></body></html>"""
    article = parse_record(raw(html, "html", "page.html"))
    assert article["title"] == "Quake hits coast"
    assert "strong earthquake" in article["body"]
    assert "Home | World" not in article["body"] and "Copyright" not in article["body"]
    assert article["source"] == "Example News"
    assert article["published_at"] is not None
    assert article["published_at"].date() == dt.date(2026, 11, 28)


def test_html_without_body_is_empty() -> None:
    with pytest.raises(EmptyInput):
        parse_record(raw(b"<html><head><title>t</title></head><body></body></html>", "html"))


def test_nul_bytes_are_refused() -> None:
    with pytest.raises(DecodeError, match="NUL"):
        parse_record(raw(b"title\n\nbody\x00\x00", "text"))


def test_html_keeps_persian_zwnj_and_paragraphs() -> None:
    zwnj = "\u200c"
    html = f"""<html><head><title>دریچه{zwnj}های سد باز شد</title></head><body><article>
<h1>دریچه{zwnj}های سد باز شد</h1>
<p>دریچه{zwnj}های سد زاینده{zwnj}رود از بامداد امروز برای آبیاری کشت پاییزه کشاورزان
شرق اصفهان باز شد و آب به مدت بیست روز در بستر رودخانه جریان خواهد داشت.</p>
<p>مدیرعامل شرکت آب منطقه&zwnj;ای اصفهان گفت که این تصمیم بر اساس مصوبه شورای هماهنگی
حوضه گرفته شده است و کشاورزان باید از آب به شکل بهینه استفاده کنند.</p>
</article></body></html>""".encode()
    article = parse_record(raw(html, "html", "fa.html"))
    assert article["title"] == f"دریچه{zwnj}های سد باز شد"
    assert article["body"].startswith(f"دریچه{zwnj}های سد زاینده{zwnj}رود")
    assert f"منطقه{zwnj}ای" in article["body"]
    assert article["body"].count("\n\n") == 1  # two paragraphs, title not repeated


def test_text_with_crlf_and_utf16() -> None:
    text = "عنوان خبر\r\n\r\nلید خبر در یک بند.\r\n\r\nبدنه خبر.\r\nادامه بدنه."
    article = parse_record(raw(text.encode("utf-16"), "text"))
    assert article["title"] == "عنوان خبر"
    assert article["lead"] == "لید خبر در یک بند."
    assert article["body"].startswith("بدنه خبر.")
