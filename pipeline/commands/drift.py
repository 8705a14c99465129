"""Drift between two runs: ``khabar inspect NEW --against OLD``.

Works on the dicts :func:`khabar.pipeline.commands.inspect.inspect_paths` returns (the
``--json`` report), so it needs no second read of the Avro:

* language mix: each language's share of the survivors in both runs, the change in
  percentage points, and the total variation distance of the two mixes (0: same mix,
  1: no language in common);
* sources appearing and disappearing (by survivor count), and the largest changes;
* dead-letter rate (dead letters / records in) and duplicate rate (duplicates / articles
  and duplicates), each with the change in percentage points;
* alerts: the changes large enough to look at (thresholds below).

Records in and duplicates come from the run's ``_SUMMARY.json`` when the report has it
(``report["run"]``); without it they are rebuilt from the Avro counts (duplicates only
when the run wrote them), and a rate that cannot be known is ``None``, never a guess.
"""

from __future__ import annotations

from typing import Any

#: A language whose share moves by this many percentage points is an alert.
LANGUAGE_SHIFT_PP = 10.0
#: A rate (dead letters, duplicates) that moves by this many percentage points is an alert.
RATE_SHIFT_PP = 5.0
#: Sources listed in each of appeared / disappeared / changed.
TOP_SOURCES = 15


def _shares(counts: dict[str, int]) -> dict[str, float]:
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()} if total else {}


def _records_in(report: dict[str, Any]) -> int | None:
    run = report.get("run") or {}
    if run.get("records_in") is not None:
        return int(run["records_in"])
    duplicates = _duplicates(report)
    if duplicates is None:
        return None  # duplicates were neither written nor counted: records in unknown
    return int(report["articles"]) + duplicates + int(report["dead_letters"])


def _duplicates(report: dict[str, Any]) -> int | None:
    """Duplicates found: from the run summary, else those written (``None`` if neither)."""
    run = report.get("run") or {}
    if run.get("duplicates") is not None:
        return int(run["duplicates"])
    if report.get("duplicates_written"):
        return int(report["duplicates_written"])
    return None


def rates(report: dict[str, Any]) -> dict[str, Any]:
    """Counts and rates of one inspect report (``None`` when not knowable)."""
    records_in = _records_in(report)
    duplicates = _duplicates(report)
    dead = int(report.get("dead_letters", 0))
    articles = int(report.get("articles", 0))
    dead_rate = dead / records_in if records_in else None
    dup_base = articles + (duplicates or 0)
    dup_rate = duplicates / dup_base if duplicates is not None and dup_base else None
    return {
        "records_in": records_in,
        "articles": articles,
        "duplicates": duplicates,
        "dead_letters": dead,
        "dead_letter_rate": dead_rate,
        "duplicate_rate": dup_rate,
    }


def _pp(new: float | None, old: float | None) -> float | None:
    if new is None or old is None:
        return None
    return round((new - old) * 100.0, 2)


def _sources(report: dict[str, Any]) -> tuple[dict[str, int], bool]:
    """Source counts and whether they are complete (inspect keeps only the top sources
    in ``sources``; ``sources_all``, when present, has all of them)."""
    if "sources_all" in report:
        return dict(report["sources_all"]), True
    return dict(report.get("sources") or {}), False


