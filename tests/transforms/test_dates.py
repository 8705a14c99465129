"""Tests for khabar.transforms.dates.parse_date.

Expected values are worked out by hand, not with jdatetime, from these anchors:
1 Farvardin 1404 = 2025-03-21, 1 Farvardin 1405 = 2026-03-21 (so 1404 has 365 days and
its Esfand 29), 1 Farvardin 1399 = 2020-03-20, 1 Farvardin 1403 = 2024-03-20; months
1-6 have 31 days, 7-11 have 30. Hence 1405/09/07 = 2026-11-28, 1405/09/08 = 2026-11-29.
Tehran is UTC+03:30 (it also had +04:30 summer time until 2022), Kabul UTC+04:30.
"""

from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

import pytest

from khabar.transforms.dates import MAX_INPUT_CHARS, DateParseError, parse_date

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def parse(value: str, default_tz: str | None = None) -> dt.datetime:
    return parse_date(value, default_tz, now=NOW)


# 2026-11-28 07:00 UTC, the instant most examples below denote.
T0 = utc(2026, 11, 28, 7, 0)


# --- RFC 822 / 2822 ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Sat, 28 Nov 2026 07:00:00 GMT", T0),
        ("Sat, 28 Nov 2026 07:00:00 UT", T0),
        ("Sat, 28 Nov 2026 07:00:00 +0000", T0),
        ("Sat, 28 Nov 2026 07:00:00 -0000", T0),  # RFC 2822: UTC, local zone unknown
        ("Sat, 28 Nov 2026 10:30:00 +0330", T0),
        ("Sat, 28 Nov 2026 11:30:00 +0430", T0),
        ("Fri, 27 Nov 2026 23:00:00 -0800", T0),
        ("Sat, 28 Nov 2026 02:00:00 EST", T0),
        ("28 Nov 2026 07:00 GMT", T0),  # no weekday, no seconds
        ("sat, 28 nov 2026 07:00:00 gmt", T0),
        ("Sat, 28 Nov 26 07:00:00 GMT", T0),  # two-digit year
        ("Sat, 28 Nov 2026 07:00:00", T0),  # naive: UTC by default
        ("28 Nov 2026", utc(2026, 11, 28)),  # date only
    ],
)
def test_rfc822(value: str, expected: dt.datetime) -> None:
    assert parse(value) == expected


def test_rfc822_naive_uses_default_tz() -> None:
    assert parse("Sat, 28 Nov 2026 10:30:00", "Asia/Tehran") == T0
    # An explicit offset wins over default_tz.
    assert parse("Sat, 28 Nov 2026 07:00:00 GMT", "Asia/Tehran") == T0


# --- ISO 8601 --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-28", utc(2026, 11, 28)),
        ("2026-11-28T07:00:00Z", T0),
        ("2026-11-28t07:00:00z", T0),
        ("2026-11-28 07:00:00Z", T0),
        ("2026-11-28T07:00Z", T0),
        ("2026-11-28T07:00:00", T0),  # naive: UTC by default
        ("2026-11-28T07:00:00+00:00", T0),
        ("2026-11-28T10:30:00+03:30", T0),
        ("2026-11-28T10:30:00+0330", T0),
        ("2026-11-28T10:30:00 +03:30", T0),
        ("2026-11-28T10:00:00+03", T0),
        ("2026-11-27T23:00:00-08:00", T0),
        ("2026-11-28T07:00:00 UTC", T0),
        ("2026-11-28T07:00:00.5Z", utc(2026, 11, 28, 7, 0, 0, 500000)),
        ("2026-11-28T07:00:00.123Z", utc(2026, 11, 28, 7, 0, 0, 123000)),
        ("2026-11-28T07:00:00,123456Z", utc(2026, 11, 28, 7, 0, 0, 123456)),
        ("2026-11-28T07:00:00.123456789Z", utc(2026, 11, 28, 7, 0, 0, 123456)),  # truncated
        ("  2026-11-28T07:00:00Z\n", T0),
        ("2001-09-09T01:46:40Z", utc(2001, 9, 9, 1, 46, 40)),
    ],
)
def test_iso8601(value: str, expected: dt.datetime) -> None:
    assert parse(value) == expected


