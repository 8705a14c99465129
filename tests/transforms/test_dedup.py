"""Exact dedup core: canonical URLs, fingerprints, deterministic survivors; and the
PTransform on the FnApiRunner with assert_that."""

from __future__ import annotations

import datetime as dt

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from khabar.pipeline.dedup.exact import DeduplicateExact, DropKnownCopies
from khabar.transforms.common import DUPLICATES
from khabar.transforms.dedup import (
    canonical_url,
    content_fingerprint,
    fingerprint_article,
    fold_text,
    known_keys,
    link_to_known,
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


def written(id_: str, cluster: str, similarity: float, **kw) -> dict:
    """An article as an earlier run wrote it (fingerprinted, in a story cluster)."""
    return dict(
        fingerprint_article(art(id_, **kw)),
        canonical_id=cluster,
        cluster_id=cluster,
        similarity=similarity,
    )


def test_known_keys_and_link_to_known() -> None:
    old = written("k1", "c9", 0.7, url="https://a.ir/news/1?utm_source=x", body="kept text")
    keys = dict(known_keys(old))
    assert set(keys) == {"content:" + old["content_fingerprint"], "url:https://a.ir/news/1"}
    ref = keys["url:https://a.ir/news/1"]
    dup = link_to_known(art("n1", body="kept text"), ref, "content")
    assert (dup["duplicate_of"], dup["canonical_id"], dup["cluster_id"]) == ("k1", "c9", "c9")
    assert (dup["duplicate_reason"], dup["similarity"]) == ("content", 0.7)
    assert [k for k, _ in known_keys(written("k2", "k2", 1.0, body="no url"))] == [
        "content:" + content_fingerprint("t", "no url")
    ]


def test_drop_known_copies_by_content_then_url() -> None:
    known = [
        written("k1", "k1", 1.0, url="https://a.ir/1", body="first story"),
        written("k2", "c1", 0.8, url="https://a.ir/2", body="second story"),
    ]
    new = [
        art("n1", body="first story"),  # same text as k1, no URL
        art("n2", url="http://www.a.ir/2/?utm_medium=rss", body="edited second story"),
        art("n3", url="https://a.ir/3", body="new story"),
        art("n4", body="new story"),  # a copy of n3: left to the run's own dedup
    ]
    with TestPipeline() as p:
        earlier = p | "Known" >> beam.Create(known)
        out = p | "New" >> beam.Create(new) | DropKnownCopies(earlier)
        passed = out["articles"] | "S" >> beam.Map(lambda a: a["id"])
        dups = out[DUPLICATES] | "D" >> beam.Map(
            lambda a: (a["id"], a["duplicate_of"], a["cluster_id"], a["duplicate_reason"])
        )
        assert_that(passed, equal_to(["n3", "n4"]), label="passed")
        assert_that(
            dups,
            equal_to([("n1", "k1", "k1", "content"), ("n2", "k2", "c1", "url")]),
            label="duplicates",
        )
