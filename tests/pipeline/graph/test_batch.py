"""The processing graph on Beam's test harness (TestPipeline + assert_that)."""

from __future__ import annotations

import json

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from khabar.pipeline.graph.batch import ProcessArticles
from khabar.transforms.split import RawRecord

ZWNJ = "\u200c"

PERSIAN = {
    "title": "نشست خبری وزیر امور خارجه",
    "body": f"وزیر امور خارجه در نشست خبری امروز گفت که گفت{ZWNJ}وگوها ادامه خواهد داشت و "
    "رئيس جمهوري نيز در اين باره سخن گفت. كتاب ها و اسناد به مجلس ارائه شد.",
    "url": "https://www.example.ir/news/1?utm_source=telegram",
    "published": "1405/09/07 10:30",
}
ARABIC = {
    "title": "وزير الخارجية يلتقي نظيره في الدوحة",
    "body": "التقى وزير الخارجية اليوم في الدوحة نظيره القطري، وبحث الجانبان العلاقات الثنائية "
    "والتطورات في المنطقة، وأكد الوزير أن الحوار هو الطريق الوحيد لحل الخلافات بين الدول.",
    "published": "2026-11-28T09:00:00Z",
}


def line(obj: dict) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


def records() -> list[dict]:
    same_url = dict(PERSIAN, url="http://example.ir/news/1/", published="1405/09/07 11:00")
    return [
        RawRecord("mem://a.jsonl", 1, "jsonl", line(PERSIAN)).to_dict(),
        RawRecord("mem://a.jsonl", 2, "jsonl", line(ARABIC)).to_dict(),
        RawRecord("mem://a.jsonl", 3, "jsonl", line(same_url)).to_dict(),
        RawRecord("mem://a.jsonl", 4, "jsonl", b'{"title": "broken').to_dict(),
        RawRecord(
            "mem://b.jsonl", 1, "jsonl", b'{"title": "<b></b>", "body": "\xe2\x80\x8b"}'
        ).to_dict(),
    ]


def test_process_articles_end_to_end_on_test_pipeline() -> None:
    with TestPipeline() as p:
        out = p | beam.Create(records()) | ProcessArticles()
        survivors = out.articles | "S" >> beam.Map(
            lambda a: (a["input_position"], a["language"], a["script"])
        )
        assert_that(survivors, equal_to([(1, "fa", "Arab"), (2, "ar", "Arab")]), label="ok")
        dups = out.duplicates | "D" >> beam.Map(
            lambda a: (a["input_position"], a["duplicate_reason"])
        )
        assert_that(dups, equal_to([(3, "content")]), label="dups")
        dead = out.dead_letters | "DL" >> beam.Map(
            lambda d: (d["input_uri"], d["position"], d["stage"], d["error_type"])
        )
        assert_that(
            dead,
            equal_to(
                [
                    ("mem://a.jsonl", 4, "parse", "JSONDecodeError"),
                    ("mem://b.jsonl", 1, "clean", "EmptyArticle"),
                ]
            ),
            label="dead",
        )
        texts = out.articles | "T" >> beam.Map(lambda a: (a["language"], a["body"]))

        def check_texts(pairs: list[tuple[str, str]]) -> None:
            by_lang = dict(pairs)
            assert f"رئیس{ZWNJ}جمهوری" in by_lang["fa"]  # hazm: Arabic yeh -> Persian
            assert f"کتاب{ZWNJ}ها" in by_lang["fa"]
            assert "الوحيد" in by_lang["ar"] and "ي" in by_lang["ar"]  # Arabic yeh kept
            assert "ی" not in by_lang["ar"]

        assert_that(texts, check_texts, label="texts")