def test_iso_naive_uses_default_tz() -> None:
    assert parse("2026-11-28T10:30:00", "Asia/Tehran") == T0
    assert parse("2026-11-28", "Asia/Tehran") == utc(2026, 11, 27, 20, 30)
    assert parse("2026-11-28T02:00:00", "America/New_York") == T0  # EST, -05:00
    assert parse("2026-07-01T03:00:00", "America/New_York") == utc(2026, 7, 1, 7)  # EDT
    assert parse("2026-11-28T07:00:00Z", "Asia/Tehran") == T0


# --- Unix epoch ------------------------------------------------------------------------

EPOCH_T0 = (dt.date(2026, 11, 28) - dt.date(1970, 1, 1)).days * 86400 + 7 * 3600


def test_epoch_seconds_and_millis() -> None:
    assert EPOCH_T0 == 1795849200
    assert parse(str(EPOCH_T0)) == T0
    assert parse(str(EPOCH_T0 * 1000)) == T0
    assert parse(str(EPOCH_T0 * 1000 + 250)) == utc(2026, 11, 28, 7, 0, 0, 250000)
    assert parse("1000000000") == utc(2001, 9, 9, 1, 46, 40)
    assert parse("999999999") == utc(2001, 9, 9, 1, 46, 39)  # 9 digits
    assert parse_date(EPOCH_T0, now=NOW) == T0  # an int is tolerated too


def test_epoch_is_utc_whatever_default_tz() -> None:
    assert parse(str(EPOCH_T0), "Asia/Tehran") == T0


def test_compact_date() -> None:
    assert parse("20261128") == utc(2026, 11, 28)
    assert parse("14050907") == utc(2026, 11, 27, 20, 30)  # Jalali, Tehran midnight


@pytest.mark.parametrize(
    "value",
    [
        "0",
        "12345",
        "1234567",
        "12345678901",  # 11 digits: neither seconds nor milliseconds
        "12345678901234",
        "9999999999",  # year 2286: in the future
        "9999999999999",
        "00000000",  # compact date with month 0
    ],
)
def test_epoch_insane(value: str) -> None:
    with pytest.raises(DateParseError):
        parse(value)


# --- Solar Hijri (Jalali) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # The forms from the brief; naive Jalali is Tehran time (UTC+03:30).
        ("۷ آذر ۱۴۰۵ - ۱۰:۳۰", T0),
        ("1405/09/07", utc(2026, 11, 27, 20, 30)),
        ("۱۴۰۵/۰۹/۰۷ ۱۰:۳۰", T0),
        ("1405-09-07 10:30:00", T0),
        ("شنبه ۸ آذر ۱۴۰۵ ساعت ۱۰:۳۰", utc(2026, 11, 29, 7, 0)),  # weekday not checked
        ("یک‌شنبه ۸ آذر ۱۴۰۵ ساعت ۱۰:۳۰", utc(2026, 11, 29, 7, 0)),
        # Digits: Persian, Arabic-Indic, Latin, mixed.
        ("٧ آذر ١٤٠٥ - ١٠:٣٠", T0),
        ("7 آذر 1405 - 10:30", T0),
        ("۷ آذر 1405 - 10:30", T0),
        # Separators, order, padding, fillers.
        ("۱۴۰۵/۹/۷ - ۱۰:۳۰", T0),
        ("1405.09.07 10:30", T0),
        ("1405-09-07T10:30", T0),
        ("۱۰:۳۰ - ۱۴۰۵/۰۹/۰۷", T0),
        ("ساعت ۱۰:۳۰ - ۱۴۰۵/۰۹/۰۷", T0),
        ("۱۴۰۵/۰۹/۰۷ | ۱۰:۳۰", T0),
        ("۱۴۰۵/۰۹/۰۷، ۱۰:۳۰", T0),
        ("10:30:00 1405/09/07", T0),
        ("07/09/1405 10:30", T0),  # D/M/Y with a Jalali year
        ("۷ آذرماه ۱۴۰۵ - ۱۰:۳۰", T0),
        ("۷ آذر ماه ۱۴۰۵ ساعت ۱۰:۳۰", T0),
        ("تاریخ انتشار: ۷ آذر ۱۴۰۵ - ۱۰:۳۰", T0),
        ("منتشر شده در شنبه ۷ آذر ۱۴۰۵ ساعت ۱۰:۳۰", T0),
        ("۷ آذر ۱۴۰۵ هجری شمسی ساعت ۱۰:۳۰", T0),
        ("پنجشنبه، ۵ آذر ۱۴۰۵ - ۱۰:۳۰", utc(2026, 11, 26, 7, 0)),
        ("پنج‌شنبه ۵ آذر ۱۴۰۵", utc(2026, 11, 25, 20, 30)),
        ("سه شنبه ۳ آذر ۱۴۰۵", utc(2026, 11, 23, 20, 30)),
        ("جمعه ۶ آذر ۱۴۰۵ ۱۰:۳۰:۴۵", utc(2026, 11, 27, 7, 0, 45)),
        # a.m./p.m.
        ("۷ آذر ۱۴۰۵ ۱۰:۳۰ ق.ظ", T0),
        ("۷ آذر ۱۴۰۵ ۱۲:۱۵ ب.ظ", utc(2026, 11, 28, 8, 45)),
        ("۷ آذر ۱۴۰۵ ۳:۲۰ ب.ظ", utc(2026, 11, 28, 11, 50)),
        ("۷ آذر ۱۴۰۵ ۱۲:۱۵ ق.ظ", utc(2026, 11, 27, 20, 45)),
        # Invisible marks and spacing that sites leave in dates.
        ("\u200f۷ آذر ۱۴۰۵ - ۱۰:۳۰\u200f", T0),
        ("\u202b۷\u00a0آذر\u00a0۱۴۰۵\u202c  -  ۱۰:۳۰", T0),
        # With an explicit offset (ISO shape), the offset wins.
        ("1405-09-07T10:30:00+03:30", T0),
        ("1405-09-07T07:00:00Z", T0),
        ("1405-09-07 07:00:00 UTC", T0),
    ],
)
def test_jalali(value: str, expected: dt.datetime) -> None:
    assert parse(value) == expected


