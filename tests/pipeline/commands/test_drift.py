"""Drift between two runs (`khabar inspect NEW --against OLD`), on real and made-up reports."""

from __future__ import annotations

import copy

import pytest

from khabar.pipeline.commands.drift import drift_report, format_drift, rates
from khabar.pipeline.commands.inspect import inspect_paths


@pytest.fixture(scope="module")
def report(seeds_run: dict) -> dict:
    return inspect_paths([str(seeds_run["out"])], samples=0)


def made_up(
    languages: dict[str, int],
    sources: dict[str, int],
    dead: int,
    duplicates: int,
    records_in: int | None = None,
) -> dict:
    articles = sum(languages.values())
    report = {
        "articles": articles,
        "duplicates_written": duplicates,
        "dead_letters": dead,
        "languages": languages,
        "sources": sources,
    }
    report["run"] = {
        "records_in": records_in if records_in is not None else articles + duplicates + dead,
        "duplicates": duplicates,
    }
    return report


def test_a_run_against_itself_has_no_drift(report: dict) -> None:
    d = drift_report(report, copy.deepcopy(report))
    assert d["language_mix_distance"] == 0
    assert all(row["change_pp"] == 0 for row in d["languages"])
    assert d["sources"]["appeared"] == [] and d["sources"]["disappeared"] == []
    assert d["dead_letter_rate"]["new"] == pytest.approx(2 / 32)
    assert d["duplicate_rate"]["new"] == pytest.approx(5 / 30)
    assert d["dead_letter_rate"]["change_pp"] == 0 and d["duplicate_rate"]["change_pp"] == 0
    assert d["alerts"] == []
    text = format_drift(d)
    assert "alerts: none" in text and "6.2% -> 6.2%" in text


def test_real_run_against_a_run_with_a_language_and_a_source_gone(report: dict) -> None:
    old = copy.deepcopy(report)
    new = copy.deepcopy(report)
    en = new["languages"].pop("en")
    new["articles"] -= en
    gone = next(iter(new["sources"]))
    new["sources"].pop(gone)
    new["sources_all"].pop(gone)
    d = drift_report(new, old)
    en_row = next(r for r in d["languages"] if r["language"] == "en")
    assert en_row["new"] == 0 and en_row["old"] == en
    assert en_row["change_pp"] == pytest.approx(-100 * en / old["articles"], abs=0.01)
    assert d["languages"][0]["language"] in ("en", "fa")  # largest moves first
    assert d["language_mix_distance"] == pytest.approx(en / old["articles"], abs=1e-3)
    assert [s["source"] for s in d["sources"]["disappeared"]] == [gone]
    assert any(a.startswith("language en") for a in d["alerts"])
    assert any("disappeared" in a and gone in a for a in d["alerts"])
    assert d["sources"]["complete"]  # inspect reports every source (sources_all)
    assert "among each run's top sources only" not in format_drift(d)


def test_rates_need_the_summary_or_written_duplicates(report: dict, seeds_run: dict) -> None:
    articles_only = inspect_paths([str(seeds_run["out"] / "articles")], samples=0)
    r = rates(articles_only)  # no _SUMMARY.json, no duplicates written: not knowable
    assert r["records_in"] is None and r["dead_letter_rate"] is None
    assert r["duplicate_rate"] is None
    d = drift_report(report, articles_only)
    assert d["dead_letter_rate"]["old"] is None and d["dead_letter_rate"]["change_pp"] is None
    text = format_drift(d)
    assert "dead-letter rate: unknown -> 6.2% (n/a" in text


def test_made_up_drift_in_every_direction() -> None:
    old = made_up({"fa": 80, "en": 20}, {"A": 50, "B": 30, "C": 20}, dead=5, duplicates=10)
    new = made_up(
        {"fa": 40, "en": 40, "ar": 20}, {"A": 60, "B": 30, "D": 10}, dead=30, duplicates=0
    )
    new["sources_all"] = new["sources"]
    old["sources_all"] = old["sources"]
    d = drift_report(new, old)
    rows = {r["language"]: r for r in d["languages"]}
    assert rows["fa"]["change_pp"] == -40.0 and rows["en"]["change_pp"] == 20.0
    assert rows["ar"]["old_share"] == 0 and rows["ar"]["new_share"] == 0.2
    assert d["language_mix_distance"] == pytest.approx(0.4)
    assert [s["source"] for s in d["sources"]["appeared"]] == ["D"]
    assert [s["source"] for s in d["sources"]["disappeared"]] == ["C"]
    assert d["sources"]["changed"] == [{"source": "A", "new": 60, "old": 50, "change": 10}]
    assert d["sources"]["complete"]
    assert d["dead_letter_rate"]["old"] == pytest.approx(5 / 115)
    assert d["dead_letter_rate"]["new"] == pytest.approx(30 / 130)
    assert d["duplicate_rate"]["old"] == pytest.approx(10 / 110)
    assert d["duplicate_rate"]["new"] == 0
    alerts = "\n".join(d["alerts"])
    assert "language fa" in alerts and "language en" in alerts and "language ar" in alerts
    assert "dead-letter rate up" in alerts
    assert "duplicate rate down" in alerts
    assert "1 source(s) disappeared: C" in alerts
    text = format_drift(d)
    assert "appeared: D (10)" in text and "disappeared: C (20)" in text
    assert "changed: A 50 -> 60" in text
    assert "(among each run's top sources only)" not in text


def test_small_moves_raise_no_alert_and_empty_runs_do_not_crash() -> None:
    old = made_up({"fa": 50, "en": 50}, {"A": 100}, dead=2, duplicates=5)
    new = made_up({"fa": 52, "en": 48}, {"A": 100}, dead=3, duplicates=6)
    assert drift_report(new, old)["alerts"] == []
    empty = made_up({}, {}, dead=0, duplicates=0)
    d = drift_report(empty, old)
    assert "no articles in the new run" in d["alerts"]
    assert d["dead_letter_rate"]["new"] is None  # 0 records in: no rate
    format_drift(d)
    format_drift(drift_report(empty, empty))
