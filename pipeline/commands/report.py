"""``khabar report DIR [--out report.html]``: one self-contained HTML page of charts.

The page shows a run at a glance: the run summary (counts, per-stage table, conservation),
articles per language and per source, publication time (and, for a streaming run,
ingestion over time), top entities of every type found, duplicates by reason and the
largest story clusters, dead letters by stage and error type, and the distribution of text
length (words; clipped at the 99th percentile, with a note). Chart labels are bidi
isolated, so Persian labels that start with a digit read in the right order.

Charts are drawn with Plotly (plotly.py builds the figures, plotly.js draws them as SVG in
the browser, with hover and zoom). plotly.js is embedded once, inline, so the page needs
no network to be viewed (about 5 MB, most of it plotly.js). Only aggregates go into the
page (counts per bucket, not records), so its size does not grow with the run.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from apache_beam.io.filesystems import FileSystems

from khabar.pipeline.commands.inspect import (
    InspectError,
    _match,
    discover,
    interrupted_note,
    read_records,
    summary_duplicate_reasons,
)
from khabar.pipeline.errors import CliError
from khabar.pipeline.job.options import Parser
from khabar.pipeline.stages.sinks import DUPLICATES_DIR
from khabar.pipeline.textsafe import label, plot_text

TOP_SOURCES = 20
TOP_LANGUAGES = 30
TOP_CLUSTERS = 15
#: Entity types charted (the Persian models have 10; every one found is shown up to this).
MAX_ENTITY_TYPES = 12
TOP_ENTITIES = 10
WORD_BINS = 30
TITLE_CHARS = 70
FONT = "system-ui, 'Noto Sans', 'Noto Sans Arabic', 'Vazirmatn', Tahoma, Arial, sans-serif"
CONFIG = {"displaylogo": False, "responsive": True}
PALETTE = ["#2f6f9f", "#d08c2f", "#5b9f5b", "#b5524b", "#7d64a8", "#4fa3a5", "#a0785a"]


@dataclass
class Cluster:
    size: int = 0
    sources: set[str] = field(default_factory=set)
    languages: set[str] = field(default_factory=set)
    reasons: Counter[str] = field(default_factory=Counter)
    title: str | None = None
    survivor_seen: bool = False


@dataclass
class RunData:
    """Everything the page shows, aggregated in one pass over the Avro."""

    files: int = 0
    articles: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    languages: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)
    published: Counter[dt.datetime] = field(default_factory=Counter)  # per minute, survivors
    published_dups: Counter[dt.datetime] = field(default_factory=Counter)
    no_published: int = 0
    ingested: Counter[dt.datetime] = field(default_factory=Counter)
    entities: Counter[tuple[str, str]] = field(default_factory=Counter)
    entity_articles: int = 0
    clusters: dict[str, Cluster] = field(default_factory=dict)
    dead: Counter[tuple[str, str]] = field(default_factory=Counter)
    word_counts: Counter[int] = field(default_factory=Counter)
    summary: dict[str, Any] | None = None


def _minute(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).replace(second=0, microsecond=0, tzinfo=None)


def _cluster_key(record: dict[str, Any]) -> str:
    return record.get("cluster_id") or record.get("canonical_id") or record["id"]


def collect(paths: list[str]) -> RunData:
    """Read a run's Avro (and its _SUMMARY.json) into :class:`RunData`."""
    try:
        files, summary_path = discover(paths)
    except InspectError as exc:
        raise CliError(str(exc)) from None
    data = RunData(files=len(files))
    # duplicates first: a survivor then finds its cluster waiting, and no survivor is kept
    files = sorted(files, key=lambda p: (f"/{DUPLICATES_DIR}/" not in p, p))
    for path in files:
        try:
            for name, record in read_records(path):
                _add(data, name, record)
        except InspectError as exc:
            raise CliError(str(exc)) from None
    missing = {k for k, c in data.clusters.items() if not c.survivor_seen}
    if missing:  # survivors read before their duplicates (files given in another order)
        for path in files:
            for name, record in read_records(path):
                if name == "Article" and not record.get("duplicate_of") and record["id"] in missing:
                    cluster = data.clusters[record["id"]]
                    cluster.title, cluster.survivor_seen = record["title"], True
                    cluster.size += 1
                    cluster.sources.add(record.get("source") or "(unknown)")
                    cluster.languages.add(record["language"])
    if summary_path:
        with FileSystems.open(summary_path) as handle:
            data.summary = json.loads(handle.read().decode("utf-8"))
    return data


