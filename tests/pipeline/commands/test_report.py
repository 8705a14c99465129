"""`khabar report`: the HTML page of a real run, rendered in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from khabar.pipeline.commands.report import collect, fig_clusters, main, render, top_clusters
from khabar.pipeline.errors import CliError

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# languages, sources, publication time, entities, clusters, dead letters, lengths (a batch:
# no ingestion-over-time chart, which only means something for a stream)
CHARTS = 7


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory, seeds_run: dict) -> dict:
    run = seeds_run["out"]
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert main([str(run), "--out", str(out)]) == 0
    return {"run": run, "path": out, "html": out.read_text(encoding="utf-8")}


def chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--host-resolver-rules=MAP * ~NOTFOUND",  # the page must need no network
            f"--user-data-dir={tmp / 'profile'}",
            "--virtual-time-budget=10000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_page_is_self_contained(page: dict) -> None:
    text = page["html"]
    assert not re.search(r"<script[^>]+src=", text)
    assert not re.search(r"<link[^>]+href=", text)
    assert "cdn.plot.ly/plotly" not in text.split("</head>", 1)[1]
    assert text.count("Plotly.newPlot(") == CHARTS
    assert len(text) > 1_000_000  # plotly.js is inline
    for section in ("run", "languages", "sources", "published", "entities"):
        assert f'id="{section}"' in text
    assert 'id="ingested"' not in text  # a batch: ingestion over time says nothing
    assert "conservation" in text and "OK" in text


def test_page_content_from_the_run(page: dict) -> None:
    data = collect([str(page["run"])])
    assert data.articles == 25 and data.duplicates == 5 and data.dead_letters == 2
    assert sum(data.languages.values()) == 25 and data.languages["fa"] == 14
    assert sum(data.published.values()) + data.no_published == 25
    assert sum(data.ingested.values()) == 25
    assert sum(data.word_counts.values()) == 25
    assert dict(data.dead) == {
        ("parse", "EmptyInput"): 1,
        ("parse", "JSONDecodeError"): 1,
    }
    clusters = top_clusters(data)
    assert [c.size for _, c in clusters] == [2, 2, 2, 2, 2]
    assert all(c.survivor_seen and c.title for _, c in clusters)
    titles = {c.title for _, c in clusters}
    assert "افتتاح خط دوم قطار شهری تبریز پس از دوازده سال" in titles  # text 001 / 003
    for title in titles:
        assert title in page["html"]
    # each label's key and title are isolated once, never shown as "\u2068" text
    assert not any("\\u2068" in y for y in fig_clusters(clusters).data[0].y)


def test_entities_chart_or_a_graceful_note(page: dict) -> None:
    data = collect([str(page["run"])])
    data.entities.clear()
    empty = render(data, "no entities")
    assert "no entities" in empty and empty.count("Plotly.newPlot(") == CHARTS - 1
    data.entities.update(
        {("LOCATION", "تبریز"): 3, ("LOCATION", "یزد"): 1, ("PERSON", "Ada"): 2, ("ORG", "X"): 1}
    )
    data.entity_articles = 3
    tagged = render(data, "entities")
    assert tagged.count("Plotly.newPlot(") == CHARTS
    assert "تبریز" in tagged and "LOCATION (4)" in tagged


def test_empty_output_renders(tmp_path: Path, page: dict) -> None:
    run = tmp_path / "run"
    shutil.copytree(page["run"] / "dead_letter", run / "dead_letter")
    out = tmp_path / "r.html"
    assert main([str(run), "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "no articles in this output" in text and text.count("Plotly.newPlot(") == 1
    with pytest.raises(CliError, match="no khabar Avro files"):
        main([str(tmp_path / "nothing"), "--out", str(out)])


def test_default_out_is_next_to_the_run(tmp_path: Path, page: dict) -> None:
    run = tmp_path / "run"
    shutil.copytree(page["run"], run)
    assert main([str(run)]) == 0
    assert (run / "report.html").stat().st_size > 1_000_000


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_chromium_draws_every_chart(page: dict, tmp_path: Path) -> None:
    dom = chromium("--dump-dom", page["path"].as_uri(), tmp=tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert html.count('class="plot-container plotly"') == CHARTS
    assert html.count('class="main-svg"') >= CHARTS
    # bars were drawn: one SVG path per bar, in every chart
    charts = re.split(r'id="khabar-chart-\d+"', html)[1:]
    assert len(charts) == CHARTS
    for chart in charts:
        assert re.search(r'<g class="point"><path d="M[^"]+"', chart)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_chromium_screenshot_is_not_blank(page: dict, tmp_path: Path) -> None:
    from PIL import Image

    shot = tmp_path / "report.png"
    done = chromium(
        f"--screenshot={shot}", "--window-size=1280,2400", page["path"].as_uri(), tmp=tmp_path
    )
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    assert shot.stat().st_size > 50_000
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 2400)
    small = image.resize((320, 600))
    colors = small.getcolors(maxcolors=1 << 16) or []
    assert len(colors) > 200  # text, bars, axes: not a blank page
    bar_blue = sum(n for n, (r, g, b) in colors if b > 120 and r < 90 and 90 < g < 140)
    assert bar_blue > 500  # the bars' colour (#2f6f9f) covers a visible area


def test_labels_isolated_types_all_shown_lengths_clipped(page: dict) -> None:
    from collections import Counter

    from khabar.pipeline.commands.report import entity_types_shown, fig_entities, length_bins
    from khabar.pipeline.textsafe import FSI, PDI

    data = collect([str(page["run"])])
    types = ["PERSON", "ORGANIZATION", "LOCATION", "FACILITY", "PRODUCT", "EVENT", "DATE",
             "TIME", "MONEY", "PERCENT"]
    data.entities.clear()
    data.entities.update({(t, f"{t.lower()} {i}"): i + 1 for i, t in enumerate(types)})
    data.entities[("MONEY", "۴ میلیارد دلار")] = 50
    assert sorted(entity_types_shown(data)[0]) == sorted(types)  # all ten, none left out
    fig = fig_entities(data)
    money = next(tr for tr in fig.data if tr.name == "MONEY")
    assert f"{FSI}۴ میلیارد دلار{PDI}" in money.y  # its own bidi run: reads right to left
    page_html = render(data, "types")
    assert "10 entity type(s) found, all shown" in page_html
    # a long tail does not squash the chart: it ends at the 99th percentile, with a note
    data.word_counts = Counter({200 + i: 1 for i in range(300)})
    data.word_counts[9000] = 2
    h = length_bins(data.word_counts)
    assert h["clip"] < 600 and h["above"] >= 2 and h["longest"] == 9000
    assert sum(h["counts"]) == 302
    assert "the chart ends at" in render(data, "lengths")
