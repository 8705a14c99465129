"""Fuzzing the parse and clean cores (hypothesis, bounded): any input either parses or
fails with a named, expected error that becomes a dead letter — never another exception
type, a hang, or an article that breaks the next stage. Crashes it found are kept below
as regression tests."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from khabar.transforms.clean import EmptyArticle, clean_article, clean_text
from khabar.transforms.common import StageError
from khabar.transforms.parse import parse_record
from khabar.transforms.split import FORMATS, RawRecord

EXPECTED = (StageError, ValueError)  # DateParseError, JSONDecodeError are ValueErrors
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


def check(payload: bytes, fmt: str) -> None:
    raw = RawRecord("fuzz://x", 0, fmt, payload).to_dict()
    try:
        article = parse_record(raw, max_record_bytes=1 << 20)
    except EXPECTED:
        return
    assert isinstance(article["title"], str) and isinstance(article["body"], str)
    try:
        cleaned = clean_article(article)
    except EmptyArticle:
        return
    for key in ("title", "body"):
        assert "\x00" not in cleaned[key] and "\u202e" not in cleaned[key]


@FUZZ
@given(st.binary(max_size=2000), st.sampled_from(FORMATS))
def test_random_bytes_in_every_format(payload: bytes, fmt: str) -> None:
    check(payload, fmt)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(["title", "body", "lead", "url", "published", "source", "language", "x"]),
        json_values,
        max_size=8,
    )
)
def test_json_objects_with_wrong_types(obj: dict) -> None:
    check(json.dumps(obj).encode(), "jsonl")


@FUZZ
@given(st.text(max_size=3000))
def test_text_and_html_from_unicode(text: str) -> None:
    check(text.encode("utf-8", "surrogatepass"), "text")
    check(
        f"<html><body><article><p>{text}</p></article></body></html>".encode(
            "utf-8", "surrogatepass"
        ),
        "html",
    )
    assert "\x00" not in clean_text(text)


@FUZZ
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200), st.text(max_size=200))
def test_feed_items_with_arbitrary_text(title: str, body: str) -> None:
    from xml.sax.saxutils import escape

    item = f"<item><title>{escape(title)}</title><description>{escape(body)}</description></item>"
    check(item.encode("utf-8", "surrogatepass"), "rss")


# Regression tests for crashes found while fuzzing (kept so they never come back).


def test_regression_lone_surrogate_text() -> None:
    check("\ud800 title\n\nbody".encode("utf-8", "surrogatepass"), "text")


def test_regression_json_nan_and_huge_number() -> None:
    check(b'{"title": NaN, "body": "x"}', "jsonl")
    check(b'{"title": "t", "body": "b", "published": 1e400}', "jsonl")
    check(b'{"title": "t", "body": "b", "published": ' + b"9" * 5000 + b"}", "jsonl")
