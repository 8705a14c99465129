"""The streaming writer on the real clock (BundleBasedDirectRunner, Pub/Sub emulator):
late records are gathered into a late pane, written as one file per window and pane,
instead of a file per record. (TestStream cannot show this: Beam's trigger driver
mislabels a processing-time late pane on its 1970 clock and then reports a stall; see
docs/BEAM-NOTES.md.)

Late records are made here on purpose: the read takes each message's timestamp from an
attribute set 20 s in the past. khabar's own graph has no late records in normal
operation (windows on arrival time)."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections import defaultdict
from pathlib import Path

import apache_beam as beam
import fastavro
import pytest
from apache_beam.io.gcp.pubsub import ReadFromPubSub
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from khabar.pipeline.commands.emulator import (
    PubSubEmulator,
    ensure_topic_and_subscription,
    find_emulator,
)
from khabar.pipeline.graph.streaming import windowing
from khabar.pipeline.job import local_pubsub
from khabar.pipeline.stages.sinks import DEAD_LETTER_DIR, WriteAvroWindowed, streaming_files

pytestmark = pytest.mark.skipif(find_emulator() is None, reason="Pub/Sub emulator absent")
TOPIC = "projects/khabar-test/topics/late-panes"
SUBSCRIPTION = "projects/khabar-test/subscriptions/late-panes"
WINDOW = 5


def as_record(message) -> dict:
    return {
        "stage": "probe",
        "error_type": "none",
        "error_message": message.data.decode(),
        "input_uri": "pubsub://late-panes",
        "position": 0,
        "raw_payload": message.data,
        "attributes": {},
        "failed_at": dt.datetime.now(dt.UTC),
        "pipeline_version": "test",
    }


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_late_records_share_a_pane_file_on_time_ones_one_file(tmp_path: Path) -> None:
    from google.cloud import pubsub

    out = str(tmp_path / "out")
    with PubSubEmulator() as emulator:
        # set by the emulator while it runs, and removed after (no monkeypatch: it would
        # put the dead emulator's address back at teardown, for every later test)
        assert os.environ["PUBSUB_EMULATOR_HOST"] == emulator.host
        ensure_topic_and_subscription(TOPIC, SUBSCRIPTION)
        local_pubsub.install()
        options = PipelineOptions()
        options.view_as(StandardOptions).streaming = True
        p = beam.Pipeline(runner="BundleBasedDirectRunner", options=options)
        _ = (
            p
            | ReadFromPubSub(
                subscription=SUBSCRIPTION, with_attributes=True, timestamp_attribute="ts"
            )
            | beam.Map(as_record)
            | windowing(WINDOW, 3600)
            | WriteAvroWindowed(out, DEAD_LETTER_DIR)
        )
        result = p.run()
        try:
            publisher = pubsub.PublisherClient()
            closed = (int(time.time()) // WINDOW) * WINDOW - 4 * WINDOW  # closed 15-20 s ago
            time.sleep(1)
            publisher.publish(TOPIC, b"on-time", ts=str(int(time.time() * 1000))).result()
            for i in range(4):  # four late records of one closed window, 0.5 s apart
                stamp = (closed + 1 + i * 0.5) * 1000
                publisher.publish(TOPIC, f"late{i}".encode(), ts=str(int(stamp))).result()
                time.sleep(0.5)

            def written() -> int:
                total = 0
                for path in streaming_files(out, DEAD_LETTER_DIR):
                    with open(path, "rb") as handle:
                        total += sum(1 for _ in fastavro.reader(handle))
                return total

            assert wait_for(lambda: written() == 5, 60), written()
        finally:
            result.cancel()
    assert "PUBSUB_EMULATOR_HOST" not in os.environ
    files: dict[str, list[tuple[str, list[str]]]] = defaultdict(list)
    for path in streaming_files(out, DEAD_LETTER_DIR):
        name = os.path.basename(path)
        with open(path, "rb") as handle:
            files[name.split("-P")[0]].append(
                (name, [r["error_message"] for r in fastavro.reader(handle)])
            )
    late = [
        entry
        for entry in files.values()
        if any(m.startswith("late") for _, ms in entry for m in ms)
    ]
    ontime = [
        entry for entry in files.values() if any(m == "on-time" for _, ms in entry for m in ms)
    ]
    assert len(late) == 1 and len(ontime) == 1, files
    # the on-time window: one file, its on-time pane
    ((name, messages),) = ontime[0]
    assert "-P0-" in name and messages == ["on-time"]
    # the late window: Beam fires a window whose watermark has passed on its first
    # record (pane 0); the later ones wait for the late trigger and share one pane
    panes = sorted(late[0])
    assert len(panes) <= 2, panes
    assert sorted(m for _, ms in panes for m in ms) == [f"late{i}" for i in range(4)]
