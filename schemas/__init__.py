"""Avro schemas of khabar's outputs, with a loader.

``article.avsc`` and ``dead_letter.avsc`` are the current versions; every published
older version is kept in ``history/`` so tests can check that the current schema
reads every older file (Avro schema resolution).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import fastavro

ARTICLE_SCHEMA_VERSION = 3
DEAD_LETTER_SCHEMA_VERSION = 1


@cache
def load_raw(name: str) -> dict[str, Any]:
    """The schema ``name`` (``article`` or ``dead_letter``) as a JSON dict."""
    text = resources.files(__name__).joinpath(f"{name}.avsc").read_text(encoding="utf-8")
    return json.loads(text)


@cache
def parsed(name: str) -> dict[str, Any]:
    """The schema parsed by fastavro (for writers and readers)."""
    return fastavro.parse_schema(load_raw(name))


def article_schema() -> dict[str, Any]:
    return parsed("article")


def dead_letter_schema() -> dict[str, Any]:
    return parsed("dead_letter")


def field_names(name: str) -> list[str]:
    return [f["name"] for f in load_raw(name)["fields"]]
