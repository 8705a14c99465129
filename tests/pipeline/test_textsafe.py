"""Control sequences from the data never reach a terminal, and markup in the data never
renders in a report: a run directory written with hostile names, titles, URIs and
dead-letter messages, shown by every printing command."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import fastavro
import pytest

from khabar import schemas
from khabar.pipeline.cli import main
from khabar.pipeline.stages.sinks import to_article_record, to_dead_letter_record
from khabar.pipeline.textsafe import FSI, PDI, label, plot_text, visible
from khabar.schemas.version import PIPELINE_VERSION

# window title, screen clear, hidden text, C1 CSI, right-to-left override, isolate
HOSTILE = "\x1b]0;pwned\x07\x1b[2J\x1b[8mhidden\x1b[0m\x9b31m\u202egnp.exe\u2066x\u2069"
MARKUP = '<b>bold</b><span style="font-size:90px">big</span><a xlink:href="https://evil.example">click</a>'
RAW = [chr(c) for c in (0x1B, 0x07, 0x9B, 0x202E, 0x2066, 0x2069)]


def test_visible_escapes_controls_and_keeps_persian() -> None:
    persian = "خبر\u200cها\u200f"  # ZWNJ and RLM are part of Persian writing: kept
    assert visible(persian) == persian
    shown = visible(HOSTILE + "\nline2\ttab")
    assert not any(ch in shown for ch in RAW)
    assert "\\u001b]0;pwned\\u0007" in shown and "\\u202e" in shown and "\\u009b" in shown
    assert shown.endswith("\nline2\ttab")  # layout kept
    assert "\n" not in visible("a\nb", one_line=True)
    # the escapes are JSON escapes: a JSON line stays JSON with the same data
    line = json.dumps({"t": HOSTILE}, ensure_ascii=False)
    assert json.loads(visible(line)) == {"t": HOSTILE}
    assert plot_text(MARKUP).startswith("&lt;b&gt;bold&lt;/b&gt;&lt;span")


def test_a_label_is_escaped_then_isolated() -> None:
    # the data's own isolates are shown as text; the label's isolate is added after
    shown = label("<b>۴ میلیارد\u2066x\u2069")
    assert shown == f"{FSI}&lt;b&gt;۴ میلیارد\\u2066x\\u2069{PDI}"


def hostile_run(root: Path) -> Path:
    run = root / f"run{HOSTILE[:10]}"  # (no glob characters: those are patterns)
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    article = {
        "id": "a" * 32,
        "title": MARKUP + HOSTILE,
        "body": "Body " + HOSTILE,
        "source": MARKUP,
        "url": "https://news.example/" + HOSTILE,
        "raw_sha256": hashlib.sha256(b"x").hexdigest(),
        "content_fingerprint": "f" * 16,
        "input_uri": "pubsub://attr/" + HOSTILE,
        "input_format": "jsonl",
        "input_position": 1,
        "language": "en",
        "published_at": now,
        "entities": [
            {
                "field": "body",
                "text": MARKUP,
                "type": "PERSON",
                "start": 0,
                "end": 1,
                "confidence": 1.0,
            }
        ],
        "ingested_at": now,
    }
    dead = {
        "stage": "parse",
        "error_type": "InvalidRecord" + HOSTILE,
        "error_message": "bad " + HOSTILE,
        "input_uri": "gs://bucket/" + HOSTILE,
        "position": 3,
        "raw_payload": HOSTILE.encode(),
        "attributes": {"input_uri": HOSTILE},
        "failed_at": now,
    }
    for kind, schema, record in (
        ("articles", schemas.article_schema(), to_article_record(article)),
        ("dead_letter", schemas.dead_letter_schema(), to_dead_letter_record(dead)),
    ):
        record["pipeline_version"] = PIPELINE_VERSION
        folder = run / kind
        folder.mkdir(parents=True)
        with open(folder / f"{kind}{HOSTILE[:10]}-00000-of-00001.avro", "wb") as handle:
            fastavro.writer(handle, fastavro.parse_schema(schema), [record])
    return run


@pytest.mark.parametrize(
    "command",
    [
        ["inspect", "{run}", "--samples", "3"],
        ["inspect", "{run}", "--json"],
        ["cat", "{run}"],
        ["cat", "{run}", "--kind", "dead_letter"],
        ["inspect", "{run}/missing" + HOSTILE],  # an error naming a hostile path
        ["report", "{run}", "--out", "{run}/report.html"],
    ],
)
def test_printouts_show_controls_escaped(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = hostile_run(tmp_path)
    argv = [part.replace("{run}", str(run)) for part in command]
    main(argv)
    out, err = capsys.readouterr()
    assert out or err
    for stream in (out, err):
        assert not any(ch in stream for ch in RAW), repr(stream[:400])
    assert "\\u001b" in out + err or "\\u202e" in out + err  # shown, not dropped


def test_report_labels_show_markup_as_text(tmp_path: Path) -> None:
    run = hostile_run(tmp_path)
    main(["report", str(run), "--out", str(tmp_path / "r.html")])
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    # the figures' data: markup from titles, sources and entities only as entities
    figures = page[page.index("Plotly.newPlot") :] if "Plotly.newPlot" in page else page
    for tag in ("<b>bold", "<span style", "<a xlink:href"):
        assert tag not in figures, tag
    assert "&lt;b&gt;bold" in figures
