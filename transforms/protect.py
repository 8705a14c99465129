"""Protect, normalize, restore: the one masking step of the Persian normalizer.

Spans that Persian spelling rules must never touch are cut out of the text before the
letter, punctuation and ZWNJ rules run, and put back afterwards:

- URLs (``https://…``, ``www.…``), e-mail addresses, bare domains (``example.ir``);
- ``@handles`` and ``#hashtags`` (Persian hashtags too, ``#ایران_قوی``);
- Latin-script tokens and phrases with the numbers that belong to them (``Archos 10``,
  ``COVID-19``, ``iPhone 11 Pro``): restored byte for byte, so their digits stay Latin;
- numbers with their internal separators (``۴۲.۵``, ``۱,۲۵۰,۰۰۰``, ``۱۴۰۳/۱۲/۲۹``,
  ``۱۲:۳۰``, ``۲-۰``, ``۰۹۱۲-۱۲۳۴۵۶۷``) and a ``%``/``٪`` right after the digits.

Each span becomes one placeholder character (U+E000, private use) that no rule touches;
:meth:`Masked.restore` puts the spans back in order. Numbers are restored with Persian
digits, a decimal point between digits as ``٫`` and ``%`` as ``٪`` (what hazm's
``persian_number`` and ``persian_style`` did, now applied to the whole number at once);
everything else comes back exactly as it went in. A placeholder character already in the
input is masked as a span of its own, so it survives too.

All patterns are linear: every repetition is possessive or starts only at the beginning of
a run (a look-behind refuses starts inside a run), so adversarial input cannot make the
regex engine backtrack quadratically.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import regex

PLACEHOLDER: Final = "\ue000"

#: What each span is; numbers get the Persian digit policy on restore, the rest verbatim.
NUMBER, URL, EMAIL, HANDLE, HASHTAG, LATIN, RAW = (
    "number",
    "url",
    "email",
    "handle",
    "hashtag",
    "latin",
    "raw",
)

_DIGIT = r"[0-9\u06f0-\u06f9\u0660-\u0669]"
_SEP = r"(?:[.,\u066b\u066c/:\-]|\u0640++)"  # tatweel stands for a dash: 71ـ70
_LATIN_CHAR = r"[\p{Latin}0-9]"
# A Latin word: letters and ASCII digits with at least one Latin letter; internal
# punctuation only between two word characters (``U.S``, ``COVID-19``, ``a@b.ir``).
_LATIN_WORD = (
    rf"(?<!{_LATIN_CHAR})(?>[0-9]*+)\p{{Latin}}{_LATIN_CHAR}*+"
    rf"(?:[._\-+&'’/:@]{_LATIN_CHAR}++)*+"
)
_LATIN_NUMBER = r"[0-9]++(?:[.,:][0-9]++)*+"
# URL characters: anything but spaces, quotes and angle/guillemet brackets.
_URL_BODY = r"[^\s<>\"«»\u200c]*+"

_PATTERN = regex.compile(
    # the look-ahead lets the engine skip Persian letters at once (18x faster)
    rf"""
    (?=[\p{{Latin}}0-9\u06f0-\u06f9\u0660-\u0669@\#{PLACEHOLDER}])
    (?:
    (?P<url>(?:(?i:https?|ftp)://|(?i:www)\.){_URL_BODY})
  | (?P<email>(?<![\w.+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]*+)@[A-Za-z0-9-]++(?:\.[A-Za-z0-9-]++)++)
  | (?P<handle>(?<![\w@])@[\p{{L}}\p{{N}}_]++(?:\.[\p{{L}}\p{{N}}_]++)*+)
  | (?P<hashtag>(?<![\w#])\#[\p{{L}}\p{{N}}_][\p{{L}}\p{{N}}_\u200c]*+)
  | (?P<latin>(?:(?<![0-9]){_LATIN_NUMBER}[ ](?={_LATIN_WORD}))?{_LATIN_WORD}
        (?:[ ](?:{_LATIN_WORD}|{_LATIN_NUMBER}(?!{_DIGIT})(?!{_SEP}{_DIGIT})))*+)
  | (?P<number>(?<!{_DIGIT}){_DIGIT}++(?:{_SEP}{_DIGIT}++)*+[%\u066a]?)
  | (?P<raw>{PLACEHOLDER}+)
    )
    """,
    regex.VERBOSE,
)

#: Trailing characters that end a sentence rather than a URL.
_URL_TRAILING = ".,;:!?)]}'\"،؛؟…"

_PERSIAN_DIGITS = str.maketrans("0123456789\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667"
                                "\u0668\u0669%", "۰۱۲۳۴۵۶۷۸۹۰۱۲۳۴۵۶۷۸۹٪")
_DECIMAL_POINT = regex.compile(r"(?<=[0-9۰-۹])\.(?=[0-9۰-۹])")


def _trim_url(span: str) -> str:
    """Drop sentence punctuation after a URL; keep a ``)`` that closes a ``(`` in it."""
    end = len(span)
    while end > 0 and span[end - 1] in _URL_TRAILING:
        if span[end - 1] == ")" and span.count("(", 0, end) >= span.count(")", 0, end):
            break
        end -= 1
    return span[:end]


def persian_number(span: str) -> str:
    """A number span with Persian digits, ``٫`` as the decimal point and ``٪``."""
    return _DECIMAL_POINT.sub("٫", span.translate(_PERSIAN_DIGITS))


@dataclass(slots=True)
class Masked:
    """Text with protected spans replaced by :data:`PLACEHOLDER`, one per span."""

    text: str
    spans: list[tuple[str, str]] = field(default_factory=list)  # (kind, original)

    def restore(self, text: str) -> str:
        """Put the spans back into ``text`` (the masked text after normalization).

        The normalizer never deletes, duplicates or reorders a placeholder, so the i-th
        placeholder is the i-th span; a mismatch is a bug and raises.
        """
        if not self.spans:
            return text
        pieces = text.split(PLACEHOLDER)
        if len(pieces) != len(self.spans) + 1:
            raise ValueError(
                f"masking lost track of protected spans ({len(pieces) - 1} placeholders "
                f"for {len(self.spans)} spans)"
            )
        out = [pieces[0]]
        for (kind, original), piece in zip(self.spans, pieces[1:], strict=True):
            if kind == NUMBER:
                original = persian_number(original)
                # a number touching a Persian letter gets a space (hazm did the same)
                if out[-1] and _is_persian_letter(out[-1][-1]):
                    out.append(" ")
                out.append(original)
                if piece and _is_persian_letter(piece[0]):
                    out.append(" ")
            else:
                out.append(original)
            out.append(piece)
        return "".join(out)


def _is_persian_letter(char: str) -> bool:
    return "\u0621" <= char <= "\u064a" or "\u0671" <= char <= "\u06d5"


def mask(text: str) -> Masked:
    """Cut the protected spans out of ``text`` (see the module docstring)."""
    parts: list[str] = []
    spans: list[tuple[str, str]] = []
    last = 0
    for match in _PATTERN.finditer(text):
        kind = match.lastgroup or RAW
        start, end = match.span()
        value = match.group()
        if kind == URL:
            value = _trim_url(value)
            end = start + len(value)
            if value.lower() in ("www.", "http://", "https://", "ftp://") or not value:
                continue
        parts.append(text[last:start])
        if kind == RAW:
            for char in value:
                parts.append(PLACEHOLDER)
                spans.append((RAW, char))
        else:
            parts.append(PLACEHOLDER)
            spans.append((kind, value))
        last = end
    if not spans:
        return Masked(text)
    parts.append(text[last:])
    return Masked("".join(parts), spans)
