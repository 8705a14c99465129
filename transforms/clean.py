"""Clean stage: markup, character entities, control/zero-width/bidi characters, whitespace.

Language-neutral and light, so the language detector sees the text as written: letters
are never rewritten here (Arabic ``ي`` stays ``ي``); that is the normalize stage's job.
ZWNJ (U+200C), which Persian spelling needs, is kept.
"""

from __future__ import annotations

import html
import re
import unicodedata

import apache_beam as beam
import regex

from khabar.transforms.common import Article, StageError, run_stage

ZWNJ = "\u200c"

# Format (Cf) characters are removed except ZWNJ; this covers ZWSP, ZWJ, word joiner,
# BOM, LRM/RLM, the bidi embeddings/overrides/isolates (U+202A-202E, U+2066-2069), soft
# hyphen, Arabic letter mark, and the like. Control (Cc) characters are removed except
# newline and tab (tab becomes a space).
_MARKUP = re.compile(
    r"<(?:[a-zA-Z][a-zA-Z0-9:-]*(?:\s[^<>]*)?/?|/[a-zA-Z][a-zA-Z0-9:-]*\s*|!--.*?--)>", re.S
)
_SPACES = re.compile(r"[ \t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
_SPACE_AROUND_NL = re.compile(r" *\n *")
_MANY_NL = re.compile(r"\n{3,}")
_ZWNJ_RUN = re.compile(ZWNJ + "{2,}")
_ZWNJ_SPACE = re.compile(r" ?" + ZWNJ + r" ?")
_BLOCK_TAGS = re.compile(r"(?i)<\s*(?:br|/p|/div|/li|/h[1-6]|/tr|/blockquote)\b[^>]*>")


class EmptyArticle(StageError):
    """Nothing left to process after cleaning."""


# Cc/Cf/Co/Cs except newline, tab and ZWNJ; line/paragraph separators become newlines.
_INVISIBLE = regex.compile(r"[[\p{Cc}\p{Cf}\p{Co}\p{Cs}]--[\n\t\r\u200c\x0b\x0c\x85]]", regex.V1)
_NEWLINES = regex.compile(r"\r\n?|[\u2028\u2029\x85]")


def strip_markup(text: str) -> str:
    """Remove HTML/XML markup (tags, comments, script/style content) and decode entities.

    Two rounds at most, for feeds that escape their HTML once more (``&lt;p&gt;``)."""
    for _ in range(2):
        if "<" in text and _MARKUP.search(text):
            text = _strip_tags(text)
        if "&" not in text:
            break
        unescaped = html.unescape(text)
        if unescaped == text:
            break
        text = unescaped
    return text


def _strip_tags(text: str) -> str:
    import lxml.html

    marked = _BLOCK_TAGS.sub(lambda m: m.group(0) + "\n", text)
    try:
        fragment = lxml.html.fragment_fromstring(marked, create_parent="div")
        for bad in fragment.xpath(".//script|.//style|.//noscript|.//template"):
            bad.drop_tree()
        return fragment.text_content()
    except Exception:  # noqa: BLE001 - unparseable markup: fall back to the tag pattern
        return _MARKUP.sub(" ", marked)


def clean_text(text: str | None, multiline: bool = False) -> str:
    """Clean one field. ``multiline`` keeps paragraph breaks (as one blank line)."""
    if not text:
        return ""
    text = strip_markup(text)
    text = unicodedata.normalize("NFC", text)
    text = _NEWLINES.sub("\n", text)
    text = text.replace("\t", " ").replace("\x0b", " ").replace("\x0c", " ")
    text = _INVISIBLE.sub("", text)
    text = _ZWNJ_RUN.sub(ZWNJ, text)
    text = _ZWNJ_SPACE.sub(lambda m: " " if m.group(0) != ZWNJ else ZWNJ, text)
    text = _SPACES.sub(" ", text)
    if multiline:
        text = _SPACE_AROUND_NL.sub("\n", text)
        text = _MANY_NL.sub("\n\n", text)
        # single newlines inside a paragraph are line wraps: keep paragraph breaks only
        paragraphs = [" ".join(p.split("\n")).strip() for p in text.split("\n\n")]
        text = "\n\n".join(p for p in paragraphs if p)
    else:
        text = " ".join(text.split())
    return text.strip().strip(ZWNJ).strip()


def clean_article(article: Article) -> Article:
    out = dict(article)
    out["title"] = clean_text(article.get("title"))
    lead = clean_text(article.get("lead"), multiline=True)
    out["lead"] = lead or None
    out["body"] = clean_text(article.get("body"), multiline=True)
    for key in ("source", "feed"):
        if article.get(key):
            out[key] = clean_text(article[key]) or None
    if out["lead"] and out["body"].startswith(out["lead"]):
        out["body"] = out["body"][len(out["lead"]) :].strip()
    if not out["title"] and not out["body"] and not out["lead"]:
        raise EmptyArticle("no text left after cleaning")
    if not out["title"]:
        first = (out["lead"] or out["body"]).split("\n", 1)[0]
        out["title"] = first[:200]
    if not out["body"]:
        out["body"] = out["lead"] or ""
        out["lead"] = None
    return out


def clean_core():
    return clean_article


class CleanArticles(beam.PTransform):
    """Articles -> cleaned articles; failures -> dead letters (stage ``clean``)."""

    def expand(self, pcoll):
        return run_stage(pcoll, "Clean", "clean", clean_core)
