"""Parse publication dates as news sites print them; Beam-free.

:func:`parse_date` turns one date string into an aware :class:`datetime.datetime` in
UTC, or raises :class:`DateParseError`. Accepted forms, tried in this order:

* Unix epoch as a string of digits: 9-10 digits are seconds, 12-13 digits are
  milliseconds; 8 digits are a compact ``YYYYMMDD`` date.
* ISO 8601 (``2026-11-28``, ``2026-11-28T07:00:00Z``, ``2026-11-28 10:30:00.123+03:30``),
  ``T`` or space between date and time, ``Z``/``UTC``/``GMT`` or a numeric offset.
* RFC 822/2822 as in RSS (``Sat, 28 Nov 2026 07:00:00 GMT``, ``+0330`` offsets), read
  with :mod:`email.utils`.
* Free-form dates as Persian (and Arabic, Dari) sites print them, with Persian (۰-۹),
  Arabic-Indic (٠-٩) or Latin digits: ``۷ آذر ۱۴۰۵ - ۱۰:۳۰``, ``1405/09/07``,
  ``۱۴۰۵/۰۹/۰۷ ۱۰:۳۰``, ``شنبه ۸ آذر ۱۴۰۵ ساعت ۱۰:۳۰``, ``۱۰:۳۰ - ۱۴۰۵/۰۹/۰۷``,
  ``۲۸ نوامبر ۲۰۲۶``. Weekday names, ``ساعت``, ``تاریخ انتشار:`` and ``ق.ظ``/``ب.ظ``
  (a.m./p.m.) are understood; weekday names are not checked against the date (sites
  get them wrong). Arabic yeh/kaf spellings of month names (``دي``) are accepted.

Calendar: a numeric ``Y/M/D`` date is Solar Hijri (Jalali) when the year is 1300-1499
and Gregorian otherwise; a written month name decides by itself (Iranian and Afghan
solar month names are Jalali; Persian and Arabic names of Gregorian months are
Gregorian). Jalali dates are converted with :mod:`jdatetime`.

Zones: a value with an offset keeps it. A naive value is read in ``default_tz`` (an
IANA zone name) when given; otherwise Jalali dates are read in ``Asia/Tehran`` (in
``Asia/Kabul`` when written with Afghan month names) and everything else in UTC.
:mod:`zoneinfo` knows Iran's former daylight saving time (abolished in 2022).

Sanity: results before 1900 or more than two days after ``now`` are rejected, and so
is input longer than :data:`MAX_INPUT_CHARS`, so hostile input stays cheap.
"""

from __future__ import annotations

import datetime as _dt
import email.utils
import functools
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jdatetime
from feedparser.datetimes import (
    _parse_date_greek,
    _parse_date_hungarian,
    _parse_date_nate,
    _parse_date_onblog,
    _parse_date_perforce,
)

__all__ = ["MAX_FUTURE", "MAX_INPUT_CHARS", "MIN_YEAR", "DateParseError", "parse_date"]

MAX_INPUT_CHARS = 200
MIN_YEAR = 1900
MAX_FUTURE = _dt.timedelta(days=2)
JALALI_YEARS = range(1300, 1500)
TEHRAN = "Asia/Tehran"
KABUL = "Asia/Kabul"

_UTC = _dt.UTC
_SHOWN_CHARS = 80


class DateParseError(ValueError):
    """A publication date that cannot be read (or is not a sane publication date)."""


# --- normalization ---------------------------------------------------------------

_CHAR_MAP = {ord(c): str(i) for i, c in enumerate("۰۱۲۳۴۵۶۷۸۹")}
_CHAR_MAP.update({ord(c): str(i) for i, c in enumerate("٠١٢٣٤٥٦٧٨٩")})
_CHAR_MAP.update(
    {
        ord("ي"): "ی",  # Arabic yeh
        ord("ى"): "ی",  # Arabic alef maksura
        ord("ك"): "ک",  # Arabic kaf
        ord("ة"): "ه",
        ord("أ"): "ا",
        ord("إ"): "ا",
        ord("\u0640"): None,  # tatweel
        ord("\u200c"): " ",  # ZWNJ (یک‌شنبه)
        ord("\u00a0"): " ",  # no-break space
        ord("\u202f"): " ",
        ord("\u066b"): ".",  # Arabic decimal separator
        ord("\u060c"): ",",  # Arabic comma
        ord("\u061b"): ",",  # Arabic semicolon
        ord("\u2013"): "-",
        ord("\u2014"): "-",
        ord("\u2212"): "-",
        ord("\u2010"): "-",
        ord("\u2011"): "-",
    }
)
# Invisible marks that sites sprinkle into dates: ZWJ, BOM, bidi controls.
for _c in ("\u200b", "\u200d", "\u200e", "\u200f", "\ufeff", "\u061c"):
    _CHAR_MAP[ord(_c)] = None