@pytest.mark.parametrize(
    ("month_name", "gregorian"),
    [
        # 1 <month> 1404 -> Gregorian date, counted from 1 Farvardin 1404 = 2025-03-21.
        ("فروردین", dt.date(2025, 3, 21)),
        ("اردیبهشت", dt.date(2025, 4, 21)),
        ("خرداد", dt.date(2025, 5, 22)),
        ("تیر", dt.date(2025, 6, 22)),
        ("مرداد", dt.date(2025, 7, 23)),
        ("امرداد", dt.date(2025, 7, 23)),
        ("شهریور", dt.date(2025, 8, 23)),
        ("مهر", dt.date(2025, 9, 23)),
        ("آبان", dt.date(2025, 10, 23)),
        ("آذر", dt.date(2025, 11, 22)),
        ("دی", dt.date(2025, 12, 22)),
        ("بهمن", dt.date(2026, 1, 21)),
        ("اسفند", dt.date(2026, 2, 20)),
        # Arabic yeh (ي) and kaf (ك) spellings.
        ("فروردين", dt.date(2025, 3, 21)),
        ("ارديبهشت", dt.date(2025, 4, 21)),
        ("شهريور", dt.date(2025, 8, 23)),
        ("دي", dt.date(2025, 12, 22)),
        ("دى", dt.date(2025, 12, 22)),
    ],
)
def test_all_jalali_months(month_name: str, gregorian: dt.date) -> None:
    # Midnight in Tehran is 20:30 UTC the day before.
    expected = dt.datetime.combine(gregorian, dt.time(), UTC) - dt.timedelta(hours=3, minutes=30)
    assert parse(f"۱ {month_name} ۱۴۰۴") == expected
    assert parse(f"1 {month_name} 1404 - 03:30") == dt.datetime.combine(gregorian, dt.time(), UTC)


def test_numeric_months_match_names() -> None:
    for month in range(1, 13):
        by_number = parse(f"1404/{month:02d}/01")
        assert by_number.tzinfo is not None and by_number.utcoffset() == dt.timedelta(0)
    assert parse("1404/10/01") == parse("۱ دی ۱۴۰۴")


def test_jalali_leap_years() -> None:
    # 1403 is a leap year (Esfand 30 exists: 1 Farvardin 1404 is 2025-03-21); 1404 is not.
    assert parse("1403/12/30") == utc(2025, 3, 19, 20, 30)
    with pytest.raises(DateParseError):
        parse("1404/12/30")


