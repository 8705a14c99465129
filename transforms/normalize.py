"""Normalize stage: language-specific spelling normalization, after language detection.

Persian (``fa``) goes through hazm's ``Normalizer`` (Arabic yeh/kaf to Persian, ZWNJ
spacing of affixes such as ``می‌شود``/``ها``, Persian digits and punctuation). Every
other language gets Unicode NFC and whitespace rules only, so Arabic keeps its ``ي``
and ``ك`` and Urdu or Pashto letters are never rewritten by Persian rules.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable

import apache_beam as beam
from apache_beam.metrics import Metrics

from khabar.transforms import metrics as M
from khabar.transforms.common import Article, run_stage

PERSIAN = "fa"
_SPACE_NEWLINE = re.compile(r"[ \t]*\n[ \t]*")
_BLANK_LINES = re.compile(r"\n{3,}")


class Normalizer:
    """Per-language text normalizer; builds hazm's Normalizer once (about 1 s)."""

    def __init__(self) -> None:
        import hazm.normalizer
        from hazm import Normalizer as HazmNormalizer

        # hazm rebuilds two translation tables on every call (a quarter of its time);
        # they depend only on constant strings, so build each once.
        if not hasattr(hazm.normalizer.maketrans, "cache_info"):
            hazm.normalizer.maketrans = functools.lru_cache(maxsize=16)(
                hazm.normalizer.maketrans
            )
        self._fa = HazmNormalizer()

    def normalize(self, text: str, language: str) -> str:
        if not text:
            return text
        if language == PERSIAN:
            # one hazm call per field (it keeps line breaks); tidy the spaces it leaves
            out = _SPACE_NEWLINE.sub("\n", self._fa.normalize(text))
            return _BLANK_LINES.sub("\n\n", out).strip()
        return unicodedata.normalize("NFC", text)

    def normalize_article(self, article: Article) -> Article:
        language = article.get("language") or "und"
        out = dict(article)
        for key in ("title", "lead", "body"):
            value = article.get(key)
            if value:
                out[key] = self.normalize(value, language)
        out["word_count"] = sum(
            len((out.get(key) or "").split()) for key in ("title", "lead", "body")
        )
        return out


def normalize_core() -> Callable[[Article], Article]:
    normalizer = Normalizer()
    persian = Metrics.counter(M.NORMALIZE, M.HAZM_PERSIAN)
    other = Metrics.counter(M.NORMALIZE, M.NFC_ONLY)

    def core(article: Article) -> Article:
        (persian if article.get("language") == PERSIAN else other).inc()
        return normalizer.normalize_article(article)

    return core


class NormalizeArticles(beam.PTransform):
    """Articles with ``language`` -> normalized articles; failures -> dead letters."""

    def expand(self, pcoll):
        return run_stage(pcoll, "Normalize", "normalize", normalize_core)