def _add(data: RunData, name: str, record: dict[str, Any]) -> None:
    if name == "DeadLetter":
        data.dead_letters += 1
        data.dead[(record["stage"], record["error_type"])] += 1
        return
    if name != "Article":
        return
    is_dup = bool(record.get("duplicate_of"))
    published = record.get("published_at")
    key = _cluster_key(record)
    if is_dup:
        data.duplicates += 1
        if published:
            data.published_dups[_minute(published)] += 1
        cluster = data.clusters.setdefault(key, Cluster())
        cluster.size += 1
        cluster.sources.add(record.get("source") or "(unknown)")
        cluster.languages.add(record["language"])
        cluster.reasons[record.get("duplicate_reason") or "?"] += 1
        return
    data.articles += 1
    data.languages[record["language"]] += 1
    data.sources[record.get("source") or "(unknown)"] += 1
    data.word_counts[int(record.get("word_count") or 0)] += 1
    if published:
        data.published[_minute(published)] += 1
    else:
        data.no_published += 1
    if record.get("ingested_at"):
        data.ingested[_minute(record["ingested_at"])] += 1
    entities = record.get("entities") or []
    if entities:
        data.entity_articles += 1
    for ent in entities:
        data.entities[(ent["type"], ent["text"])] += 1
    cluster = data.clusters.get(key)
    if cluster is None and record.get("cluster_id") and record["cluster_id"] != record["id"]:
        cluster = data.clusters.setdefault(key, Cluster())  # a near-duplicate kept as article
    if cluster is not None:
        if key == record["id"]:
            cluster.title, cluster.survivor_seen = record["title"], True
        cluster.size += 1
        cluster.sources.add(record.get("source") or "(unknown)")
        cluster.languages.add(record["language"])


# --------------------------------------------------------------------------- charts


UNIT_MS = {"minute": 60_000, "hour": 3_600_000, "day": 86_400_000, "week": 604_800_000}


def _bucket(span: dt.timedelta) -> tuple[str, dt.timedelta]:
    if span <= dt.timedelta(hours=3):
        return "minute", dt.timedelta(minutes=1)
    if span <= dt.timedelta(days=3):
        return "hour", dt.timedelta(hours=1)
    if span <= dt.timedelta(days=180):
        return "day", dt.timedelta(days=1)
    return "week", dt.timedelta(weeks=1)


def _floor(value: dt.datetime, unit: str) -> dt.datetime:
    if unit == "minute":
        return value
    if unit == "hour":
        return value.replace(minute=0)
    day = value.replace(hour=0, minute=0)
    if unit == "day":
        return day
    return day - dt.timedelta(days=day.weekday())


def resample(*series: Counter[dt.datetime]) -> tuple[str, list[dt.datetime], list[list[int]]]:
    """Per-minute counters -> (unit, bucket starts, counts per series), gaps filled."""
    keys = [k for s in series for k in s]
    if not keys:
        return "day", [], [[] for _ in series]
    unit, step = _bucket(max(keys) - min(keys))
    start, end = _floor(min(keys), unit), _floor(max(keys), unit)
    buckets: list[dt.datetime] = []
    at = start
    while at <= end and len(buckets) < 5000:
        buckets.append(at)
        at += step
    index = {b: i for i, b in enumerate(buckets)}
    out = []
    for s in series:
        counts = [0] * len(buckets)
        for k, v in s.items():
            i = index.get(_floor(k, unit))
            if i is not None:
                counts[i] += v
        out.append(counts)
    return unit, buckets, out


