"""``khabar poll``: poll feeds and watched folders, publish new items to Pub/Sub."""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import threading

from khabar.pipeline.commands.common import StopSignals, quiet_logs
from khabar.pipeline.commands.netguard import parse_allow
from khabar.pipeline.commands.poller import (
    DEFAULT_MAX_FEED_BYTES,
    DEFAULT_TIMEOUT,
    DEFAULT_WORKERS,
    Poller,
    PubSubPublisher,
)
from khabar.pipeline.errors import CliError
from khabar.pipeline.job.options import Parser


def poll_parser(prog: str, topic_required: bool) -> argparse.ArgumentParser:
    parser = Parser(
        prog=prog,
        description="Poll RSS/Atom feeds (conditional GET, limits, back-off) and watched "
        "folders or buckets; publish every new item once to Pub/Sub with provenance.",
    )
    parser.add_argument("--feed", action="append", default=[], help="feed URL (repeatable)")
    parser.add_argument(
        "--feeds-file",
        "--feeds_file",
        dest="feeds_file",
        default=None,
        help="file with one feed URL per line (# comments)",
    )
    parser.add_argument(
        "--watch",
        action="append",
        default=[],
        help="folder or gs:// prefix whose new files are published (repeatable)",
    )
    if topic_required:
        parser.add_argument("--topic", required=True, help="projects/P/topics/T")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between polls")
    parser.add_argument(
        "--max-runtime",
        "--max_runtime",
        dest="max_runtime",
        type=float,
        default=None,
        help="stop after this many seconds (default: never)",
    )
    parser.add_argument(
        "--state",
        default=None,
        help="where the poller remembers published items and ETags (local "
        "file or gs:// object); default ~/.local/state/khabar/poller-<topic>.json",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"per-request timeout in seconds (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--max-feed-bytes",
        "--max_feed_bytes",
        dest="max_feed_bytes",
        type=int,
        default=DEFAULT_MAX_FEED_BYTES,
        help=f"largest feed response accepted (default {DEFAULT_MAX_FEED_BYTES})",
    )
    parser.add_argument(
        "--allow-address-range",
        "--allow_address_range",
        dest="allow_ranges",
        action="append",
        default=[],
        metavar="CIDR",
        help="let feeds (and redirects) reach addresses in this range, which are refused "
        "by default (loopback, private, link-local, CGNAT, metadata, ...); repeatable, "
        "e.g. 127.0.0.1/32 or 10.20.0.0/16",
    )
    parser.add_argument(
        "--allow-private-addresses",
        dest="removed_allow_private",
        action="store_true",
        help=argparse.SUPPRESS,
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=DEFAULT_WORKERS,
        help=f"feeds fetched at once (default {DEFAULT_WORKERS})",
    )
    return parser


def feeds_of(args: argparse.Namespace) -> list[str]:
    feeds = list(args.feed)
    if args.feeds_file:
        try:
            with open(args.feeds_file, encoding="utf-8") as handle:
                feeds += [
                    line.strip()
                    for line in handle
                    if line.strip() and not line.lstrip().startswith("#")
                ]
        except OSError as exc:
            raise CliError(f"cannot read --feeds-file: {exc}") from None
    for url in feeds:
        if not re.match(r"https?://", url):
            raise CliError(f"feed URL must be http(s): {url!r}")
    if not feeds and not args.watch:
        raise CliError("give at least one --feed, --feeds-file or --watch")
    if args.removed_allow_private:
        raise CliError(
            "--allow-private-addresses was replaced by --allow-address-range CIDR "
            "(repeatable), which allows exactly the ranges it names"
        )
    try:
        parse_allow(args.allow_ranges)
    except ValueError as exc:
        raise CliError(f"--allow-address-range: {exc}") from None
    if args.workers < 1:
        raise CliError("--workers must be at least 1")
    return feeds


def _default_state(topic: str) -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    digest = hashlib.sha256(topic.encode()).hexdigest()[:12]
    return os.path.join(base, "khabar", f"poller-{digest}.json")


def main(argv: list[str]) -> int:
    args = poll_parser("khabar poll", topic_required=True).parse_args(argv)
    if not re.fullmatch(r"projects/[^/]+/topics/[^/]+", args.topic):
        raise CliError(f"--topic must look like projects/P/topics/T, got {args.topic!r}")
    feeds = feeds_of(args)
    quiet_logs()
    poller = Poller(
        PubSubPublisher(args.topic),
        feeds=feeds,
        watch=args.watch,
        state_path=args.state or _default_state(args.topic),
        timeout=args.timeout,
        max_feed_bytes=args.max_feed_bytes,
        allow=args.allow_ranges,
        workers=args.workers,
    )

    def report(stats) -> None:
        print(
            f"poll: fetched {stats.fetched}, not modified {stats.not_modified}, errors "
            f"{stats.errors}, published {stats.published}, already seen {stats.skipped_seen}",
            flush=True,
        )

    stop = threading.Event()
    signals = StopSignals(stop).install()  # SIGTERM / Ctrl-C: finish in-flight, save state
    try:
        total = poller.run(args.interval, args.max_runtime, stop=stop, on_poll=report)
    finally:
        signals.restore()
    print(f"khabar poll: published {total.published} item(s) to {args.topic}")
    return signals.exit_code(True)