def drift_report(new_report: dict[str, Any], old_report: dict[str, Any]) -> dict[str, Any]:
    """What changed from ``old_report`` to ``new_report`` (both from ``inspect_paths``)."""
    new_langs = dict(new_report.get("languages") or {})
    old_langs = dict(old_report.get("languages") or {})
    new_share, old_share = _shares(new_langs), _shares(old_langs)
    languages = []
    for lang in sorted(set(new_langs) | set(old_langs)):
        n, o = new_share.get(lang, 0.0), old_share.get(lang, 0.0)
        languages.append(
            {
                "language": lang,
                "new": new_langs.get(lang, 0),
                "old": old_langs.get(lang, 0),
                "new_share": round(n, 4),
                "old_share": round(o, 4),
                "change_pp": round((n - o) * 100.0, 2),
            }
        )
    languages.sort(key=lambda row: (-abs(row["change_pp"]), -row["new_share"], row["language"]))
    tvd = 0.5 * sum(
        abs(new_share.get(k, 0.0) - old_share.get(k, 0.0)) for k in set(new_share) | set(old_share)
    )

    new_src, new_complete = _sources(new_report)
    old_src, old_complete = _sources(old_report)
    appeared = sorted(
        ((s, c) for s, c in new_src.items() if s not in old_src), key=lambda kv: (-kv[1], kv[0])
    )
    disappeared = sorted(
        ((s, c) for s, c in old_src.items() if s not in new_src), key=lambda kv: (-kv[1], kv[0])
    )
    changed = sorted(
        (
            (s, new_src[s], old_src[s])
            for s in set(new_src) & set(old_src)
            if new_src[s] != old_src[s]
        ),
        key=lambda t: (-abs(t[1] - t[2]), t[0]),
    )

    new_rates, old_rates = rates(new_report), rates(old_report)
    dead_pp = _pp(new_rates["dead_letter_rate"], old_rates["dead_letter_rate"])
    dup_pp = _pp(new_rates["duplicate_rate"], old_rates["duplicate_rate"])

    alerts: list[str] = []
    for row in languages:
        if abs(row["change_pp"]) >= LANGUAGE_SHIFT_PP:
            alerts.append(
                f"language {row['language']}: {row['old_share'] * 100:.1f}% -> "
                f"{row['new_share'] * 100:.1f}% of articles ({row['change_pp']:+.1f} pp)"
            )
    if dead_pp is not None and dead_pp >= RATE_SHIFT_PP:
        alerts.append(f"dead-letter rate up {dead_pp:+.1f} pp")
    if dup_pp is not None and abs(dup_pp) >= RATE_SHIFT_PP:
        alerts.append(f"duplicate rate {'up' if dup_pp > 0 else 'down'} {dup_pp:+.1f} pp")
    if disappeared:
        names = ", ".join(s for s, _ in disappeared[:5])
        alerts.append(f"{len(disappeared)} source(s) disappeared: {names}")
    if (new_report.get("run") or {}).get("status") == "interrupted":
        alerts.append("the new run was interrupted: its output is incomplete")
    if new_rates["articles"] == 0 and old_rates["articles"] > 0:
        alerts.append("no articles in the new run")

    return {
        "articles": {"new": new_rates["articles"], "old": old_rates["articles"]},
        "languages": languages,
        "language_mix_distance": round(tvd, 4),
        "sources": {
            "appeared": [{"source": s, "new": c} for s, c in appeared[:TOP_SOURCES]],
            "disappeared": [{"source": s, "old": c} for s, c in disappeared[:TOP_SOURCES]],
            "changed": [
                {"source": s, "new": n, "old": o, "change": n - o}
                for s, n, o in changed[:TOP_SOURCES]
            ],
            "appeared_total": len(appeared),
            "disappeared_total": len(disappeared),
            "complete": new_complete and old_complete,
        },
        "dead_letter_rate": {
            "new": new_rates["dead_letter_rate"],
            "old": old_rates["dead_letter_rate"],
            "change_pp": dead_pp,
            "new_counts": [new_rates["dead_letters"], new_rates["records_in"]],
            "old_counts": [old_rates["dead_letters"], old_rates["records_in"]],
        },
        "duplicate_rate": {
            "new": new_rates["duplicate_rate"],
            "old": old_rates["duplicate_rate"],
            "change_pp": dup_pp,
            "new_counts": [new_rates["duplicates"], _before_dedup(new_rates)],
            "old_counts": [old_rates["duplicates"], _before_dedup(old_rates)],
        },
        "alerts": alerts,
    }


def _before_dedup(r: dict[str, Any]) -> int | None:
    return None if r["duplicates"] is None else r["articles"] + r["duplicates"]


def _pct(value: float | None) -> str:
    return "unknown" if value is None else f"{value * 100:.1f}%"


def _rate_line(title: str, r: dict[str, Any], what: str) -> str:
    change = "n/a" if r["change_pp"] is None else f"{r['change_pp']:+.1f} pp"
    n_num, n_den = r["new_counts"]
    o_num, o_den = r["old_counts"]

    def counts(num: int | None, den: int | None) -> str:
        return f"{'?' if num is None else num} of {'?' if den is None else den} {what}"

    return (
        f"{title}: {_pct(r['old'])} -> {_pct(r['new'])} ({change}; "
        f"old {counts(o_num, o_den)}, new {counts(n_num, n_den)})"
    )


def format_drift(d: dict[str, Any]) -> str:
    """The drift report for people (``khabar inspect NEW --against OLD``)."""
    a = d["articles"]
    lines = [
        f"drift against the old run: articles {a['old']} -> {a['new']} ({a['new'] - a['old']:+d})",
        f"language mix (distance {d['language_mix_distance']:.2f}; 0 same, 1 disjoint):",
    ]
    for row in d["languages"]:
        lines.append(
            f"  {row['language']:<5} {row['old_share'] * 100:5.1f}% -> "
            f"{row['new_share'] * 100:5.1f}%  ({row['change_pp']:+.1f} pp; "
            f"{row['old']} -> {row['new']})"
        )
    if not d["languages"]:
        lines.append("  (no articles in either run)")
    s = d["sources"]
    scope = "" if s["complete"] else " (among each run's top sources only)"
    lines.append(f"sources{scope}:")
    for change, run in (("appeared", "new"), ("disappeared", "old")):
        if s[change]:
            more = s[f"{change}_total"] - len(s[change])
            lines.append(
                f"  {change}: "
                + ", ".join(f"{x['source']} ({x[run]})" for x in s[change])
                + (f", and {more} more" if more else "")
            )
    if s["changed"]:
        lines.append(
            "  changed: "
            + ", ".join(f"{x['source']} {x['old']} -> {x['new']}" for x in s["changed"])
        )
    if not (s["appeared"] or s["disappeared"] or s["changed"]):
        lines.append("  no change")
    lines.append(_rate_line("dead-letter rate", d["dead_letter_rate"], "records in"))
    lines.append(_rate_line("duplicate rate", d["duplicate_rate"], "articles before dedup"))
    if d["alerts"]:
        lines.append("alerts:")
        lines += [f"  ! {alert}" for alert in d["alerts"]]
    else:
        lines.append("alerts: none")
    return "\n".join(lines)
