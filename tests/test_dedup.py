"""Exact dedup core: canonical URLs, fingerprints, deterministic survivors; and the
PTransform on the FnApiRunner with assert_that."""

from __future__ import annotations

import datetime as dt

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.dedup import (
    DUPLICATES,
    DeduplicateExact,
    canonical_url,
    content_fingerprint,
    fold_text,
    resolve_group,
)


def test_canonical_url_folds_tracking_www_scheme_slash() -> None:
    base = "https://example.ir/news/123"
    for variant in (
        "http://www.example.ir/news/123/",
        "https://EXAMPLE.ir:443/news/123?utm_source=tg&utm_medium=x",
        "https://example.ir/news/123#comments",
        "https://example.ir//news/123?fbclid=abc",
    ):
        assert canonical_url(variant) == base, variant
    assert canonical_url("https://ex.ir/a?b=2&a=1") == "https://ex.ir/a?a=1&b=2"
    assert canonical_url("https://ex.ir/a?id=1") != canonical_url("https://ex.ir/a?id=2")
    assert canonical_url("https://ex.ir/%D8%AE%D8%A8%D8%B1") == canonical_url("https://ex.ir/خبر")
    assert canonical_url("javascript:alert(1)") is None
    assert canonical_url("not a url") is None
    assert canonical_url(None) is None


def test_fingerprint_folds_spelling_variants() -> None:
    a = content_fingerprint("رئیس‌جمهوری گفت", "کتاب‌ها ۱۲۰ نسخه.")
    b = content_fingerprint("رئيس جمهوري گفت", "كتاب ها 120 نسخه")
    assert a == b
    assert a != content_fingerprint("رئیس‌جمهوری گفت", "کتاب‌ها ۱۲۱ نسخه.")
    assert fold_text("Hello, WORLD!") == "hello world"


def art(id_: str, published: dt.datetime | None = None, **kw) -> dict:
    return {"id": id_, "published_at": published, "title": "t", "body": "b", **kw}


def test_survivor_rule_earliest_then_smallest_id() -> None:
    early = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    late = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    survivor, dups = resolve_group([art("b", late), art("c", early), art("a", None)], "content")
    assert survivor["id"] == "c"
    assert {d["id"]: d["duplicate_of"] for d in dups} == {"b": "c", "a": "c"}
    survivor, _ = resolve_group([art("b"), art("a")], "content")
    assert survivor["id"] == "a"


def test_dedup_transform_chains_content_and_url() -> None:
    t1 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    t2 = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    articles = [
        # x1 and x2: same text (x1 survives: smaller id); x3: same URL as x1 (different
        # text) but earlier -> survives, and x2 ends up pointing at x3 too
        art("x1", t2, url="https://a.ir/1", title="same", body="text"),
        art("x2", t2, url="https://b.ir/2", title="same", body="text"),
        art("x3", t1, url="http://www.a.ir/1/?utm_source=x", title="other", body="words"),
        art("x4", None, title="alone", body="unique"),
    ]
    with TestPipeline() as p:
        out = p | beam.Create(articles) | DeduplicateExact()
        survivors = out["articles"] | "S" >> beam.Map(lambda a: (a["id"], a["canonical_id"]))
        dups = out[DUPLICATES] | "D" >> beam.Map(
            lambda a: (a["id"], a["duplicate_of"], a["canonical_id"], a["duplicate_reason"])
        )
        assert_that(survivors, equal_to([("x3", "x3"), ("x4", "x4")]), label="survivors")
        assert_that(
            dups,
            equal_to([("x2", "x1", "x3", "content"), ("x1", "x3", "x3", "url")]),
            label="duplicates",
        )


def test_new_headline_on_same_long_body_is_the_same_content() -> None:
    body = " ".join(f"word{i}" for i in range(25))
    assert content_fingerprint("Headline A", body) == content_fingerprint("Another one", body)
    short = "only a few words here"
    assert content_fingerprint("Headline A", short) != content_fingerprint("Another", short)
