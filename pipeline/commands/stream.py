"""``khabar stream``: local streaming in one command (Pub/Sub emulator + poller + pipeline)."""

from __future__ import annotations

import os
import threading
import time
import uuid

from khabar.pipeline.commands.common import format_summary, parse_run_args, quiet_logs
from khabar.pipeline.commands.emulator import EMULATOR_ENV, EmulatorError, PubSubEmulator
from khabar.pipeline.commands.emulator import ensure_topic_and_subscription as ensure
from khabar.pipeline.commands.poll import feeds_of, poll_parser
from khabar.pipeline.commands.poller import Poller, PubSubPublisher
from khabar.pipeline.errors import CliError
from khabar.pipeline.job.run import prepare_output, run_streaming


def main(argv: list[str]) -> int:
    if "-h" in argv or "--help" in argv:
        print(poll_parser("khabar stream", topic_required=False).format_help())
        print(
            "All `khabar run` options apply too (--output, --window_seconds, "
            "--allowed_lateness, --dedup_ttl, --max_runtime, --emit_duplicates, ...)."
        )
        return 0
    args, rest = poll_parser("khabar stream", topic_required=False).parse_known_args(argv)
    feeds = feeds_of(args)
    run_id = uuid.uuid4().hex[:8]
    topic = f"projects/khabar-local/topics/raw-{run_id}"
    subscription = f"projects/khabar-local/subscriptions/pipeline-{run_id}"
    run_argv = [*rest, "--streaming", "--subscription", subscription]
    if args.max_runtime is not None:
        run_argv += ["--max_runtime", str(args.max_runtime)]
    options, khabar = parse_run_args(run_argv)
    quiet_logs()
    prepare_output(khabar.output, overwrite=khabar.overwrite)
    emulator = None
    if not os.environ.get(EMULATOR_ENV):
        try:
            emulator = PubSubEmulator().start()
        except EmulatorError as exc:
            raise CliError(str(exc)) from None
        print(f"khabar stream: started the Pub/Sub emulator on {emulator.host}", flush=True)
    stop = threading.Event()
    try:
        ensure(topic, subscription)
        poller = Poller(
            PubSubPublisher(topic),
            feeds=feeds,
            watch=args.watch,
            state_path=args.state or os.path.join(khabar.output, "_poller_state.json"),
            timeout=args.timeout,
            max_feed_bytes=args.max_feed_bytes,
            allow_private=args.allow_private,
        )
        published = [0]

        def count(stats) -> None:
            published[0] += stats.published

        thread = threading.Thread(
            target=poller.run,
            kwargs={
                "interval": args.interval,
                "max_runtime": args.max_runtime,
                "stop": stop,
                "on_poll": count,
            },
            daemon=True,
        )
        started = time.time()
        summary = run_streaming(
            options,
            stop=stop,
            on_started=thread.start,
            expected_messages=lambda: published[0],
        )
        stop.set()
        thread.join(timeout=30)
        print(format_summary(summary, time.time() - started))
        return 0 if summary["conservation"]["ok"] else 1
    finally:
        stop.set()
        if emulator:
            emulator.stop()


# --------------------------------------------------------------------------- inspect
