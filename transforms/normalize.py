"""Normalize stage: language-specific spelling normalization, after language detection.

Persian (``fa``) goes through :class:`khabar.transforms.persian.PersianNormalizer`: numbers,
URLs, e-mail addresses, handles, hashtags and Latin tokens are masked, hazm's letter and
punctuation policy runs on the rest (Arabic yeh/kaf to Persian, Persian digits), ZWNJ
that the web dropped is restored (``می‌شود``, ``کتاب‌ها``, ``گفت‌وگو``), then the masked
spans go back. Every other language gets Unicode NFC only, so Arabic keeps its ``ي``
and ``ك`` and Urdu or Pashto letters are never rewritten by Persian rules.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from khabar.transforms import metrics as M
from khabar.transforms.common import Article, Count, no_count
from khabar.transforms.persian import PersianNormalizer

PERSIAN = "fa"
_SPACE_NEWLINE = re.compile(r"[ \t]*\n[ \t]*")
_BLANK_LINES = re.compile(r"\n{3,}")


class Normalizer:
    """Per-language text normalizer; loads the Persian lexicon once (about 1 s)."""

    def __init__(self) -> None:

        self._fa = PersianNormalizer()

    def normalize(self, text: str, language: str) -> str:
        if not text:
            return text
        if language == PERSIAN:
            # one call per field (line breaks kept); tidy the spaces around them
            out = self._fa.normalize(text)
            if "\n" not in out:
                return out.strip()
            if " \n" in out or "\n " in out or "\t" in out:  # else nothing to tidy
                out = _SPACE_NEWLINE.sub("\n", out)
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


def normalize_core(count: Count = no_count) -> Callable[[Article], Article]:
    """The normalize stage's core, counting Persian and NFC-only articles (PTransform:
    ``khabar.pipeline.stages.normalize``)."""
    normalizer = Normalizer()

    def core(article: Article) -> Article:
        persian = article.get("language") == PERSIAN
        count(M.NORMALIZE, M.PERSIAN_NORMALIZED if persian else M.NFC_ONLY)
        return normalizer.normalize_article(article)

    return core