for _c in range(0x202A, 0x202F):
    _CHAR_MAP[_c] = None
for _c in range(0x2066, 0x206A):
    _CHAR_MAP[_c] = None

_SPACES = re.compile(r"\s+")


def _normalize(value: str) -> str:
    return _SPACES.sub(" ", value.translate(_CHAR_MAP)).strip()


# --- month names -----------------------------------------------------------------
# name (already normalized: Persian yeh/kaf) -> (calendar, month number)
_JALALI, _GREGORIAN, _AFGHAN = "jalali", "gregorian", "afghan"

_MONTHS: dict[str, tuple[str, int]] = {}
for _i, _names in enumerate(
    [
        ("فروردین",),
        ("اردیبهشت",),
        ("خرداد",),
        ("تیر",),
        ("مرداد", "امرداد"),
        ("شهریور",),
        ("مهر",),
        ("آبان",),
        ("آذر",),
        ("دی",),
        ("بهمن",),
        ("اسفند",),
    ],
    start=1,
):
    for _n in _names:
        _MONTHS[_n] = (_JALALI, _i)
for _i, _n in enumerate(
    ["حمل", "ثور", "جوزا", "سرطان", "اسد", "سنبله", "میزان", "عقرب", "قوس", "جدی", "دلو", "حوت"],
    start=1,
):
    _MONTHS[_n] = (_AFGHAN, _i)
_MONTHS["جوزه"] = (_AFGHAN, 3)
for _i, _names in enumerate(
    [
        ("ژانویه", "ژانویه", "يناير", "ینایر", "کانون الثانی"),
        ("فوریه", "فبرایر", "شباط"),
        ("مارس", "آذار"),
        ("آوریل", "آپریل", "ابریل", "نیسان"),
        ("مه", "می", "مایو", "ایار"),
        ("ژوئن", "یونیو", "حزیران"),
        ("ژوئیه", "جولای", "یولیو", "تموز"),
        ("اوت", "آگوست", "اغسطس", "آب"),
        ("سپتامبر", "سبتمبر", "ایلول"),
        ("اکتبر", "اکتوبر", "تشرین الاول"),
        ("نوامبر", "نوفمبر", "تشرین الثانی"),
        ("دسامبر", "دیسمبر", "کانون الاول"),
    ],
    start=1,
):
    for _n in _names:
        # Persian names win where a word is both (آذر is a Jalali month, آذار is March).
        _MONTHS.setdefault(_normalize(_n), (_GREGORIAN, _i))

_MONTH_ALT = "|".join(re.escape(n) for n in sorted(_MONTHS, key=len, reverse=True))
_NOT_LETTER_BEFORE = r"(?<![^\W\d_])"
_NOT_LETTER_AFTER = r"(?![^\W\d_])"

# --- patterns ----------------------------------------------------------------------

_EPOCH = re.compile(r"\d+")
_EPOCH_FLOAT = re.compile(r"\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?")

_ISO = re.compile(
    r"(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})"
    r"(?:[T ](?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:[.,](?P<f>\d{1,9}))?)?"
    r" ?(?P<tz>Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?)?",
    re.IGNORECASE,
)

_RFC_HINT = re.compile(
    r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b", re.IGNORECASE
)
_RFC_HAS_TIME = re.compile(r"\d:\d")
_RFC_NEG_ZERO = re.compile(r"-0000\s*$")

_DATE_YMD = re.compile(r"(?<!\d)(?P<y>\d{4})[/.\-](?P<m>\d{1,2})[/.\-](?P<d>\d{1,2})(?!\d)")
_DATE_DMY = re.compile(r"(?<!\d)(?P<d>\d{1,2})[/.\-](?P<m>\d{1,2})[/.\-](?P<y>\d{4})(?!\d)")
_DATE_TEXT = re.compile(
    r"(?<!\d)(?P<d>\d{1,2})(?:\s*ام)?\s*"
    + _NOT_LETTER_BEFORE
    + r"(?P<month>"
    + _MONTH_ALT
    + r")(?:\s*ماه)?"
    + _NOT_LETTER_AFTER
    + r"\s*,?\s*(?P<y>\d{4})(?!\d)"
)
_TIME = re.compile(
    r"(?<![\d:])(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?(?![\d:])"
    r"(?:\s*(?P<ampm>ق\s*\.?\s*ظ|ب\s*\.?\s*ظ|صبح|بعد از ظهر|عصر|شب)(?![^\W\d_]))?"
)
_FILLER = re.compile(
    _NOT_LETTER_BEFORE + r"(?:(?:یک|دو|سه|چهار|پنج)\s*شنبه|شنبه|جمعه"
    r"|تاریخ انتشار|زمان انتشار|منتشر شده در|منتشر شده|انتشار|تاریخ|ساعت"
    r"|هجری شمسی|هجری خورشیدی|شمسی|خورشیدی|ه\s*\.\s*ش|میلادی|م)" + _NOT_LETTER_AFTER
)
_LEFTOVER_OK = re.compile(r"[\s\-,|:/().]*")


