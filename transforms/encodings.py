"""Decode bytes of any encoding Python or WHATWG knows; Beam-free.

:func:`decode` tries, in order:

1. a byte-order mark (UTF-8, UTF-16 and UTF-32, either byte order);
2. UTF-16/UTF-32 without a BOM, recognised from the XML declaration's byte pattern
   (XML 1.0 appendix F) or from the NUL bytes of ASCII-range code units;
3. the declared encoding (an XML declaration's ``encoding=``, an HTML ``<meta charset>``,
   or the caller's ``declared``), by Python's codec names and aliases and by the WHATWG
   label list (``webencodings``: ``x-cp1256``, ``ks_c_5601-1989``, ``csbig5`` ...);
   ``iso-8859-1``/``us-ascii`` are read as windows-1252 (as browsers do) when that decodes;
4. strict UTF-8;
5. detection with charset-normalizer (a maintained detector) for undeclared legacy bytes
   (Persian cp1256, Latin cp1252, ...) and for a declaration that does not decode.

A :class:`DecodeError` only when no decoding is credible (the detector finds none).
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

import charset_normalizer
import webencodings

from khabar.transforms.common import StageError

__all__ = ["DecodeError", "Decoded", "codec_for", "decode", "decode_text"]


class DecodeError(StageError):
    """Bytes that no credible text encoding decodes."""


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str  # Python codec name actually used
    how: str  # "bom", "sniffed", "declared", "utf-8", "detected"


_BOMS = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
# XML 1.0 appendix F: the first four bytes of "<?xm" (or "<" + something) without a BOM.
_XML_PATTERNS = (
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<\x00?", "utf-16-be"),
    (b"<\x00?\x00", "utf-16-le"),
)
_XML_DECL = re.compile(rb"""^\s*<\?xml[^>]{0,200}?encoding\s*=\s*["']([A-Za-z0-9._:+-]{1,40})""")
_META_CHARSET = re.compile(
    rb"""<meta[^>]{0,300}?charset\s*=\s*["']?\s*([A-Za-z0-9._:+-]{1,40})""", re.IGNORECASE
)
# Declared single-byte Latin encodings that browsers read as windows-1252.
_AS_CP1252 = {"latin_1", "ascii", "iso8859-1", "iso-8859-1"}
# Detection looks at a sample; decoding is then checked on the whole input.
_DETECT_SAMPLE = 256 * 1024


def codec_for(label: str | bytes | None) -> str | None:
    """The Python codec name for an encoding label (Python alias or WHATWG label)."""
    if not label:
        return None
    if isinstance(label, bytes):
        label = label.decode("ascii", "replace")
    label = label.strip().strip("\"'").lower()
    try:
        return codecs.lookup(label).name
    except LookupError:
        pass

    enc = webencodings.lookup(label)
    if enc is None or enc.name in ("replacement", "x-user-defined"):
        return None
    try:
        return codecs.lookup(enc.codec_info.name).name
    except LookupError:
        return None


def _declared(data: bytes) -> str | None:
    head = data[:2048]
    m = _XML_DECL.match(head)
    if m:
        return m.group(1).decode("ascii")
    m = _META_CHARSET.search(data[:8192])
    if m:
        return m.group(1).decode("ascii")
    return None


def _sniff_wide(data: bytes) -> str | None:
    """UTF-16/32 without BOM: the XML pattern, else the NUL bytes of ASCII code units."""
    for pattern, name in _XML_PATTERNS:
        if data.startswith(pattern):
            return name
    sample = data[:4096]
    if b"\x00" not in sample:
        return None
    if len(sample) >= 8 and len(sample) % 4 == 0:
        quarter = len(sample) // 4
        lanes = [sample[i::4].count(0) for i in range(4)]
        if lanes[1] > 0.9 * quarter and lanes[2] > 0.9 * quarter and lanes[3] > 0.9 * quarter:
            if lanes[0] < 0.1 * quarter:
                return "utf-32-le"
        if lanes[0] > 0.9 * quarter and lanes[1] > 0.9 * quarter and lanes[2] > 0.9 * quarter:
            if lanes[3] < 0.1 * quarter:
                return "utf-32-be"
    if len(sample) < 4 or len(sample) % 2:
        sample = sample[: len(sample) - len(sample) % 2]
        if len(sample) < 4:
            return None
    even_nuls = sample[0::2].count(0)
    odd_nuls = sample[1::2].count(0)
    half = len(sample) // 2
    if odd_nuls > 0.3 * half and even_nuls < 0.05 * half:
        return "utf-16-le"
    if even_nuls > 0.3 * half and odd_nuls < 0.05 * half:
        return "utf-16-be"
    return None


