"""Short pulls for the local runner's Pub/Sub read, so its watermark keeps up with the
clock without heartbeat messages.

The BundleBasedDirectRunner reads Pub/Sub in ``_PubSubReadEvaluator``: one ``pull``
with a 30 s deadline on its single worker thread, after which the read's watermark
becomes the wall clock. On an idle topic the emulator holds that pull for 30 s, so the
windows closed up to 30 s late. khabar used to publish a heartbeat message every second
to end each pull; but every message the read returns becomes a bundle, and this runner
passes a bundle (empty after the heartbeat was dropped) through every ParDo of the graph,
each rebuilding its DoFn signature by ``inspect``: about 110 empty ParDo bundles a
second, a third of a core on an idle job, competing with the stages for the CPU.

Here a pull waits ``PULL_SECONDS`` instead, and an empty answer (or an expired
deadline) yields no bundle, so nothing runs downstream, while the watermark still moves
to the clock every ``PULL_SECONDS``. A message published meanwhile ends the pull at once
(measured: the emulator answers a waiting pull 0.06 s after a publish). The emulator
answers an idle pull with nothing one second before its deadline (deadline 2 s: after
1.06 s; 1.5 s: 0.5 s; below 1 s: at once, which would spin), so the deadline asked for
is ``PULL_SECONDS + EMULATOR_MARGIN``.

The runner also asks for at most 10 messages a pull and then sets the watermark to the
clock: in a burst of more than 10 (a feed's first poll, the chunks of a big file), the
rest, published before that watermark, would be late if a window ended in between. The
wrapped pull asks for up to ``PULL_MESSAGES`` (measured: the emulator returns a burst of
60 in one answer), which also puts a burst in one bundle instead of one per 10.

Only the local runner is touched (Dataflow reads Pub/Sub natively), by wrapping the
``pull`` of the subscriber client that runner caches per read; ``install`` checks
the private names it relies on and says so when a Beam upgrade moved them.
"""

from __future__ import annotations

import functools
from typing import Any

from google.api_core import exceptions as api_exceptions

#: Deadline of one pull of the local runner's Pub/Sub read (its watermark moves at
#: least this often).
PULL_SECONDS = 0.5
#: How long before a pull's deadline the emulator gives up waiting for messages.
EMULATOR_MARGIN = 1.0
#: Messages one pull may return (the runner asks for 10).
PULL_MESSAGES = 100


class LocalReadUnpatchable(RuntimeError):
    """The installed Beam does not have the local Pub/Sub read this module wraps."""


def _evaluator() -> Any:
    from apache_beam.runners.direct import transform_evaluator

    evaluator = getattr(transform_evaluator, "_PubSubReadEvaluator", None)
    if evaluator is None or not hasattr(evaluator, "_get_subscriber_client"):
        raise LocalReadUnpatchable(
            "apache_beam.runners.direct.transform_evaluator._PubSubReadEvaluator."
            "_get_subscriber_client is gone: re-check pipeline/job/local_pubsub.py"
        )
    return evaluator


def short_pull(pull: Any, seconds: float) -> Any:
    """``pull`` waiting at most about ``seconds`` for a message (deadline ``seconds +
    EMULATOR_MARGIN``, no retries) and returning up to ``PULL_MESSAGES``; an expired
    deadline returns an empty ``PullResponse``."""
    from google.cloud.pubsub_v1 import types

    @functools.wraps(pull)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        kwargs["timeout"] = seconds + EMULATOR_MARGIN
        kwargs["max_messages"] = max(int(kwargs.get("max_messages") or 0), PULL_MESSAGES)
        kwargs["retry"] = None
        try:
            return pull(*args, **kwargs)
        except api_exceptions.DeadlineExceeded:
            return types.PullResponse()

    wrapped.khabar_short_pull = seconds  # type: ignore[attr-defined]
    return wrapped


def install(seconds: float = PULL_SECONDS) -> None:
    """Make every local Pub/Sub read of this process pull with a ``seconds`` deadline
    (idempotent)."""
    evaluator = _evaluator()
    current = evaluator.__dict__["_get_subscriber_client"]
    if getattr(current, "khabar_short_pull", None) == seconds:
        return
    original = getattr(current, "khabar_original", current)

    def get_client(cls: Any, transform: Any) -> Any:
        client = original.__func__(cls, transform)
        if getattr(client.pull, "khabar_short_pull", None) != seconds:
            client.pull = short_pull(getattr(client.pull, "__wrapped__", client.pull), seconds)
        return client

    patched = classmethod(get_client)
    get_client.khabar_short_pull = seconds  # type: ignore[attr-defined]
    get_client.khabar_original = original  # type: ignore[attr-defined]
    patched.khabar_short_pull = seconds  # type: ignore[attr-defined]
    patched.khabar_original = original  # type: ignore[attr-defined]
    evaluator._get_subscriber_client = patched