# --- helpers -----------------------------------------------------------------------


def _shown(value: str) -> str:
    return value if len(value) <= _SHOWN_CHARS else value[:_SHOWN_CHARS] + "…"


def _fail(value: str, reason: str) -> DateParseError:
    return DateParseError(f"cannot parse date {_shown(value)!r}: {reason}")


@functools.lru_cache(maxsize=64)
def _zone(name: str) -> _dt.tzinfo:
    if name.upper() in ("UTC", "Z", "GMT"):
        return _UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def _offset(text: str) -> _dt.tzinfo:
    if text.upper() in ("Z", "UTC", "GMT"):
        return _UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 14 or minutes > 59:
        raise ValueError(f"offset out of range: {text}")
    return _dt.timezone(sign * _dt.timedelta(hours=hours, minutes=minutes))


def _to_gregorian(calendar: str, y: int, m: int, d: int) -> _dt.date:
    if calendar == _GREGORIAN:
        return _dt.date(y, m, d)
    return jdatetime.date(y, m, d).togregorian()


def _numeric_calendar(year: int) -> str:
    return _JALALI if year in JALALI_YEARS else _GREGORIAN


def _naive_zone(calendar: str, default_tz: str | None) -> _dt.tzinfo:
    if default_tz:
        return _zone(default_tz)
    if calendar == _JALALI:
        return _zone(TEHRAN)
    if calendar == _AFGHAN:
        return _zone(KABUL)
    return _UTC


def _combine(date: _dt.date, hms: tuple[int, int, int, int], tz: _dt.tzinfo) -> _dt.datetime:
    h, mi, s, us = hms
    return _dt.datetime(date.year, date.month, date.day, h, mi, s, us, tzinfo=tz)


# --- the parsers; each returns None when the value is not in its form -----------------


def _parse_epoch(s: str) -> _dt.datetime | None:
    if not _EPOCH.fullmatch(s):
        if not _EPOCH_FLOAT.fullmatch(s):
            return None
        # a float epoch (JSON 1.5e9, 1732780800.25): seconds, or milliseconds when larger
        value = float(s)
        if 1e8 <= value < 1e11:
            return _dt.datetime.fromtimestamp(value, _UTC)
        if 1e11 <= value < 1e14:
            return _dt.datetime.fromtimestamp(value / 1000, _UTC)
        raise ValueError(f"{s} is neither epoch seconds nor milliseconds")
    n = len(s)
    if n == 8:  # compact YYYYMMDD
        y, m, d = int(s[:4]), int(s[4:6]), int(s[6:])
        cal = _numeric_calendar(y)
        return _combine(_to_gregorian(cal, y, m, d), (0, 0, 0, 0), _naive_zone(cal, None))
    if n in (9, 10):
        return _dt.datetime.fromtimestamp(int(s), _UTC)
    if n in (12, 13):
        return _dt.datetime.fromtimestamp(int(s) / 1000, _UTC)
    raise ValueError(f"{n} digits is neither epoch seconds (9-10) nor milliseconds (12-13)")


def _parse_iso(s: str, default_tz: str | None) -> _dt.datetime | None:
    m = _ISO.fullmatch(s)
    if not m:
        return None
    y = int(m["y"])
    cal = _numeric_calendar(y)
    date = _to_gregorian(cal, y, int(m["m"]), int(m["d"]))
    frac = (m["f"] or "")[:6].ljust(6, "0")
    hms = (int(m["H"] or 0), int(m["M"] or 0), int(m["S"] or 0), int(frac))
    tz = _offset(m["tz"]) if m["tz"] else _naive_zone(cal, default_tz)
    return _combine(date, hms, tz)