#: Public name: the parse stage's binary-file rule asks whether NUL bytes are UTF-16/32.
sniff_wide = _sniff_wide


def _try(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def _endian(data: bytes, codec: str) -> str:
    """A declared UTF-16/32 without BOM: pick the byte order from the content."""
    if codec in ("utf-16", "utf-32"):
        sniffed = _sniff_wide(data)
        if sniffed and sniffed.startswith(codec):
            return sniffed
        return codec + "-le"
    return codec


# Legacy encodings common on the web (WHATWG's table, by use): on a near tie in the
# detector's "chaos" score these win over rarer relatives (cp1252 over cp1257).
# Very short legacy snippets stay ambiguous (30 bytes of cp1256 read as well as GB18030).
_COMMON_LEGACY = {
    "cp1252", "cp1256", "cp1251", "cp1250", "cp1253", "cp1254", "cp1255",
    "gb18030", "gbk", "gb2312", "big5", "shift_jis", "cp932", "euc_jp", "euc_kr", "cp949",
    "koi8_r", "iso8859_2", "iso8859_6", "tis_620", "cp874",
}
# The two legacy encodings of khabar's news (Latin and Persian) first, then the others.
_PRIOR = {name: 0.1 for name in _COMMON_LEGACY} | {"cp1252": 0.2, "cp1256": 0.15}
_MAX_CHAOS = 0.5


def _detect(data: bytes) -> Decoded | None:
    matches = charset_normalizer.from_bytes(data[:_DETECT_SAMPLE], threshold=_MAX_CHAOS)
    ranked = sorted(
        matches,
        key=lambda m: m.chaos - _PRIOR.get(m.encoding, 0.0),
    )
    for match in ranked:
        codec = codec_for(match.encoding)
        if not codec:
            continue
        text = _try(data, codec)
        if text is not None:
            return Decoded(text, codec, "detected")
    return None


_UTF8_SEQ = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)
_HIGH = re.compile(rb"[\x80-\xff]")


def _broken_utf8(data: bytes) -> str | None:
    """UTF-8 with invalid bytes (or UTF-8 mixed with a legacy encoding): no single
    decoding is right, and reading it as a legacy encoding would garble the UTF-8 part."""
    sample = data[:_DETECT_SAMPLE]
    high = len(_HIGH.findall(sample))
    in_utf8 = sum(len(m) for m in _UTF8_SEQ.findall(sample))
    if high and in_utf8 > 0.5 * high:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            return (
                f"mostly UTF-8 but not valid UTF-8: {exc.reason} at byte {exc.start}"
                f" (of {len(data)}); mixed or broken encodings are not guessed"
            )
    return None


def decode(data: bytes, declared: str | None = None) -> Decoded:
    """Decode ``data``; ``declared`` is an outside declaration (e.g. an HTTP charset)."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            text = _try(data[len(bom) :], codec)
            if text is not None:
                return Decoded(text, codec, "bom")
            break
    wide = _sniff_wide(data)
    if wide:
        text = _try(data, wide)
        if text is not None:
            return Decoded(text, wide, "sniffed")
    label = _declared(data) or declared
    codec = codec_for(label)
    if codec:
        if codec in _AS_CP1252:
            text = _try(data, "cp1252")
            if text is not None:
                return Decoded(text, "cp1252", "declared")
        if codec in ("utf-16", "utf-32"):
            codec = _endian(data, codec)
        text = _try(data, codec)
        if text is not None:
            return Decoded(text, codec, "declared")
    text = _try(data, "utf-8")
    if text is not None:
        return Decoded(text, "utf-8", "utf-8")
    broken = _broken_utf8(data)
    if broken:
        raise DecodeError(broken)
    detected = _detect(data)
    if detected is not None:
        return detected
    what = f"declared {label!r} does not decode and " if label else ""
    raise DecodeError(
        f"{what}no credible text encoding found for {len(data)} bytes"
        " (not UTF-8/16/32, no detector match)"
    )


def decode_text(data: bytes, declared: str | None = None) -> str:
    """The text of :func:`decode`."""
    return decode(data, declared).text