def _short(text: str | None, n: int = TITLE_CHARS) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _layout(fig: Any, title: str, height: int = 380, **extra: Any) -> Any:
    fig.update_layout(
        title={"text": title, "x": 0.01},
        height=height,
        margin={"l": 10, "r": 20, "t": 50, "b": 40},
        font={"family": FONT, "size": 13},
        plot_bgcolor="#fafafa",
        colorway=PALETTE,
        **extra,
    )
    fig.update_yaxes(automargin=True)
    fig.update_xaxes(automargin=True)
    return fig


def _hbar(labels: list[str], values: list[int], title: str, hover: list[str] | None = None):
    """A horizontal bar chart; ``labels`` and ``hover`` are made with ``label``."""
    import plotly.graph_objects as go

    fig = go.Figure(
        go.Bar(
            x=values[::-1],
            y=labels[::-1],
            orientation="h",
            text=values[::-1],
            textposition="auto",
            hovertext=hover[::-1] if hover else None,
            marker_color=PALETTE[0],
        )
    )
    return _layout(fig, title, height=max(260, 60 + 26 * len(labels)))


def fig_languages(d: RunData):
    top = d.languages.most_common(TOP_LANGUAGES)
    return _hbar([label(k) for k, _ in top], [v for _, v in top], "Articles per language")


def fig_sources(d: RunData):
    top = d.sources.most_common(TOP_SOURCES)
    labels = [label(_short(k, 40)) for k, _ in top]
    values = [v for _, v in top]
    rest = sum(d.sources.values()) - sum(values)
    if rest:
        labels.append(label(f"({len(d.sources) - len(top)} other sources)"))
        values.append(rest)
    return _hbar(labels, values, f"Articles per source (top {TOP_SOURCES})")


def fig_volume(series: list[Counter[dt.datetime]], names: list[str], title: str):
    import plotly.graph_objects as go

    unit, buckets, counts = resample(*series)
    width_ms = UNIT_MS[unit] * 0.9  # a bar as wide as its bucket, also when there is one
    fig = go.Figure(
        [
            go.Bar(x=buckets, y=c, name=n, marker_color=PALETTE[i], width=width_ms)
            for i, (n, c) in enumerate(zip(names, counts, strict=True))
        ]
    )
    return _layout(
        fig,
        f"{title} (UTC, per {unit})",
        barmode="stack",
        bargap=0.05,
        legend={"orientation": "h", "y": -0.2},
    )


def entity_types_shown(d: RunData) -> tuple[list[str], list[str]]:
    """(entity types charted, types left out): every type found, most frequent first, up
    to ``MAX_ENTITY_TYPES`` charts."""
    totals: Counter[str] = Counter()
    for (etype, _), n in d.entities.items():
        totals[etype] += n
    ordered = [t for t, _ in totals.most_common()]
    return ordered[:MAX_ENTITY_TYPES], ordered[MAX_ENTITY_TYPES:]


def fig_entities(d: RunData):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    by_type: dict[str, Counter[str]] = defaultdict(Counter)
    for (etype, text), n in d.entities.items():
        by_type[etype][text] += n
    types = entity_types_shown(d)[0]
    cols = min(3, len(types))
    rows = (len(types) + cols - 1) // cols
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[f"{plot_text(t)} ({sum(by_type[t].values())})" for t in types],
        horizontal_spacing=0.18,
        vertical_spacing=0.12,
    )
    for i, etype in enumerate(types):
        top = by_type[etype].most_common(TOP_ENTITIES)[::-1]
        fig.add_trace(
            go.Bar(
                x=[n for _, n in top],
                y=[label(_short(t, 30)) for t, _ in top],
                orientation="h",
                name=plot_text(etype),
                marker_color=PALETTE[i % len(PALETTE)],
                showlegend=False,
            ),
            row=i // cols + 1,
            col=i % cols + 1,
        )
    return _layout(fig, "Top entities by type", height=80 + 300 * rows)


