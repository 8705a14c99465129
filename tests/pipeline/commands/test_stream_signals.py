"""Clean stop: SIGTERM and SIGINT on `khabar stream` drain (open windows closed, every
published item in a closed file), write the summary and exit 0 (SIGTERM) or 130 (SIGINT)
within --drain-timeout, leaving no process behind; SIGINT on `khabar poll` stops it with
130 and its state saved."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from khabar.pipeline.commands.emulator import (
    PubSubEmulator,
    ensure_topic_and_subscription,
    find_emulator,
)
from tests.conftest import khabar_args, start_khabar, stream_args
from tests.feeds import FeedServer, rss
from tests.kill_restart import alive, children, landed, story

pytestmark = pytest.mark.skipif(
    find_emulator() is None, reason="Pub/Sub emulator (google-cloud-cli-pubsub-emulator) absent"
)


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
def test_stop_signal_drains_writes_the_summary_and_exits(
    tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    out = tmp_path / "out"
    drain_timeout = 45
    with FeedServer() as server:
        items = [(f"s{i}", f"Item {i}", story(i)) for i in range(6)]
        server.routes["/f.rss"] = rss("F", items)
        proc = start_khabar(
            stream_args(server.url("/f.rss"), out, "--drain-timeout", str(drain_timeout))
        )
        spool = out / "_spool.jsonl"
        assert wait_for(lambda: spool.exists() and len(spool.read_bytes().splitlines()) >= 6, 90)
        kids = children(proc.pid)
        sent = time.monotonic()
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=drain_timeout + 30)
        took = time.monotonic() - sent
    print(f"drain after {sig.name}: exit {proc.returncode} after {took:.1f} s")
    assert proc.returncode == code, stderr
    assert took <= drain_timeout + 3, took
    # the emulator (khabar's child) is gone with it
    assert kids and wait_for(lambda: not any(alive(k) for k in kids), 5), "a child outlived khabar"
    summary = json.loads((out / "_SUMMARY.json").read_text())
    assert summary["stream"]["stopped_by"] == sig.name
    assert summary["stream"]["spool_pending"] == 0 and summary["conservation"]["ok"], stdout
    # the open windows were closed: every item in a closed file, once
    counts = landed(out)
    assert sorted(counts) == [f"s{i}" for i in range(6)] and set(counts.values()) == {1}


def test_sigint_stops_khabar_poll_with_130_and_its_state_saved(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with PubSubEmulator() as emulator, FeedServer() as server:
        topic = "projects/khabar-test/topics/poll-sigint"
        ensure_topic_and_subscription(topic, "projects/khabar-test/subscriptions/poll-sigint")
        server.routes["/f.rss"] = rss("F", [("p1", "One", story(1))])
        env = {**os.environ, "PUBSUB_EMULATOR_HOST": emulator.host}
        proc = start_khabar(
            khabar_args(
                "poll",
                "--topic",
                topic,
                "--feed",
                server.url("/f.rss"),
                "--allow-address-range",
                "127.0.0.1/32",
                "--interval",
                "1",
                "--state",
                str(state),
            ),
            env=env,
        )
        assert wait_for(lambda: state.exists() and json.loads(state.read_text())["seen"], 60)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 130, stderr
    assert "published 1 item(s)" in stdout
    assert len(json.loads(state.read_text())["seen"]) == 1
