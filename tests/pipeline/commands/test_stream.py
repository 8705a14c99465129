"""End to end through the real Pub/Sub emulator: a loopback HTTP server serves two RSS
feeds and an Atom feed whose items change between polls; `khabar stream` runs for a
bounded time; the windowed Avro is read back and every item accounted for."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from khabar.pipeline.commands.emulator import find_emulator
from tests.conftest import VENV_BIN, read_avro
from tests.feeds import FeedServer, atom, rss

pytestmark = pytest.mark.skipif(
    find_emulator() is None, reason="Pub/Sub emulator (google-cloud-cli-pubsub-emulator) absent"
)

STORM = (
    "A storm closed the main ports of the northern coast on Saturday and all ferries were "
    "cancelled until further notice, the coastguard said in a statement issued at noon."
)
BUDGET = (
    "The city council approved the new budget after a long debate on Tuesday evening, "
    "officials said, and the plan now goes to the governor for signature."
)
BRIDGE = (
    "The old bridge over the river reopened to traffic on Sunday after six months of "
    "repairs, the mayor said at a ceremony attended by hundreds of residents."
)
SCHOOL = (
    "Primary schools in the capital will move classes online on Monday because air "
    "pollution reached unhealthy levels across most districts, the governor's office said."
)


def test_khabar_stream_through_the_emulator(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with FeedServer() as server:
        server.routes["/one.rss"] = rss("One", [("o1", "Storm closes ports", STORM)])
        server.routes["/two.rss"] = rss(
            "Two",
            [
                ("t1", "Council approves budget", BUDGET),
                ("t-bad", "", ""),  # an item with no text: a dead letter
            ],
        )
        server.routes["/three.atom"] = atom("Three", [("urn:a1", "Bridge reopens", BRIDGE)])
        started = time.time()
        proc = subprocess.Popen(
            [
                str(VENV_BIN / "khabar"),
                "stream",
                "--feed",
                server.url("/one.rss"),
                "--feed",
                server.url("/two.rss"),
                "--feed",
                server.url("/three.atom"),
                "--output",
                str(out),
                "--interval",
                "1",
                "--max-runtime",
                "14",
                "--window_seconds",
                "5",
                "--allow-address-range",
                "127.0.0.1/32",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # wait for the first poll, then change the feeds
        deadline = time.time() + 60
        while "/three.atom" not in server.requests and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(2)
        changed_at = time.time()
        server.routes["/one.rss"] = rss(
            "One", [("o2", "Schools go online", SCHOOL), ("o1", "Storm closes ports", STORM)]
        )
        # the agency story syndicated by another outlet: new headline, edits: a near copy
        syndicated = STORM.replace("at noon", "at midday").replace("all ferries", "ferries")
        server.routes["/two.rss"] = rss(
            "Two",
            [("t2", "Ports shut by storm", syndicated), ("t1", "Council approves budget", BUDGET)],
        )
        stdout, stderr = proc.communicate(timeout=240)
    elapsed = time.time() - started
    assert proc.returncode == 0, stderr
    assert "[OK]" in stdout, stdout
    articles = read_avro(out / "articles", "date=*/*.avro")
    duplicates = read_avro(out / "duplicates", "date=*/*.avro")
    dead = read_avro(out / "dead_letter", "date=*/*.avro")
    titles = sorted(a["title"] for a in articles)
    assert titles == sorted(
        ["Storm closes ports", "Council approves budget", "Bridge reopens", "Schools go online"]
    ), titles  # every new item exactly once; repeats (o1, t1) not republished
    (dup,) = duplicates
    assert dup["title"] == "Ports shut by storm" and dup["duplicate_reason"] == "near"
    (storm,) = [a for a in articles if a["title"] == "Storm closes ports"]
    assert dup["duplicate_of"] == storm["id"] == dup["cluster_id"]
    (bad,) = dead
    # the item's raw payload: its fields as feedparser read them (JSON)
    assert bad["stage"] == "parse" and b'"id":"t-bad"' in bad["raw_payload"]
    summary = json.loads((out / "_SUMMARY.json").read_text())
    assert summary["counts"]["records_in"] == 6 and summary["conservation"]["ok"]
    assert all(a["input_uri"].startswith("http://127.0.0.1:") for a in articles)
    # windowed file names: articles-<start>-<end>-P<pane>-SS-of-NN.avro
    names = [p.name for p in (out / "articles").glob("date=*/*.avro")]
    assert names and all("-P" in n and n.endswith("-of-01.avro") for n in names)
    # arrival-time windows: no record is late, so each window of each kind is one file,
    # its on-time pane (these items' feed dates are days old: under windows on
    # published_at every one of them was late)
    for kind in ("articles", "duplicates", "dead_letter"):
        files = [p.name for p in (out / kind).glob("date=*/*.avro")]
        windows = [name.split("-P")[0] for name in files]
        assert len(windows) == len(set(windows)) and all("-P0-" in n for n in files), files
    # latency: second-round items were in closed files before the job ended
    newest = max(p.stat().st_mtime for p in (out / "articles").glob("date=*/*.avro"))
    print(
        f"latency from feed change to last closed file: {newest - changed_at:.1f} s; "
        f"whole run {elapsed:.1f} s"
    )