def test_tehran_daylight_saving_history() -> None:
    # Iran kept summer time (+04:30) until 2022: 1 Mordad 1399 = 2020-07-22.
    assert parse("1399/05/01 12:00") == utc(2020, 7, 22, 7, 30)
    # ... and none since: 1 Mordad 1403 = 2024-07-22, +03:30.
    assert parse("1403/05/01 12:00") == utc(2024, 7, 22, 8, 30)
    # Winter was +03:30 either way: 1 Dey 1398 = 2019-12-22.
    assert parse("1398/10/01 12:00") == utc(2019, 12, 22, 8, 30)


def test_jalali_default_tz_override() -> None:
    assert parse("1405/09/07 10:30", "UTC") == utc(2026, 11, 28, 10, 30)
    assert parse("۷ آذر ۱۴۰۵ - ۱۱:۳۰", "Asia/Kabul") == T0


def test_afghan_month_names_default_to_kabul() -> None:
    # Same solar calendar (قوس = month 9); Kabul is UTC+04:30.
    assert parse("7 قوس 1405") == utc(2026, 11, 27, 19, 30)
    assert parse("۷ قوس ۱۴۰۵ ساعت ۱۱:۳۰") == T0
    assert parse("۱ حمل ۱۴۰۵") == utc(2026, 3, 20, 19, 30)


def test_gregorian_month_names_in_persian_and_arabic() -> None:
    assert parse("۲۸ نوامبر ۲۰۲۶") == utc(2026, 11, 28)
    assert parse("۲۸ نوامبر ۲۰۲۶ - ۰۷:۰۰") == T0
    assert parse("28 نوفمبر 2026") == utc(2026, 11, 28)
    assert parse("٢٨ نوفمبر ٢٠٢٦ ٠٧:٠٠") == T0
    assert parse("۲۸ نوامبر ۲۰۲۶ - ۱۰:۳۰", "Asia/Tehran") == T0


def test_numeric_year_range_decides_calendar() -> None:
    tehran = ZoneInfo("Asia/Tehran")
    # 1300 is the first Jalali year: 1 Farvardin 1300 = 1921-03-21.
    assert parse("1300/01/01").astimezone(tehran).date() == dt.date(1921, 3, 21)
    assert parse("1300-01-01").astimezone(tehran).date() == dt.date(1921, 3, 21)
    # 2026/11/28 is Gregorian (naive: UTC).
    assert parse("2026/11/28 07:00") == T0
    assert parse("۲۰۲۶/۱۱/۲۸ ۰۷:۰۰") == T0
    # Outside 1300-1499 a year is Gregorian, and then too old.
    for value in ("1299/12/29", "1500/01/01", "1500-01-01"):
        with pytest.raises(DateParseError, match="before 1900"):
            parse(value)


# --- invalid input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "\u200f",
        "yesterday-ish",
        "N/A",
        "null",
        "None",
        "today",
        "امروز",
        "دیروز",
        "1 2 3",
        "2026",
        "11/28",
        "۷ آذر",  # no year
        "آذر ۱۴۰۵",  # no day
        "1405/13/01",
        "1405/00/10",
        "1405/09/32",
        "1405/07/31",  # Mehr has 30 days
        "2026-02-30",
        "2026-13-01",
        "2026-11-28T25:00:00Z",
        "2026-11-28T07:61:00Z",
        "2026-11-28T07:00:00+99:00",
        "2026-11-28 garbage",
        "۷ آذر ۱۴۰۵ و ۸ آذر ۱۴۰۵",
        "۷ آذر ۱۴۰۵ ۲۵:۰۰",
        "۷ آذر ۱۴۰۵ ۱۳:۰۰ ب.ظ",
        "28/11/2026",  # Gregorian D/M/Y vs M/D/Y is ambiguous
        "11/12/2026",
        "Sat, 99 Nov 2026 07:00:00 GMT",
        "Nov 2026",
        "<script>alert(1)</script>",
        "2026-11-28T07:00:00Z; DROP TABLE",
        "0001-01-01T00:00:00+01:00",  # before datetime.min in UTC
        "9999-12-31T23:59:59-01:00",  # after datetime.max in UTC
    ],
)
def test_garbage_rejected(value: str) -> None:
    with pytest.raises(DateParseError):
        parse(value)


