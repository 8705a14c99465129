"""Persian text normalization, Beam-free: protect, normalize, restore ZWNJ, put back.

The steps, in order (each one is a public function, tested on its own):

1. :func:`khabar.transforms.protect.mask` cuts out what Persian rules must not touch: numbers
   with their separators, URLs, e-mail addresses, handles, hashtags, Latin tokens.
2. :func:`fold_letters`: hazm's letter policy (its translation tables: Arabic yeh/kaf and
   the other Arabic-script variants to Persian letters, Arabic presentation forms,
   ``“”`` to ``"``), diacritics and Quranic marks removed, ligatures such as ``ﷲ`` spelled
   out; any presentation form hazm's table misses is folded with NFKC.
3. :func:`persian_quotes`: ``"…"`` quotes to ``«…»`` (and, after spacing,
   :func:`persian_ellipsis`: ``...`` to ``…``).
4. :func:`fix_spacing`: spaces and ZWNJ tidied (a soft hyphen, ZWJ, LRM or RLM typed
   between two letters where a ZWNJ belongs becomes one), hazm's punctuation
   spacing between words (``سلام ،دنیا`` -> ``سلام، دنیا``); it never sees a number or an
   address, so it can no longer break them.
5. :class:`khabar.transforms.zwnj.ZwnjRestorer`: ZWNJ that the web dropped (``میشود``,
   ``کتاب ها``, ``گفتوگو``) restored from a lexicon and rules; see that module.
6. The protected spans go back (numbers with Persian digits, the rest byte for byte).
"""

from __future__ import annotations

import importlib.util
import re
import sys
import unicodedata
from pathlib import Path
from types import ModuleType
from typing import Final

from khabar.transforms.protect import PLACEHOLDER, mask
from khabar.transforms.zwnj import ZWNJ, Lexicon, ZwnjRestorer, load_lexicon


