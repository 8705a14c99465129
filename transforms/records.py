"""The shapes of what flows between the stages, typed (Beam-free).

* :class:`RawRecordDict` - one record as read, with its provenance: the wire form of
  ``parse.RawRecord`` (what every reader yields and the parse stage takes).
* :class:`Article` - an article in flight: the Avro ``Article`` fields
  (``schemas/article.avsc``) as the stages fill them in, plus private keys the sink drops:
  ``_raw`` (the raw bytes, so any later stage can dead-letter the record with them),
  ``_attributes`` (provenance attributes), ``_language_hint`` (a language the input
  declared).

Dead letters are built from either shape by the function for that shape
(``common.dead_letter_from_raw`` / ``dead_letter_from_article``), never by guessing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypedDict


class RawRecordDict(TypedDict):
    input_uri: str
    position: int
    format: str
    payload: bytes
    attributes: dict[str, str]


class Entity(TypedDict):
    field: str
    text: str
    type: str
    start: int
    end: int
    confidence: float


class Article(TypedDict, total=False):
    id: str
    url: str | None
    canonical_url: str | None
    source: str | None
    feed: str | None
    title: str
    lead: str | None
    body: str
    word_count: int
    raw_sha256: str
    published_at: dt.datetime | None
    ingested_at: dt.datetime
    language: str
    language_confidence: float
    script: str
    entities: list[Entity]
    entity_model: str | None
    content_fingerprint: str
    duplicate_of: str | None
    canonical_id: str
    duplicate_reason: str | None
    cluster_id: str | None
    similarity: float | None
    input_uri: str
    input_format: str
    input_position: int
    pipeline_version: str
    schema_version: int
    _raw: bytes
    _attributes: dict[str, str]
    _language_hint: str | None


#: What a stage core may return besides an article: nothing (it consumed the record).
MaybeArticle = Article | None
AnyRecord = Article | RawRecordDict | dict[str, Any]
