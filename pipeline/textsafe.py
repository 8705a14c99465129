"""Text from the data, made safe to show to people.

File names, input URIs (in streaming: whatever a publisher puts in a Pub/Sub attribute),
titles and error messages come from outside. Printed raw, an ESC sequence retitles the
terminal, clears the screen or hides text, and a bidi override reverses what is read.

* ``visible``: every control character (C0 but tab and newline, DEL, C1, the line and
  paragraph separators) and every bidi embedding/override/isolate control becomes a
  visible ``\\uXXXX`` escape: readable, and still valid inside a JSON string. Persian
  text keeps its zero-width non-joiner and the LRM/RLM marks (they reorder nothing).
  The CLI writes everything through it (``SafeStream`` on stdout and stderr).
* ``plot_text``: the same, then ``<``, ``>`` and ``&`` as entities, so plotly shows
  ``<b>`` or ``<a xlink:href=…>`` in a label as text instead of rendering it.
* ``label``: a chart label: ``plot_text`` in its own bidi isolate, so a Persian label that
  starts with a digit reads right to left.
"""

from __future__ import annotations

from typing import Any, TextIO

_UNSAFE = (
    [c for c in range(0x00, 0x20) if c not in (0x09, 0x0A)]
    + list(range(0x7F, 0xA0))  # DEL and C1
    + [0x2028, 0x2029]  # line / paragraph separators
    + list(range(0x202A, 0x202F))  # LRE RLE PDF LRO RLO
    + list(range(0x2066, 0x206A))  # LRI RLI FSI PDI
    + [0x061C]  # Arabic letter mark (an embedding-like control)
)
_VISIBLE = {c: f"\\u{c:04x}" for c in _UNSAFE}
_VISIBLE_ONE_LINE = {**_VISIBLE, 0x0A: "\\u000a", 0x09: "\\u0009"}
_MARKUP = {ord("<"): "&lt;", ord(">"): "&gt;", ord("&"): "&amp;"}


def visible(text: Any, one_line: bool = False) -> str:
    """``text`` with control and bidi override characters shown as ``\\uXXXX``
    (``one_line``: newlines and tabs too)."""
    return str(text).translate(_VISIBLE_ONE_LINE if one_line else _VISIBLE)


def plot_text(text: Any) -> str:
    """A plotly label: controls made visible, markup shown as text."""
    return visible(text, one_line=True).translate(_MARKUP)


FSI, PDI = "\u2068", "\u2069"


def label(text: Any) -> str:
    """A chart label from the data: ``plot_text`` (controls visible, markup as text) in its
    own bidi run (FIRST STRONG ISOLATE ... POP DIRECTIONAL ISOLATE). Its direction comes
    from its first letter, so a Persian label that starts with a digit, "۴ میلیارد دلار",
    reads right to left and is not reordered by the text around it; invisible when drawn.
    The isolate is added after the escaping, which would otherwise show it as text."""
    return f"{FSI}{plot_text(text)}{PDI}"


class SafeStream:
    """A text stream that writes everything through ``visible``."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        #: the stream itself, for output that is ours alone (the progress line's own
        #: cursor controls)
        self.trusted = getattr(stream, "trusted", stream)

    def write(self, text: str) -> int:
        self._stream.write(visible(text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
