"""``khabar stream``: the Pub/Sub emulator, the poller and the streaming job in one
process, made to survive its operator.

* **Stop signals.** SIGTERM (``docker stop``, systemd, Cloud Run) and SIGINT (Ctrl-C)
  mean: stop polling, let the open windows close, write ``_SUMMARY.json``, exit 0
  (SIGTERM) or 130 (SIGINT), all within ``--drain-timeout`` seconds. A second signal
  stops at once (the spool keeps what was not written).
* **No orphans.** The emulator runs in its own process group and gets SIGKILL from the
  kernel when khabar dies, even by SIGKILL (``pipeline.emulator``).
* **Nothing lost, nothing twice.** Every message goes to the spool (fsynced) before it is
  published (``pipeline.spool``); on start, spooled messages whose records are not all
  in closed files are published again first. Spooled items count as seen, so the poller
  does not publish them a second time. ``--overwrite`` clears the Avro, the summary, the
  poller state and the spool together.
* **Latency.** The local Pub/Sub read pulls with a 0.5 s deadline, so its watermark
  (and with it the windows) keeps up with the clock on an idle topic
  (``pipeline.job.local_pubsub``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import signal
import threading
import time
import uuid
from typing import Any

from apache_beam.io.filesystems import FileSystems

from khabar.pipeline.commands.common import StopSignals, format_summary, parse_run_args, quiet_logs
from khabar.pipeline.commands.emulator import EMULATOR_ENV, EmulatorError, PubSubEmulator
from khabar.pipeline.commands.emulator import ensure_topic_and_subscription as ensure
from khabar.pipeline.commands.poll import feeds_of, poll_parser
from khabar.pipeline.commands.poller import Poller, PollStats, PubSubPublisher
from khabar.pipeline.commands.spool import SPOOL_FILE, Spool
from khabar.pipeline.errors import CliError
from khabar.pipeline.job.run import prepare_output, run_streaming
from khabar.pipeline.stages.sinks import join

LOG = logging.getLogger("khabar.stream")
STATE_FILE = "_poller_state.json"
#: What stopping costs beside the drain itself (noticing the signal 0.5 s, cancelling
#: the job 2 s, the summary, stopping the emulator 1-2 s), kept out of the drain's share
#: of ``--drain-timeout``.
STOP_OVERHEAD = 5.0


def local_state_paths(output: str, state: str | None) -> tuple[str, str]:
    """(poller state, spool) of a streaming output. The spool must be a local file (it
    is fsynced): for a ``gs://`` output it lives in the user's state folder."""
    state_path = state or join(output, STATE_FILE)
    if "://" in output:
        base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
        digest = hashlib.sha256(output.encode()).hexdigest()[:12]
        return state_path, os.path.join(base, "khabar", f"spool-{digest}.jsonl")
    return state_path, os.path.join(output, SPOOL_FILE)


def prepare_stream_output(output: str, overwrite: bool, state_path: str, spool_path: str) -> bool:
    """Clear everything with ``overwrite``; resume an earlier ``khabar stream`` on the
    same output (True); refuse any other run's output (as ``khabar run`` does)."""
    if overwrite:
        prepare_output(output, overwrite=True)
        for path in (state_path, spool_path):
            if FileSystems.exists(path):
                FileSystems.delete([path])
        return False
    if FileSystems.exists(spool_path) or FileSystems.exists(state_path):
        return True
    prepare_output(output, overwrite=False)
    return False


def main(argv: list[str]) -> int:
    if "-h" in argv or "--help" in argv:
        print(poll_parser("khabar stream", topic_required=False).format_help())
        print(
            "All `khabar run` options apply too (--output, --window_seconds, "
            "--allowed_lateness, --dedup_ttl, --max_runtime, --drain-timeout, "
            "--emit_duplicates, ...)."
        )
        return 0
    args, rest = poll_parser("khabar stream", topic_required=False).parse_known_args(argv)
    feeds = feeds_of(args)
    run_argv = list(rest)
    if args.max_runtime is not None:
        run_argv += ["--max_runtime", str(args.max_runtime)]
    return run_local_stream(args, run_argv, feeds)


