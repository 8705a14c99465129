"""The local runner's Pub/Sub read pulls with a short wait (pipeline/job/local_pubsub.py):
the Beam names it wraps exist, an idle pull answers empty after about PULL_SECONDS
instead of 30 s, a message published meanwhile ends the pull at once, and a burst above
the runner's 10 messages comes in one answer."""

from __future__ import annotations

import os
import threading
import time

import pytest

from khabar.pipeline.commands.emulator import (
    PubSubEmulator,
    ensure_topic_and_subscription,
    find_emulator,
)
from khabar.pipeline.job import local_pubsub

TOPIC = "projects/khabar-test/topics/short-pull"
SUBSCRIPTION = "projects/khabar-test/subscriptions/short-pull"


def test_install_wraps_the_local_read_once() -> None:
    from apache_beam.runners.direct.transform_evaluator import _PubSubReadEvaluator

    local_pubsub.install()
    first = _PubSubReadEvaluator.__dict__["_get_subscriber_client"]
    local_pubsub.install()
    assert _PubSubReadEvaluator.__dict__["_get_subscriber_client"] is first
    assert first.khabar_short_pull == local_pubsub.PULL_SECONDS


@pytest.mark.skipif(find_emulator() is None, reason="Pub/Sub emulator absent")
def test_short_pull_answers_empty_soon_and_a_message_at_once() -> None:
    from google.cloud import pubsub

    with PubSubEmulator() as emulator:
        # set by the emulator while it runs, and removed after (no monkeypatch: it would
        # put the dead emulator's address back at teardown, for every later test)
        assert os.environ["PUBSUB_EMULATOR_HOST"] == emulator.host
        ensure_topic_and_subscription(TOPIC, SUBSCRIPTION)
        client = pubsub.SubscriberClient()
        pull = local_pubsub.short_pull(client.pull, local_pubsub.PULL_SECONDS)
        # the runner's own call: 30 s deadline, 10 messages
        started = time.monotonic()
        empty = pull(subscription=SUBSCRIPTION, max_messages=10, timeout=30)
        idle = time.monotonic() - started
        assert not empty.received_messages
        assert local_pubsub.PULL_SECONDS * 0.5 <= idle < local_pubsub.PULL_SECONDS + 1.0, idle

        # a pull that would wait 3 s ends when a message comes (0.2 s)
        longer = local_pubsub.short_pull(client.pull, 3.0)
        publisher = pubsub.PublisherClient()
        later = threading.Timer(0.2, lambda: publisher.publish(TOPIC, b"x").result())
        started = time.monotonic()
        later.start()
        got = longer(subscription=SUBSCRIPTION, max_messages=10, timeout=30)
        waited = time.monotonic() - started
        later.join()
        assert [m.message.data for m in got.received_messages] == [b"x"]
        assert waited < 1.5, waited

        # a burst above the runner's 10 messages comes in one answer (one bundle, one
        # watermark step after all of it)
        sent = [publisher.publish(TOPIC, f"b{i}".encode()) for i in range(30)]
        for future in sent:
            future.result()
        burst = pull(subscription=SUBSCRIPTION, max_messages=10, timeout=30)
        assert len(burst.received_messages) == 30