def top_clusters(d: RunData) -> list[tuple[str, Cluster]]:
    multi = [(k, c) for k, c in d.clusters.items() if c.size > 1]
    multi.sort(key=lambda kc: (-kc[1].size, -len(kc[1].sources), kc[0]))
    return multi[:TOP_CLUSTERS]


def fig_clusters(clusters: list[tuple[str, Cluster]]):
    missing = "(survivor not in this output)"
    # the key and the title each in its own isolate: a Persian title keeps its order
    labels = [f"{label(k[:6])} · {label(_short(c.title or missing, 50))}" for k, c in clusters]
    hover = [
        label(f"{c.size} copies from {len(c.sources)} source(s): {', '.join(sorted(c.sources))}")
        for _, c in clusters
    ]
    return _hbar(labels, [c.size for _, c in clusters], "Largest story clusters (copies)", hover)


def fig_dead_letters(d: RunData):
    import plotly.graph_objects as go

    stages = sorted(
        {s for s, _ in d.dead}, key=lambda s: -sum(v for (x, _), v in d.dead.items() if x == s)
    )
    errors = sorted(
        {e for _, e in d.dead}, key=lambda e: -sum(v for (_, x), v in d.dead.items() if x == e)
    )
    fig = go.Figure(
        [
            go.Bar(
                x=[plot_text(s) for s in stages],
                y=[d.dead.get((s, e), 0) for s in stages],
                name=plot_text(e),
                marker_color=PALETTE[i % len(PALETTE)],
            )
            for i, e in enumerate(errors)
        ]
    )
    return _layout(
        fig,
        "Dead letters by stage and error type",
        barmode="stack",
        xaxis_title="stage",
        legend={"title": {"text": "error type"}},
    )


#: The length chart ends at this quantile; longer articles go to its last bar.
LENGTH_CLIP_QUANTILE = 0.99


def length_bins(word_counts: Counter[int]) -> dict[str, Any]:
    """Histogram of text lengths clipped at the 99th percentile (a 9,000-word tail would
    squash every other bar): bin edges, counts, and what the last bar holds."""
    values = np.array(sorted(word_counts), dtype=float)
    weights = np.array([word_counts[int(v)] for v in values], dtype=float)
    cumulative = np.cumsum(weights) / weights.sum()
    at = min(int(np.searchsorted(cumulative, LENGTH_CLIP_QUANTILE)), len(values) - 1)
    clip = float(values[at])
    lo = float(values.min())
    hi = max(clip, lo)
    bins = int(min(WORD_BINS, max(1, hi - lo + 1)))
    counts, edges = np.histogram(
        np.minimum(values, hi), bins=bins, range=(lo, hi + 1), weights=weights
    )
    above = int(weights[values > hi].sum())
    median = float(np.median(np.repeat(values, weights.astype(int))))
    return {
        "counts": counts.astype(int).tolist(),
        "edges": edges.tolist(),
        "clip": int(hi),
        "above": above,
        "longest": int(values.max()),
        "median": median,
    }


def fig_word_counts(d: RunData):
    import plotly.graph_objects as go

    h = length_bins(d.word_counts)
    edges, counts = h["edges"], h["counts"]
    centers = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:], strict=True)]
    hover = [f"{int(a)}–{int(b) - 1} words" for a, b in zip(edges[:-1], edges[1:], strict=True)]
    if h["above"]:
        hover[-1] = f"{int(edges[-2])} words or more (up to {h['longest']:,})"
    fig = go.Figure(
        go.Bar(
            x=centers,
            y=counts,
            width=[(b - a) * 0.95 for a, b in zip(edges[:-1], edges[1:], strict=True)],
            hovertext=hover,
            marker_color=PALETTE[2],
        )
    )
    return _layout(
        fig,
        f"Text length (words in title, lead and body; median {h['median']:.0f})",
        xaxis_title="words",
        yaxis_title="articles",
    )