def _hazm_constants() -> ModuleType:
    """hazm's character tables (``hazm/constants.py``, MIT; plain data, no imports), read
    from the installed hazm without running ``hazm/__init__.py``, which imports hazm's
    whole NLP stack (nltk and more): 1.26 s of start-up in every process that normalizes
    (``python -X importtime``), for five tables. ``find_spec`` locates the package
    without importing it; a ``hazm.constants`` already imported is used as it is."""
    loaded = sys.modules.get("hazm.constants")
    if loaded is not None:
        return loaded
    package = importlib.util.find_spec("hazm")
    if package is None or not package.submodule_search_locations:
        raise ImportError("hazm is not installed (a dependency of khabar: pip install hazm)")
    path = Path(next(iter(package.submodule_search_locations))) / "constants.py"
    spec = importlib.util.spec_from_file_location("khabar._hazm_constants", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot read hazm's tables from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_HAZM = _hazm_constants()
DIACRITICS_PATTERNS = _HAZM.DIACRITICS_PATTERNS
SPECIAL_CHARS_PATTERNS = _HAZM.SPECIAL_CHARS_PATTERNS
TRANSLATION_DST = _HAZM.TRANSLATION_DST
TRANSLATION_SRC = _HAZM.TRANSLATION_SRC
UNICODE_REPLACEMENTS = _HAZM.UNICODE_REPLACEMENTS

# --------------------------------------------------------------------------- letters


def _char_class_members(pattern: str) -> str:
    """The characters of a hazm pattern written as one ``[...]`` class of single chars."""
    body = pattern.strip("[]")
    return body.encode("ascii").decode("unicode_escape") if "\\u" in body else body


_DELETE: Final = _char_class_members(DIACRITICS_PATTERNS[0][0]) + _char_class_members(
    SPECIAL_CHARS_PATTERNS[0][0]
)
_FOLD: Final[dict[str, str]] = {
    src: dst for src, dst in zip(TRANSLATION_SRC, TRANSLATION_DST, strict=True) if src != dst
} | {char: "" for char in _DELETE + "\u0640\r"} | {  # + tatweel (kashida), carriage return
    "%": "٪",  # hazm's persian_number; a % inside a protected span is never seen here
}
_FOLD_CHARS: Final = re.compile("[" + "".join(re.escape(c) for c in _FOLD) + "]")
_LIGATURES: Final = [
    (old.strip("()").split("|"), new) for old, new in UNICODE_REPLACEMENTS
]
_PRESENTATION = re.compile(r"[\ufb50-\ufdff\ufe70-\ufeff]")
_PRESENTATION_MARKS = re.compile(
    "[" + "".join(c for c in _DELETE if "\ufb50" <= c <= "\ufdff" or "\ufe70" <= c <= "\ufeff")
    + "]"
)


def _fold_char(match: re.Match[str]) -> str:
    return _FOLD[match.group()]


def fold_presentation_forms(text: str) -> str:
    """Arabic presentation forms (U+FB50–FDFF, U+FE70–FEFF) to letters: the marks among
    them that hazm deletes go, ligatures such as ``ﷲ`` are spelled out as hazm does,
    hazm's table maps the letter forms and NFKC the rest. Runs before masking, so a span
    boundary never depends on it."""
    if not _PRESENTATION.search(text):
        return text
    text = _PRESENTATION_MARKS.sub("", text)
    for olds, new in _LIGATURES:
        for old in olds:
            if old in text:
                text = text.replace(old, new)
    text = _PRESENTATION.sub(_fold_presentation_char, text)
    return text


def _fold_presentation_char(match: re.Match[str]) -> str:
    char = match.group()
    folded = _FOLD.get(char)
    if folded is not None:
        return folded
    return unicodedata.normalize("NFKC", char)


def fold_letters(text: str) -> str:
    """hazm's letter policy (see the module docstring): one regex pass that touches only
    the characters to change; never touches digits, nor spaces other than the no-break
    space, which becomes a space as in hazm."""
    text = fold_presentation_forms(text)
    return _FOLD_CHARS.sub(_fold_char, text)


# --------------------------------------------------------------------------- style

_QUOTES = re.compile(r'"([^\n"]+)"')
_ELLIPSIS = re.compile(r" ?\.\.\.")
_AFTER_OPENING = re.compile(r"([«\[\(\{]) ")


def persian_quotes(text: str) -> str:
    """``"…"`` to ``«…»`` (hazm's ``persian_style``; its decimal rule is now the number
    mask's)."""
    return _QUOTES.sub(r"«\1»", text) if '"' in text else text


def persian_ellipsis(text: str) -> str:
    """``...`` to ``…`` (hazm's ``persian_style``), after spacing has closed ``.. .``."""
    if "..." not in text:
        return text
    return _AFTER_OPENING.sub(r"\1", _ELLIPSIS.sub(" …", text))


# --------------------------------------------------------------------------- spacing

_PUNC_AFTER = r"\.:!،؛؟»\]\)\}"
_PUNC_BEFORE = r"«\[\(\{"
# hazm's spacing rules, in hazm's order; the first two (runs of spaces, spaces at the
# ends of lines) are done without a regex in fix_spacing, and each pattern begins with the
# character it is about, so the regex engine skips to it (a pattern that begins with a
# look-behind or a class that almost every character is in is tried at every position)
_SPACE_RUN = re.compile(r"[ \t\u00a0]{2,}")
_SPACING_RULES: Final = [
    (re.compile(r'" ([^\n"]+) "'), r'"\1"'),
    (re.compile(f" ([{_PUNC_AFTER}])"), r"\1"),  # no space before a closing mark
    (re.compile(f"([{_PUNC_BEFORE}]) "), r"\1"),  # no space after an opening mark
    # a space after . : ! unless a mark or a digit follows (hazm's rule)
    (re.compile(f"([{_PUNC_AFTER[:3]}])([^ \\n{_PUNC_AFTER}\\d])"), r"\1 \2"),
    (re.compile(f"([{_PUNC_AFTER[3:]}])([^ \\n{_PUNC_AFTER}])"), r"\1 \2"),
    # a space before an opening mark after anything but a space, a line break or another
    # opening mark: the mark, then a look-behind at the character before it
    (re.compile(f"[{_PUNC_BEFORE}](?<=[^ \\n{_PUNC_BEFORE}][{_PUNC_BEFORE}])"), r" \g<0>"),
]
_LETTER = r"\u0621-\u063a\u0641-\u064a\u0671-\u06d3\u06d5\u06ee\u06ef\u06fa-\u06fc\u06ff"
# ZWNJ survives only between two letters; runs collapse to one
_ZWNJ_RUN = re.compile(f"{ZWNJ}{{2,}}")
# (the ZWNJ first, then a look-behind at the character before it)
_ZWNJ_STRAY = re.compile(f"{ZWNJ}(?:(?<![{_LETTER}]{ZWNJ})|(?![{_LETTER}]))")
_REPEATED = re.compile(f"([{_LETTER}])\\1{{2,}}")
# whether there is such a run at all: the same letter three times (twice as fast to search)
_THREE_SAME = re.compile(f"([{_LETTER}])\\1\\1")
_WORD_AROUND = re.compile(f"[{_LETTER}]*")
_LETTER_SET = frozenset(
    chr(c) for lo, hi in ((0x621, 0x63A), (0x641, 0x64A), (0x671, 0x6D3), (0x6FA, 0x6FC))
    for c in range(lo, hi + 1)
) | {"\u06d5", "\u06ee", "\u06ef", "\u06ff"}
_MORE_THAN_TWO = re.compile(f"([{_LETTER}])\\1{{2,}}")


# web text types other invisible marks where it means ZWNJ: soft hyphen, ZWJ, LRM, RLM
_STANDIN_CHARS = "\u00ad\u200d\u200e\u200f"
_ZWNJ_STANDINS = re.compile(
    f"(?<=[{_LETTER}])[{ZWNJ}{_STANDIN_CHARS}]*[{_STANDIN_CHARS}][{ZWNJ}{_STANDIN_CHARS}]*"
    f"(?=[{_LETTER}])"
)
# beside a space between two letters they mean nothing (the letters either side set the
# direction): they go, so the restorer sees the space (``می\u200f گفت``)
_STANDINS_AT_SPACE = re.compile(
    f"(?<=[{_LETTER}])(?:[{_STANDIN_CHARS}]+( +)[{_STANDIN_CHARS}]*|( +)[{_STANDIN_CHARS}]+)"
    f"(?=[{_LETTER}])"
)
# a ZWNJ between two protected spans (two numbers) becomes a space, never nothing
_ZWNJ_BETWEEN_SPANS = re.compile(
    f"{ZWNJ}(?<=[{PLACEHOLDER}0-9\u06f0-\u06f9\u0660-\u0669]{ZWNJ}){ZWNJ}*"
    f"(?=[{PLACEHOLDER}0-9\u06f0-\u06f9\u0660-\u0669])"
)


# tatweel goes before masking too (so it cannot hide a span's end), except between digits,
# where it stands for a dash (71ـ70)
_DIGIT_CLASS = "0-9\u06f0-\u06f9\u0660-\u0669"
_TATWEEL = re.compile(f"(?<![{_DIGIT_CLASS}\u0640])\u0640+|\u0640+(?![{_DIGIT_CLASS}\u0640])")


def clean_zwnj(text: str) -> str:
    """ZWNJ only between two letters: stand-ins between letters become ZWNJ (beside a
    space between letters they go), a ZWNJ between two digits or protected spans
    becomes a space, other ZWNJs go. Run before
    masking too, so that a removed ZWNJ cannot uncover a span on a second pass."""
    if any(char in text for char in _STANDIN_CHARS):
        text = _ZWNJ_STANDINS.sub(ZWNJ, text)
        text = _STANDINS_AT_SPACE.sub(lambda m: m.group(1) or m.group(2), text)
    if ZWNJ in text:
        text = _ZWNJ_BETWEEN_SPANS.sub(" ", text)
        text = _ZWNJ_RUN.sub(ZWNJ, text)
        text = _ZWNJ_STRAY.sub("", text)
    return text


def remove_tatweel(text: str) -> str:
    """Tatweel (kashida) removed, except between digits (see ``_TATWEEL``)."""
    return _TATWEEL.sub("", text) if "\u0640" in text else text


def fix_spacing(text: str) -> str:
    """Spaces, ZWNJ and punctuation spacing (hazm's rules, line by line)."""
    text = clean_zwnj(text)
    if "  " in text or "\t" in text or "\u00a0" in text:  # else no run of two
        text = _SPACE_RUN.sub(" ", text)
    # no space at the start or the end of a line (hazm: ``^ +| +$``, multiline)
    if "\n" in text:
        text = "\n".join([line.strip(" ") for line in text.split("\n")])
    else:
        text = text.strip(" ")
    for pattern, repl in _SPACING_RULES:
        text = pattern.sub(repl, text)
    return text


def decrease_repeated(text: str, known: Lexicon) -> str:
    """``سلامممم`` -> ``سلام``: a letter repeated three times or more becomes one or two,
    whichever the lexicon knows (two when it knows both or neither), as hazm does."""

    def fix(word: str) -> str:
        if known.is_word(word):
            return word
        one = _MORE_THAN_TWO.sub(r"\1", word)
        two = _MORE_THAN_TWO.sub(r"\1\1", word)
        if known.is_word(one) and not known.is_word(two):
            return one
        return two

    if not _THREE_SAME.search(text):
        return text
    # each word holding a run, found from the run outwards (linear: no backtracking)
    out: list[str] = []
    last = 0
    for match in _REPEATED.finditer(text):
        if match.start() < last:
            continue
        start = match.start()
        while start > last and text[start - 1] in _LETTER_SET:
            start -= 1
        end = _WORD_AROUND.match(text, match.end()).end()
        out.append(text[last:start])
        out.append(fix(text[start:end]))
        last = end
    out.append(text[last:])
    return "".join(out)


# --------------------------------------------------------------------------- all


class PersianNormalizer:
    """The whole Persian normalization; build once (loads the lexicon, about 0.5 s)."""

    def __init__(self, lexicon: Lexicon | None = None) -> None:
        self.lexicon = lexicon if lexicon is not None else load_lexicon()
        self.restorer = ZwnjRestorer(self.lexicon)

    def normalize(self, text: str) -> str:
        if not text:
            return text
        masked = mask(clean_zwnj(remove_tatweel(fold_presentation_forms(text))))
        out = fold_letters(masked.text)
        out = persian_quotes(out)
        out = fix_spacing(out)
        out = persian_ellipsis(out)
        out = decrease_repeated(out, self.lexicon)
        out = self.restorer.restore(out)
        return masked.restore(out)

    __call__ = normalize