@pytest.mark.parametrize(
    "value",
    [
        "1899-12-31T23:59:59Z",
        "1 Jan 1899 00:00:00 GMT",
        "0001-01-01",
        "1250/01/01",  # Jalali 1250 is 1871
        "۱ فروردین ۱۲۷۸",  # 1899
        "1 قوس 1200",
        "۱ ژانویه ۱۸۹۹",
    ],
)
def test_too_old_rejected(value: str) -> None:
    with pytest.raises(DateParseError, match="before 1900"):
        parse(value)


def test_year_1900_accepted() -> None:
    assert parse("1900-01-01T00:00:00Z") == utc(1900, 1, 1)


@pytest.mark.parametrize(
    "value",
    [
        "2030-01-01",
        "1405/10/01",  # 2026-12-22
        "۱ دی ۱۴۰۵",
        "Thu, 31 Dec 2026 00:00:00 GMT",
        "2026-12-01T12:00:01Z",  # NOW + 2 days + 1 s
    ],
)
def test_future_rejected(value: str) -> None:
    with pytest.raises(DateParseError, match="future"):
        parse(value)


def test_future_boundary() -> None:
    assert parse("2026-12-01T12:00:00Z") == NOW + dt.timedelta(days=2)
    # "now" is injectable and the window moves with it.
    later = NOW + dt.timedelta(days=30)
    assert parse_date("1405/10/01", now=later) == utc(2026, 12, 21, 20, 30)
    # A naive "now" is taken as UTC.
    assert parse_date("2026-12-01T12:00:00Z", now=NOW.replace(tzinfo=None)) == utc(2026, 12, 1, 12)


def test_default_now_is_the_clock() -> None:
    with pytest.raises(DateParseError, match="future"):
        parse_date("2999-01-01")
    assert parse_date("2001-01-01T00:00:00Z") == utc(2001, 1, 1)


# --- errors, bounds, zones -------------------------------------------------------------


def test_error_is_a_value_error_quoting_the_input() -> None:
    with pytest.raises(DateParseError) as info:
        parse("yesterday-ish")
    assert isinstance(info.value, ValueError)
    assert "'yesterday-ish'" in str(info.value)


def test_error_message_truncates_long_input() -> None:
    value = "x" * 150
    with pytest.raises(DateParseError) as info:
        parse(value)
    message = str(info.value)
    assert "x" * 80 + "…" in message
    assert "x" * 81 not in message


def test_input_length_bounded() -> None:
    ok = "2026-11-28T07:00:00Z".ljust(MAX_INPUT_CHARS)
    assert parse(ok) == T0
    with pytest.raises(DateParseError, match="longer than"):
        parse(ok + " ")


@pytest.mark.parametrize(
    "value",
    [
        "۱" * 1_000_000,
        "آذر " * 300_000,
        "1405/" * 200_000,
        ("۷ آذر ۱۴۰۵ " * 15)[:MAX_INPUT_CHARS],
        (("1" * 40 + ":") * 5)[:MAX_INPUT_CHARS],
        ("Sat, 28 Nov " * 20)[:MAX_INPUT_CHARS],
    ],
)
def test_hostile_input_is_fast(value: str) -> None:
    start = time.perf_counter()
    with pytest.raises(DateParseError):
        parse(value)
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize("value", [None, b"2026-11-28", 3.5, True, ["2026-11-28"]])
def test_non_string_rejected(value: object) -> None:
    with pytest.raises(DateParseError, match="expected a string"):
        parse_date(value, now=NOW)  # type: ignore[arg-type]


def test_unknown_default_tz_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="unknown time zone") as info:
        parse_date("2026-11-28", "Mars/Olympus", now=NOW)
    assert not isinstance(info.value, DateParseError)


def test_result_is_aware_utc() -> None:
    for value in ["Sat, 28 Nov 2026 10:30:00 +0330", "۷ آذر ۱۴۰۵ - ۱۰:۳۰", "1795849200"]:
        result = parse(value)
        assert result.tzinfo is UTC
        assert result == T0


