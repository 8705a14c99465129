"""From an item appearing in a feed to its record in a closed Avro file: the distribution,
and where the time goes.

A loopback feed gains an item every ``gap`` seconds (its pubDate = the moment it
appears); ``khabar stream`` polls it every second with ``--window_seconds W`` for
``duration`` seconds. A watcher lists the output every 0.1 s and notes when each closed
file first appears. Per item (items present at the first poll are left out: they wait
for the job to start):

* ``latency``: its file appeared - the item appeared (the goal: at most W + 5 s);
* ``poll``: the feed was first served after the item appeared - the item appeared (the
  poll interval);
* ``to_sink``: the record reached the file writer (its ``ingested_at``) - the item
  appeared: poll interval, fetch, spool, publish, Pub/Sub read and the stages;
* ``close``: its file appeared - the later of its window's end and ``to_sink``: the
  watermark reaching the window end, the two grouping steps of the writer, writing and
  renaming the file.

Also counted: records in a late pane (pane index > 0) and windows written as more than
one file. The machine's load average is printed before and after (measurements on a
shared machine are noisy).

    python -m tests.stream_latency --window 5 --duration 90
"""

from __future__ import annotations

import argparse
import calendar
import email.utils
import json
import os
import re
import statistics
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import fastavro

from tests.conftest import VENV_BIN
from tests.feeds import FeedServer
from tests.kill_restart import story

#: ``articles-<start>-<end>-P<pane>-SS-of-NN.avro`` (pipeline/stages/sinks.py)
FILE_NAME = re.compile(r"-(\d{8}T\d{6}Z)-(\d{8}T\d{6}Z)-P(\d+)-\d+-of-\d+\.avro$")


def feed_xml(items: list[tuple[str, float]]) -> bytes:
    body = "".join(
        f"<item><title>Item {guid}</title><link>https://news.example/{guid}</link>"
        f"<guid>{guid}</guid><pubDate>{email.utils.formatdate(at, usegmt=True)}</pubDate>"
        f"<description>{story(int(guid[1:]))}</description></item>"
        for guid, at in items
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>Latency</title>{body}</channel></rss>"
    ).encode()


def _stamp(text: str) -> float:
    return calendar.timegm(time.strptime(text, "%Y%m%dT%H%M%SZ"))


class ServedRoutes(dict):
    """The feed server's routes, noting when each route is served (the handler reads
    its body once per request)."""

    def __init__(self) -> None:
        super().__init__()
        self.served: list[float] = []

    def __getitem__(self, key: str) -> bytes:
        self.served.append(time.time())
        return super().__getitem__(key)


class FileWatcher:
    """Notes when each closed Avro file under ``out`` first appears (every 0.1 s)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.seen: dict[Path, float] = {}
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.done.wait(0.1):
            now = time.time()
            for path in self.out.glob("*/date=*/*.avro"):
                self.seen.setdefault(path, now)

    def __enter__(self) -> FileWatcher:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join()


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def spread(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "p90": None, "max": None}
    values = sorted(values)
    return {
        "median": round(statistics.median(values), 1),
        "p90": round(values[int(0.9 * (len(values) - 1))], 1),
        "max": round(values[-1], 1),
    }


def measure(
    work: Path, window: int, duration: float, gap: float, extra: list[str] | None = None
) -> dict:
    out = work / "out"
    items: list[tuple[str, float]] = []
    done = threading.Event()
    load_before = loadavg()
    with FeedServer() as server, FileWatcher(out) as watcher:
        routes = server.routes = ServedRoutes()

        def grow() -> None:
            n = 0
            while not done.is_set():
                n += 1
                items.insert(0, (f"l{n}", time.time()))
                server.routes["/l.rss"] = feed_xml(items[:100])
                done.wait(gap)

        proc = subprocess.Popen(
            [
                str(VENV_BIN / "khabar"),
                "stream",
                "--feed",
                server.url("/l.rss"),
                "--allow-address-range",
                "127.0.0.1/32",
                "--interval",
                "1",
                "--window_seconds",
                str(window),
                "--output",
                str(out),
                "--max-runtime",
                str(duration),
                "--drain-timeout",
                "120",
                *(extra or []),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        server.routes["/l.rss"] = feed_xml([])
        while not server.requests.get("/l.rss"):  # the job is up and polling
            time.sleep(0.2)
        grower = threading.Thread(target=grow, daemon=True)
        grower.start()
        time.sleep(max(0.0, duration - 25))  # leave the last items time to land
        done.set()
        proc.communicate(timeout=duration + 300)
        time.sleep(0.3)
    appeared = dict(items)
    latency, poll, to_sink, close = [], [], [], []
    late = 0
    files_per_window: Counter = Counter()
    for path, first_seen in watcher.seen.items():
        match = FILE_NAME.search(path.name)
        if not match:
            continue
        end, pane = _stamp(match.group(2)), int(match.group(3))
        if path.parent.parent.name == "articles":
            files_per_window[match.group(1)] += 1
        with open(path, "rb") as handle:
            for record in fastavro.reader(handle):
                guid = (record.get("url") or "").rsplit("/", 1)[-1]
                if guid not in appeared:
                    continue
                at = appeared[guid]
                sink = record["ingested_at"].timestamp()
                latency.append(first_seen - at)
                polled = next((t for t in routes.served if t >= at), None)
                if polled is not None:
                    poll.append(polled - at)
                to_sink.append(sink - at)
                close.append(first_seen - max(end, sink))
                late += pane > 0
    return {
        "window_seconds": window,
        "items": len(appeared),
        "landed": len(latency),
        "latency": spread(latency),
        "min": round(min(latency), 1) if latency else None,
        "poll": spread(poll),
        "to_sink": spread(to_sink),
        "close": spread(close),
        "within_window_plus_5": sum(v <= window + 5 for v in latency),
        "late_pane_records": late,
        "windows": len(files_per_window),
        "windows_in_several_files": sum(n > 1 for n in files_per_window.values()),
        "load_before": load_before,
        "load_after": loadavg(),
        "exit": proc.returncode,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--duration", type=float, default=90)
    parser.add_argument("--gap", type=float, default=2.0)
    parser.add_argument("--work", default="/tmp/khabar-latency")
    args, extra = parser.parse_known_args()
    work = Path(args.work)
    subprocess.run(["rm", "-rf", str(work)], check=True)
    work.mkdir(parents=True)
    print(json.dumps(measure(work, args.window, args.duration, args.gap, extra)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