# Zone abbreviations with one meaning (feedparser's table, RFC 822's US zones, Iran's);
# any other abbreviation leaves the date empty rather than read it as UTC. Military
# one-letter zones are refused too: their signs are used both ways in the wild.
ZONE_ABBREVIATIONS = {
    "UT": "+0000", "UTC": "+0000", "GMT": "+0000", "Z": "+0000",
    "ADT": "-0300", "AST": "-0400", "AT": "-0400",
    "EDT": "-0400", "EST": "-0500", "ET": "-0500",
    "CDT": "-0500", "CST": "-0600", "CT": "-0600",
    "MDT": "-0600", "MST": "-0700", "MT": "-0700",
    "PDT": "-0700", "PST": "-0800", "PT": "-0800",
    "MET": "+0100", "MEST": "+0200", "CET": "+0100", "CEST": "+0200",
    "EET": "+0200", "EEST": "+0300", "IRST": "+0330", "IRDT": "+0430",
}
_RFC_ZONE = re.compile(r"(?<=\s)(?:(?P<abbr>[A-Za-z]{1,5})|(?:GMT|UTC)?(?P<num>[+-]\S*))\s*$")
_RFC_YEAR = re.compile(r"(?<![\d:+-])(?P<y>\d{3,4})(?![\d:])")
_ASCTIME = re.compile(
    r"(?P<dow>[A-Za-z]{3}),?\s+(?P<mon>[A-Za-z]{3})\s+(?P<d>\d{1,2})\s+"
    r"(?P<t>\d{1,2}:\d{2}(?::\d{2})?)\s+(?:(?P<z>[A-Za-z]{1,5})\s+)?(?P<y>\d{4})"
)


def _rfc_zone(s: str) -> str:
    """The RFC 822 text with its zone made numeric: ``PT`` -> ``-0800``, ``-01:01`` ->
    ``-0101``; an unknown abbreviation or a malformed offset raises ValueError."""
    m = _RFC_ZONE.search(s)
    if not m:
        return s
    if m["abbr"]:
        name = m["abbr"].upper()
        if name in _MONTH_ABBRS or name in _WEEKDAY_ABBRS:
            return s  # no zone written: the last word is the month or the weekday
        if name not in ZONE_ABBREVIATIONS:
            raise ValueError(f"unknown time zone abbreviation {m['abbr']!r}")
        return s[: m.start()] + ZONE_ABBREVIATIONS[name]
    num = m["num"]
    digits = num[1:].replace(":", "")
    if not digits.isdigit() or len(digits) not in (1, 2, 4):
        raise ValueError(f"malformed zone offset {num!r}")
    if len(digits) <= 2:
        digits = digits.zfill(2) + "00"
    return s[: m.start()] + num[0] + digits


_MONTH_ABBRS = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}
_WEEKDAY_ABBRS = {"MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"}


def _parse_rfc(s: str, default_tz: str | None) -> _dt.datetime | None:
    if not _RFC_HINT.search(s):
        return None
    asctime = _ASCTIME.fullmatch(s)
    if asctime:
        s = (
            f"{asctime['dow']}, {asctime['d']} {asctime['mon']} {asctime['y']} {asctime['t']}"
            + (f" {asctime['z']}" if asctime["z"] else "")
        )
    text = s if _RFC_HAS_TIME.search(s) else s + " 00:00:00"
    year = _RFC_YEAR.search(text)
    if year and len(year["y"]) >= 3 and int(year["y"]) < MIN_YEAR:
        # email.utils would read "0001" as 2001
        raise ValueError(f"year {int(year['y'])} is before {MIN_YEAR}")
    text = _rfc_zone(text)
    dt = email.utils.parsedate_to_datetime(text)  # ValueError when it is not RFC 2822
    if dt.tzinfo is None:
        # RFC 2822 "-0000" means UTC with no local zone known; no zone at all is naive.
        zone = _UTC if _RFC_NEG_ZERO.search(s) else _naive_zone(_GREGORIAN, default_tz)
        dt = dt.replace(tzinfo=zone)
    return dt


def _parse_other(s: str) -> _dt.datetime | None:
    """The other forms feedparser's date handlers know (Korean, Greek, Hungarian,
    Perforce). Its RFC 822 and asctime handlers are not used (they read an unknown zone
    as UTC), nor its ISO 8601/W3DTF ones (they accept a date followed by garbage)."""
    for handler in (
        _parse_date_onblog,
        _parse_date_nate,
        _parse_date_greek,
        _parse_date_hungarian,
        _parse_date_perforce,
    ):
        try:
            parsed = handler(s)
        except (KeyError, OverflowError, ValueError, AttributeError, TypeError, IndexError):
            continue
        if parsed and len(parsed) == 9:
            return _dt.datetime(*parsed[:6], tzinfo=_UTC)
    return None