def length_note(d: RunData) -> str:
    h = length_bins(d.word_counts)
    if not h["above"]:
        return ""
    return _note(
        f"the chart ends at {h['clip']:,} words (the 99th percentile): the last bar also holds "
        f"the {h['above']:,} longer article(s), up to {h['longest']:,} words"
    )


# --------------------------------------------------------------------------- page


CSS = """
body{font-family:FONT_FAMILY;margin:0;background:#f3f4f6;color:#1f2933}
header{background:#1f3b57;color:#fff;padding:18px 28px}
header h1{margin:0 0 4px;font-size:22px} header p{margin:0;opacity:.85;font-size:13px}
main{max-width:1200px;margin:0 auto;padding:18px}
section{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.08);
margin:0 0 18px;padding:12px 16px}
section h2{font-size:16px;margin:4px 0 8px}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.08);padding:10px 16px;
min-width:130px}
.card b{display:block;font-size:24px} .card span{font-size:12px;color:#52606d}
.ok{color:#2f7d32} .bad{color:#b3261e}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:18px}
@media (max-width:900px){.grid{grid-template-columns:1fr}}
table{border-collapse:collapse;font-size:13px;width:100%}
th,td{border-bottom:1px solid #e4e7eb;padding:4px 8px;text-align:start;vertical-align:top}
th{color:#52606d;font-weight:600}
td.n,th.n{text-align:end;font-variant-numeric:tabular-nums}
.note{color:#52606d;font-style:italic;padding:8px 0}
""".replace("FONT_FAMILY", FONT)


def _card(value: Any, label: str, cls: str = "") -> str:
    return (
        f'<div class="card"><b class="{cls}">{html.escape(str(value))}</b>'
        f"<span>{html.escape(label)}</span></div>"
    )


def _section(title: str, body: str, sid: str) -> str:
    return f'<section id="{sid}"><h2>{html.escape(title)}</h2>{body}</section>'


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _summary_html(d: RunData) -> tuple[str, str]:
    s = d.summary
    cards = [
        _card(f"{d.articles:,}", "articles"),
        _card(f"{d.duplicates:,}", "duplicates written"),
        _card(f"{d.dead_letters:,}", "dead letters"),
    ]
    subtitle = f"{d.files} Avro file(s)"
    stage_table = ""
    if s and s.get("status") == "interrupted":

        cards = [_card("INTERRUPTED", "status", "bad"), *cards]
        subtitle = f"interrupted run · {d.files} Avro file(s) finalized"
        return subtitle, '<div class="cards">' + "".join(cards) + "</div>" + _note(
            interrupted_note(s)
        )
    if s:
        counts = s.get("counts", {})
        cons = s.get("conservation", {})
        ok = bool(cons.get("ok"))
        cards = [
            _card(f"{counts.get('records_in', 0):,}", "records in"),
            *cards[:1],
            _card(f"{counts.get('duplicates', 0):,}", "duplicates found"),
            *cards[2:],
            _card("OK" if ok else "MISMATCH", "conservation", "ok" if ok else "bad"),
            _card(f"{s.get('seconds', 0):.1f} s", "run time"),
        ]
        subtitle = (
            f"{s.get('command', 'run')} finished {s.get('finished_at', '?')} · runner "
            f"{s.get('runner', '?')} · pipeline {s.get('pipeline_version', '?')} · "
            f"{s.get('files', '?')} input file(s)"
        )
        rows = "".join(
            f"<tr><td>{html.escape(stage)}</td>"
            + "".join(f'<td class="n">{int(c.get(k, 0)):,}</td>' for k in ("ok", "dead_letter"))
            + f'<td class="n">{int(c.get("duplicates", 0)):,}</td></tr>'
            for stage, c in (s.get("stages") or {}).items()
        )
        stage_table = (
            '<table><tr><th>stage</th><th class="n">ok</th><th class="n">dead letters</th>'
            '<th class="n">duplicates</th></tr>'
            f"{rows}</table>"
            f'<p class="note">conservation: {counts.get("records_in", 0)} in = '
            f"{counts.get('articles', 0)} written + {counts.get('duplicates', 0)} duplicates + "
            f"{counts.get('dead_letters', 0)} dead letters</p>"
        )
    return subtitle, '<div class="cards">' + "".join(cards) + "</div>" + stage_table