def run_local_stream(args: Any, run_argv: list[str], feeds: list[str]) -> int:
    """The body of ``khabar stream`` (its own arguments parsed)."""
    run_id = uuid.uuid4().hex[:8]
    topic = f"projects/khabar-local/topics/raw-{run_id}"
    subscription = f"projects/khabar-local/subscriptions/pipeline-{run_id}"
    options, khabar = parse_run_args([*run_argv, "--streaming", "--subscription", subscription])
    quiet_logs()
    state_path, spool_path = local_state_paths(khabar.output, args.state)
    resumed = prepare_stream_output(khabar.output, khabar.overwrite, state_path, spool_path)
    stop = threading.Event()
    signals = StopSignals(stop).install()
    emulator = None
    try:
        if not os.environ.get(EMULATOR_ENV):
            try:
                emulator = PubSubEmulator().start()
            except EmulatorError as exc:
                raise CliError(str(exc)) from None
            print(f"khabar stream: started the Pub/Sub emulator on {emulator.host}", flush=True)
        ensure(topic, subscription)
        spool = Spool(spool_path)
        pending, landed = spool.pending(khabar.output, khabar.max_article_bytes)
        publisher = PubSubPublisher(topic)
        poller = Poller(
            publisher,
            feeds=feeds,
            watch=args.watch,
            state_path=state_path,
            timeout=args.timeout,
            max_feed_bytes=args.max_feed_bytes,
            allow=args.allow_ranges,
            workers=args.workers,
            spool=spool,
        )
        if resumed:
            print(
                f"khabar stream: resuming {khabar.output}: {landed.records} record(s) in closed "
                f"files, {len(pending)} spooled message(s) to publish again",
                flush=True,
            )
        total = PollStats()
        replayed = PollStats()
        lock = threading.Lock()

        def count(stats: PollStats) -> None:
            with lock:
                total.add(stats)

        def expected() -> int:
            with lock:
                return landed.records + replayed.records + total.records

        poll_thread = threading.Thread(
            target=poller.run,
            kwargs={
                "interval": args.interval,
                "max_runtime": args.max_runtime,
                "stop": stop,
                "on_poll": count,
            },
            daemon=True,
            name="khabar-poller",
        )

        def started() -> None:
            if pending:
                replayed.add(poller.replay(pending))
            poll_thread.start()

        def amend(summary: dict[str, Any]) -> None:
            left, _ = spool.pending(khabar.output, khabar.max_article_bytes)
            with lock:
                poll = {k: v for k, v in vars(total).items() if v}
            summary["stream"] = {
                "resumed": resumed,
                "records_in_closed_files_before": landed.records,
                "replayed_messages": replayed.published,
                "replayed_records": replayed.records,
                "poller": poll,
                "spool_pending": len(left),
                "stopped_by": signal.Signals(signals.received).name if signals.received else None,
            }

        drain = khabar.drain_seconds
        if drain is None:
            drain = khabar.window_seconds + 15.0
        summary = run_streaming(
            options,
            stop=stop,
            on_started=started,
            expected_messages=expected,
            amend=amend,
            drain_seconds=max(1.0, drain - STOP_OVERHEAD),
        )
        stop.set()
        poll_thread.join(timeout=1.0)
        elapsed = (time.monotonic() - signals.at) if signals.at else None
        print(format_summary(summary, time.time() - _started_at(summary)))
        stream = summary["stream"]
        if stream["spool_pending"]:
            print(
                f"  {stream['spool_pending']} spooled message(s) not yet in closed files: "
                "published again on the next start with the same --output"
            )
        if elapsed is not None:
            print(f"  stopped by {stream['stopped_by']}: drained in {elapsed:.1f} s")
        return signals.exit_code(summary["conservation"]["ok"])
    finally:
        stop.set()
        if emulator:
            emulator.stop()
        signals.restore()


def _started_at(summary: dict[str, Any]) -> float:
    return dt.datetime.fromisoformat(summary["started_at"]).timestamp()
