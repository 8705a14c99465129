"""Clean stage: markup, character entities, control/zero-width/bidi characters, whitespace.

Language-neutral and light, so the language detector sees the text as written: letters
are never rewritten here (Arabic ``ي`` stays ``ي``); that is the normalize stage's job.
ZWNJ (U+200C), which Persian spelling needs, is kept.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable

import regex

from khabar.transforms.common import Article, StageError

ZWNJ = "\u200c"

# Format (Cf) characters are removed except ZWNJ; this covers ZWSP, ZWJ, word joiner,
# BOM, LRM/RLM, the bidi embeddings/overrides/isolates (U+202A-202E, U+2066-2069), soft
# hyphen, Arabic letter mark, and the like. Control (Cc) characters are removed except
# newline and tab (tab becomes a space).
_SPACES = re.compile(r"[ \t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
_SPACE_AROUND_NL = re.compile(r" *\n *")
_MANY_NL = re.compile(r"\n{3,}")
_ZWNJ_RUN = re.compile(ZWNJ + "{2,}")
_ZWNJ_SPACE = re.compile(r" ?" + ZWNJ + r" ?")

# Markup is read by lxml's HTML parser (libxml2: linear time, browsers' recovery rules).
# Every pattern below is linear too: no nested quantifiers, and each tag-like match stops
# at the next "<" or ">" (a run of "<!--" or "<br" cannot make it backtrack).
_HAS_MARKUP = re.compile(r"<[A-Za-z!/?]")
_TAG_LIKE = re.compile(r"<[A-Za-z!/?][^<>]{0,1000}>")
_BLOCKS = frozenset(
    "br p div li ul ol h1 h2 h3 h4 h5 h6 tr table blockquote pre section article header"
    " footer dd dt dl figcaption hr".split()
)
_DROPPED = ".//script|.//style|.//noscript|.//template"
_TOKENS = re.compile(
    r"<!--|<(/?)([A-Za-z][A-Za-z0-9:-]{0,64})[^<>]{0,10000}>|<[!?][^<>]{0,10000}>"
)
_DROPPED_NAMES = ("script", "style", "noscript", "template")

# Arabic presentation forms (U+FB50-FDFF, U+FE70-FEFF): folded to the letters they show
# (NFKC on these ranges only) so that language detection sees Arabic-script letters.
_PRESENTATION_FORMS = re.compile(r"[\ufb50-\ufdff\ufe70-\ufefe]+")


class EmptyArticle(StageError):
    """Nothing left to process after cleaning."""


# Cc/Cf/Co/Cs except newline, tab and ZWNJ; line/paragraph separators become newlines.
_INVISIBLE = regex.compile(r"[[\p{Cc}\p{Cf}\p{Co}\p{Cs}]--[\n\t\r\u200c\x0b\x0c\x85]]", regex.V1)
_NEWLINES = regex.compile(r"\r\n?|[\u2028\u2029\x85]")


def strip_markup(text: str) -> str:
    """Remove HTML markup (tags, comments, script/style content) and decode entities, in
    linear time. A feed that escaped its HTML once more (``&lt;p&gt;``) is read a second
    time; whatever still looks like a tag after that (markup escaped three times) is
    removed, never left as live markup."""
    if "<" not in text and "&" not in text:
        return text
    out = html_to_text(text)
    if "&" in text and _HAS_MARKUP.search(out):
        out = html_to_text(out)
        if _HAS_MARKUP.search(out):
            out = _TAG_LIKE.sub(" ", out)
    return out


def html_to_text(text: str) -> str:
    """One reading of ``text`` as HTML: the text, block elements ending in a newline,
    script/style content dropped, entities decoded."""
    import lxml.etree
    import lxml.html

    parser = _parser()
    try:
        fragment = lxml.html.fragment_fromstring(text, create_parent="div", parser=parser)
    except (lxml.etree.ParserError, ValueError):
        return _tokens_to_text(text)
    if any(e.type_name == "ERR_RESOURCE_LIMIT" for e in parser.error_log):
        return _tokens_to_text(text)  # nested too deep for libxml2: it would drop text
    for bad in fragment.xpath(_DROPPED):
        bad.drop_tree()
    for element in fragment.iter():
        if isinstance(element.tag, str) and element.tag.lower() in _BLOCKS:
            element.tail = "\n" + (element.tail or "")
    return fragment.text_content()


_PARSER = None


def _parser():
    global _PARSER
    if _PARSER is None:
        import lxml.html

        _PARSER = lxml.html.HTMLParser(huge_tree=True, remove_comments=True, remove_pis=True)
    return _PARSER


def _tokens_to_text(text: str) -> str:
    """Linear fallback for markup lxml cannot hold (nesting beyond libxml2's limit):
    tags and comments removed, script/style content dropped, entities decoded."""
    out: list[str] = []
    pos = 0
    lower = None
    while True:
        m = _TOKENS.search(text, pos)
        if not m:
            out.append(text[pos:])
            break
        out.append(text[pos : m.start()])
        if m.group(0) == "<!--":
            end = text.find("-->", m.end())
            pos = len(text) if end < 0 else end + 3
            continue
        name = (m.group(2) or "").lower()
        pos = m.end()
        if name in _BLOCKS:
            out.append("\n")
        elif not m.group(1) and name in _DROPPED_NAMES:
            if lower is None:
                lower = text.lower()
            end = lower.find("</" + name, pos)
            pos = len(text) if end < 0 else end
        else:
            out.append(" " if name else "")
    return html.unescape("".join(out))


def fold_presentation_forms(text: str) -> str:
    """Arabic presentation forms -> the letters they show (NFKC on those ranges only)."""
    if not _PRESENTATION_FORMS.search(text):  # most text has none
        return text
    return _PRESENTATION_FORMS.sub(lambda m: unicodedata.normalize("NFKC", m.group(0)), text)


def clean_text(text: str | None, multiline: bool = False, markup: bool = True) -> str:
    """Clean one field. ``multiline`` keeps paragraph breaks (as one blank line);
    ``markup=False`` for plain text (a feed's ``type="text"``): ``<b>`` is then text."""
    if not text:
        return ""
    if markup:
        text = strip_markup(text)
    text = fold_presentation_forms(text)
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
    plain = set(article.get("_plain_fields") or ())
    out["title"] = clean_text(article.get("title"), markup="title" not in plain)
    lead = clean_text(article.get("lead"), multiline=True, markup="lead" not in plain)
    out["lead"] = lead or None
    out["body"] = clean_text(article.get("body"), multiline=True, markup="body" not in plain)
    for key in ("source", "feed", "category", "author"):
        if article.get(key):
            out[key] = clean_text(article[key]) or None
    if article.get("tags"):
        out["tags"] = list(dict.fromkeys(t for t in map(clean_text, article["tags"]) if t))
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


def clean_core() -> Callable[[Article], Article]:
    """The clean stage's core (PTransform: ``khabar.pipeline.stages.clean``)."""
    return clean_article