def duplicate_reasons(d: RunData) -> tuple[dict[str, int], str]:
    """Duplicates by reason and where the figures come from: the duplicates written, else
    the run's _SUMMARY.json (which has them whether they were written or not)."""
    if d.duplicates:
        total: Counter[str] = Counter()
        for cluster in d.clusters.values():
            total.update(cluster.reasons)
        return dict(total.most_common()), "duplicates written"
    if d.summary and "counts" in d.summary:

        return summary_duplicate_reasons(d.summary), "_SUMMARY.json (not written)"
    return {}, ""


def _reasons_html(d: RunData) -> str:
    reasons, origin = duplicate_reasons(d)
    if not reasons:
        return ""
    rows = "".join(
        f'<tr><td>{html.escape(r)}</td><td class="n">{n:,}</td></tr>' for r, n in reasons.items()
    )
    return (
        f'<table><tr><th>duplicate reason</th><th class="n">duplicates</th></tr>{rows}</table>'
        + _note(f"from {origin}")
    )


def _clusters_table(clusters: list[tuple[str, Cluster]]) -> str:
    rows = "".join(
        f'<tr><td class="n">{c.size}</td><td dir="auto">{html.escape(_short(c.title or "?", 120))}'
        f'</td><td dir="auto">{html.escape(", ".join(sorted(c.sources)))}</td>'
        f"<td>{html.escape(', '.join(sorted(c.languages)))}</td>"
        f"<td>{html.escape(', '.join(f'{r} {n}' for r, n in c.reasons.most_common()))}</td>"
        f"<td><code>{html.escape(k)}</code></td></tr>"
        for k, c in clusters
    )
    return (
        '<table><tr><th class="n">size</th><th>survivor title</th><th>sources</th>'
        "<th>languages</th>"
        f"<th>duplicate reasons</th><th>cluster</th></tr>{rows}</table>"
    )