def _parse_free(s: str, default_tz: str | None) -> _dt.datetime | None:
    rest = s
    m = _DATE_TEXT.search(rest)
    if m:
        cal, month = _MONTHS[m["month"]]
        y, d = int(m["y"]), int(m["d"])
    else:
        m = _DATE_YMD.search(rest)
        if not m:
            m = _DATE_DMY.search(rest)
            if not m:
                return None
            if int(m["y"]) not in JALALI_YEARS:
                # 03/04/2026 is March 4 in one country and April 3 in another.
                raise ValueError("day/month order of a Gregorian D/M/Y date is ambiguous")
        y, month, d = int(m["y"]), int(m["m"]), int(m["d"])
        cal = _numeric_calendar(y)
    rest = rest[: m.start()] + " " + rest[m.end() :]
    date = _to_gregorian(cal, y, month, d)

    hms = (0, 0, 0, 0)
    t = _TIME.search(rest)
    if t:
        hour, minute, sec = int(t["H"]), int(t["M"]), int(t["S"] or 0)
        ampm = t["ampm"]
        if ampm:
            if hour < 1 or hour > 12:
                raise ValueError(f"hour {hour} with {ampm}")
            pm = not (ampm.startswith("ق") or ampm == "صبح")
            if ampm == "شب" and hour < 5:  # "۲ شب" is 02:00, "۹ شب" is 21:00
                pm = False
            hour = hour % 12 + (12 if pm else 0)
        hms = (hour, minute, sec, 0)
        rest = rest[: t.start()] + " " + rest[t.end() :]

    rest = _FILLER.sub(" ", rest)
    if not _LEFTOVER_OK.fullmatch(rest):
        raise ValueError(f"unexpected text {rest.strip()[:40]!r}")
    return _combine(date, hms, _naive_zone(cal, default_tz))


# --- public API --------------------------------------------------------------------


def parse_date(
    value: str,
    default_tz: str | None = None,
    *,
    now: _dt.datetime | None = None,
) -> _dt.datetime:
    """Parse a publication date as news sites print it; return an aware datetime in UTC.

    ``default_tz`` (an IANA zone name such as ``"Asia/Tehran"``) is the zone of values
    printed without an offset; when None, Jalali dates are read in Asia/Tehran and other
    naive values in UTC. ``now`` (aware; naive means UTC) is the reference for the
    "not more than two days in the future" check and defaults to the current time.

    Raises :class:`DateParseError` (with a message quoting the input, truncated) when the
    value cannot be read or is not a sane publication date; raises :class:`ValueError`
    when ``default_tz`` is not a known zone.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise DateParseError(f"cannot parse date: expected a string, got {type(value).__name__}")
    if default_tz is not None:
        _zone(default_tz)  # a bad configuration is not a bad record: plain ValueError
    if len(value) > MAX_INPUT_CHARS:
        raise _fail(value, f"longer than {MAX_INPUT_CHARS} characters")
    s = _normalize(value)
    if not s:
        raise _fail(value, "empty")

    try:
        dt = (
            _parse_epoch(s)
            or _parse_iso(s, default_tz)
            or _parse_rfc(s, default_tz)
            or _parse_free(s, default_tz)
        )
    except (ValueError, OverflowError, OSError) as exc:
        if not isinstance(exc, ValueError) or _RFC_HINT.search(s) or _EPOCH_FLOAT.fullmatch(s):
            raise _fail(value, str(exc) or type(exc).__name__) from None
        dt = _parse_other(s)  # a form only feedparser's handlers know (Korean, Greek ...)
        if dt is None:
            raise _fail(value, str(exc) or type(exc).__name__) from None
    if dt is None:
        dt = _parse_other(s)
    if dt is None:
        raise _fail(value, "not a recognized date format")

    try:
        result = dt.astimezone(_UTC)
    except OverflowError:
        raise _fail(value, "out of range") from None
    if result.year < MIN_YEAR:
        raise _fail(value, f"year {result.year} is before {MIN_YEAR}")
    ref = now if now is not None else _dt.datetime.now(_UTC)
    if ref.tzinfo is None:
        ref = ref.replace(tzinfo=_UTC)
    if result > ref + MAX_FUTURE:
        raise _fail(
            value, f"{result.isoformat()} is more than {MAX_FUTURE.days} days in the future"
        )
    return result
