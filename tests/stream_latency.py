"""From an item appearing in a feed to its record in a closed Avro file: the distribution.

A loopback feed gains an item every ``gap`` seconds (its pubDate = the moment it
appears); ``khabar stream`` polls it every second with ``--window_seconds W`` for
``duration`` seconds. Latency of an item = modification time of the closed file holding
its record - the moment it appeared. Items present at the first poll are left out (they
wait for the job to start).

    python -m tests.stream_latency --window 5 --duration 90
"""

from __future__ import annotations

import argparse
import email.utils
import json
import statistics
import subprocess
import threading
import time
from pathlib import Path

import fastavro

from tests.conftest import VENV_BIN
from tests.feeds import FeedServer
from tests.kill_restart import story


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


def measure(work: Path, window: int, duration: float, gap: float) -> dict:
    out = work / "out"
    items: list[tuple[str, float]] = []
    done = threading.Event()
    with FeedServer() as server:

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
    appeared = dict(items)
    latencies = []
    for path in out.glob("*/date=*/*.avro"):
        mtime = path.stat().st_mtime
        with open(path, "rb") as handle:
            for record in fastavro.reader(handle):
                guid = (record.get("url") or "").rsplit("/", 1)[-1]
                if guid in appeared:
                    latencies.append(mtime - appeared[guid])
    latencies.sort()
    return {
        "window_seconds": window,
        "items": len(appeared),
        "landed": len(latencies),
        "median": round(statistics.median(latencies), 1) if latencies else None,
        "p90": round(latencies[int(0.9 * (len(latencies) - 1))], 1) if latencies else None,
        "max": round(max(latencies), 1) if latencies else None,
        "min": round(min(latencies), 1) if latencies else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--duration", type=float, default=90)
    parser.add_argument("--gap", type=float, default=2.0)
    parser.add_argument("--work", default="/tmp/khabar-latency")
    args = parser.parse_args()
    work = Path(args.work)
    subprocess.run(["rm", "-rf", str(work)], check=True)
    work.mkdir(parents=True)
    print(json.dumps(measure(work, args.window, args.duration, args.gap)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