def render(d: RunData, title: str) -> str:
    """The whole page as a string."""
    import plotly.io as pio
    import plotly.offline

    counter = iter(range(1, 1000))

    def plot(fig: Any) -> str:
        return pio.to_html(
            fig,
            include_plotlyjs=False,
            full_html=False,
            config=CONFIG,
            div_id=f"khabar-chart-{next(counter)}",
        )

    sections: list[str] = []
    subtitle, summary = _summary_html(d)
    sections.append(_section("Run", summary, "run"))
    if d.articles:
        sections.append(
            '<div class="grid">'
            + _section("Languages", plot(fig_languages(d)), "languages")
            + _section("Sources", plot(fig_sources(d)), "sources")
            + "</div>"
        )
    else:
        sections.append(_section("Articles", _note("no articles in this output"), "languages"))
    if d.published or d.published_dups:
        missing = (
            _note(f"{d.no_published:,} article(s) without a publication date are not shown")
            if d.no_published
            else ""
        )
        names = ["articles", "duplicates"] if d.published_dups else ["articles"]
        series = [d.published, d.published_dups] if d.published_dups else [d.published]
        body = plot(fig_volume(series, names, "Published")) + missing
    else:
        body = _note("no publication dates in this output")
    sections.append(_section("Publication time", body, "published"))
    # Ingestion over time means something for a stream; a batch ingests in one go.
    if d.ingested and (d.summary or {}).get("mode") == "streaming":
        body = plot(fig_volume([d.ingested], ["articles"], "Ingested"))
        sections.append(_section("Volume over time: ingested", body, "ingested"))
    if d.entities:
        shown, left_out = entity_types_shown(d)
        body = plot(fig_entities(d)) + _note(
            f"{d.entity_articles:,} of {d.articles:,} article(s) have entities; "
            f"{len(shown)} entity type(s) found, all shown"
            if not left_out
            else f"{d.entity_articles:,} of {d.articles:,} article(s) have entities; the "
            f"{len(shown)} most frequent types shown, left out: {', '.join(left_out)}"
        )
    else:
        body = _note(
            "no entities: no article in this output was tagged (the entity stage did not run "
            "or found none)"
        )
    sections.append(_section("Top entities by type", body, "entities"))
    clusters = top_clusters(d)
    reasons = _reasons_html(d)
    if clusters:
        body = reasons + plot(fig_clusters(clusters)) + _clusters_table(clusters)
    elif d.summary and d.summary.get("counts", {}).get("duplicates") and not d.duplicates:
        body = reasons + _note(
            f"{d.summary['counts']['duplicates']} duplicate(s) were found but not written; "
            "khabar run --emit_duplicates writes them, and their clusters show here"
        )
    else:
        body = _note("no story clusters: every article is unique")
    sections.append(_section("Largest story clusters", body, "clusters"))
    body = plot(fig_dead_letters(d)) if d.dead else _note("no dead letters")
    sections.append(_section("Dead letters", body, "dead-letters"))
    body = plot(fig_word_counts(d)) + length_note(d) if d.word_counts else _note("no articles")
    sections.append(_section("Text length", body, "text-length"))
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style>"
        f'<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>'
        f"</head><body><header><h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(subtitle)} · report generated {generated}</p></header>"
        f"<main>{''.join(sections)}</main></body></html>\n"
    )


def write_report(paths: list[str], out: str) -> RunData:
    data = collect(paths)
    page = render(data, f"khabar report: {', '.join(paths)}")
    with FileSystems.create(out, mime_type="text/html") as handle:
        handle.write(page.encode("utf-8"))
    return data


def default_out(paths: list[str]) -> str:
    """``DIR/report.html`` for one run directory, else ``report.html`` here."""
    if len(paths) == 1 and not paths[0].endswith(".avro") and not any(c in paths[0] for c in "*?["):
        base = paths[0].rstrip("/")
        if _match(base + "/*"):
            return base + "/report.html"
    return "report.html"


def main(argv: list[str]) -> int:
    parser = Parser(
        prog="khabar report",
        description="Write a self-contained HTML page of charts about a run (no network "
        "needed to view it): languages, sources, volume over time, entities, story "
        "clusters, dead letters, text length.",
    )
    parser.add_argument("paths", nargs="+", help="run directory, or Avro files or globs")
    parser.add_argument(
        "--out", help="HTML file to write, local or gs:// (default: DIR/report.html)"
    )
    args = parser.parse_args(argv)
    out = args.out or default_out(args.paths)
    data = write_report(args.paths, out)
    if data.summary and data.summary.get("status") == "interrupted":

        print(f"khabar report: {interrupted_note(data.summary)}", file=sys.stderr)
    found = (data.summary or {}).get("counts", {}).get("duplicates")
    duplicates = (
        f"{found} duplicates found ({data.duplicates} written)"
        if found is not None and found != data.duplicates
        else f"{data.duplicates} duplicates"
    )
    print(
        f"khabar report: {data.articles} articles, {duplicates}, "
        f"{data.dead_letters} dead letters -> {out}"
    )
    return 0