def test_random_input_raises_only_date_parse_error() -> None:
    import random

    rng = random.Random(1405)
    alphabet = "0123456789۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩ :/-.T+Zz,،آذردیيكساعتشنبهNovSatGMT\u200c\u200f"
    for _ in range(3000):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        try:
            result = parse(value)
        except DateParseError:
            continue
        assert result.tzinfo is UTC
        assert dt.datetime(1900, 1, 1, tzinfo=UTC) <= result <= NOW + dt.timedelta(days=2)


# --- zones, odd offsets, years and float epochs (issue 15) ---------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Sat, 28 Nov 2026 07:00:00 PT", T0 + dt.timedelta(hours=8)),
        ("Sat, 28 Nov 2026 07:00:00 ET", T0 + dt.timedelta(hours=5)),
        ("Sat, 28 Nov 2026 07:00:00 CT", T0 + dt.timedelta(hours=6)),
        ("Sat, 28 Nov 2026 07:00:00 MT", T0 + dt.timedelta(hours=7)),
        ("Sat, 28 Nov 2026 07:00:00 AT", T0 + dt.timedelta(hours=4)),
        ("Sat, 28 Nov 2026 07:00:00 MET", T0 - dt.timedelta(hours=1)),
        ("Sat, 28 Nov 2026 07:00:00 MEST", T0 - dt.timedelta(hours=2)),
        ("Sat, 28 Nov 2026 10:30:00 IRST", T0),
        ("Sat, 28 Nov 2026 07:00:00 -01:01", T0 + dt.timedelta(hours=1, minutes=1)),
        ("2026-11-28T07:00:00-01:01", T0 + dt.timedelta(hours=1, minutes=1)),
        ("Sat, 28 Nov 2026 10:00:00 GMT+3", T0),
        ("Sat Nov 28 07:00:00 2026", T0),  # asctime
        ("Sat Nov 28 02:00:00 EST 2026", T0),
    ],
)
def test_zone_abbreviations_and_offsets(value: str, expected: dt.datetime) -> None:
    assert parse(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "Sat, 28 Nov 2026 07:00:00 XYZ",  # unknown abbreviation: never silently UTC
        "Sat, 28 Nov 2026 07:00:00 IST",  # India, Israel or Ireland: ambiguous
        "Sat, 28 Nov 2026 07:00:00 +zz:00",
        "Mon, 01 Jan 0001 00:00:00 GMT",  # year 1, not 2001
        "0001-01-01T00:00:00Z",
    ],
)
def test_unknown_zones_and_year_one_are_refused(value: str) -> None:
    with pytest.raises(DateParseError):
        parse(value)


def test_float_epochs() -> None:
    assert parse("1.5e9") == dt.datetime(2017, 7, 14, 2, 40, tzinfo=dt.UTC)
    assert parse("1732780800.25") == dt.datetime(2024, 11, 28, 8, 0, 0, 250000, tzinfo=dt.UTC)
    assert parse("1732780800250.0") == dt.datetime(2024, 11, 28, 8, 0, 0, 250000, tzinfo=dt.UTC)
    with pytest.raises(DateParseError):
        parse("1.5e20")


def test_json_float_epoch_and_implausible_date_keep_the_article() -> None:
    from khabar.transforms.parse import parse_record
    from khabar.transforms.split import RawRecord

    def article(published: str) -> dict:
        line = b'{"title": "t", "body": "b", "published": ' + published.encode() + b"}"
        return parse_record(RawRecord("mem://a.jsonl", 1, "jsonl", line).to_dict())

    assert article("1.5e9")["published_at"] == dt.datetime(2017, 7, 14, 2, 40, tzinfo=dt.UTC)
    for bad in ('"Mon, 01 Jan 0001 00:00:00 GMT"', '"2999-01-01"', '"Sat, 28 Nov 2026 7:00 XYZ"'):
        kept = article(bad)
        assert kept["published_at"] is None and kept["title"] == "t"
        assert kept["_date_error"].startswith("cannot parse date")


def test_other_forms_feedparser_knows() -> None:
    assert parse("2003-12-31T10:14:55.1234Z") == dt.datetime(
        2003, 12, 31, 10, 14, 55, 123400, tzinfo=dt.UTC
    )
    # Korean (OnBlog) via feedparser's handler
    assert parse("2004-05-25 오후 11:23:17") == dt.datetime(2004, 5, 25, 14, 23, 17, tzinfo=dt.UTC)
