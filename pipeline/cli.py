"""``khabar``: run the pipeline, inspect its Avro output, benchmark.

Errors on the command line or in the inputs are one line on stderr and a non-zero exit,
never a traceback (set ``KHABAR_DEBUG=1`` to see the traceback of an unexpected error).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
from collections.abc import Sequence
from typing import Any

USAGE = """usage: khabar <command> [options]

commands:
  run           run the pipeline (batch by default) and write Avro
  inspect       summarize Avro output: languages, sources, duplicates, dead letters
  report        a self-contained HTML report with charts of a run
  replay        reprocess dead letters (after a fix), keeping provenance
  cat           print or convert a run's Avro as JSON Lines or Parquet
  poll          poll feeds and watched folders, publish new items to Pub/Sub
  deploy        Dataflow: Flex Template metadata, offline option check, launch
  stream        local streaming in one command: Pub/Sub emulator + poller + pipeline
  bench         benchmark the pipeline against a plain-Python loop
  bench-langid  benchmark language identification against lingua, CLD2, langdetect
  bench-dedup   benchmark near-duplicate detection against datasketch MinHashLSH
  bench-ner     benchmark entity tagging (PEYMA/NSURL, ARMAN folds, English)
  bench-normalize  Persian normalization beside hazm, shekar, parsivar on news-fa

khabar <command> --help shows the options of a command.
"""


class CliError(Exception):
    """An error to show as one line, with exit status ``code``."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0 if args else 2
    command, rest = args[0], args[1:]
    commands = {
        "run": cmd_run,
        "inspect": cmd_inspect,
        "report": cmd_report,
        "replay": cmd_replay,
        "cat": cmd_cat,
        "poll": cmd_poll,
        "deploy": cmd_deploy,
        "stream": cmd_stream,
        "bench": cmd_bench,
        "bench-langid": cmd_bench_langid,
        "bench-dedup": cmd_bench_dedup,
        "bench-ner": cmd_bench_ner,
        "bench-normalize": cmd_bench_normalize,
    }
    if command not in commands:
        print(f"khabar: error: unknown command {command!r} (try: khabar --help)", file=sys.stderr)
        return 2
    try:
        return commands[command](rest)
    except CliError as exc:
        print(f"khabar {command}: error: {exc}", file=sys.stderr)
        return exc.code
    except BrokenPipeError:  # `khabar inspect ... | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"khabar {command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback
        if os.environ.get("KHABAR_DEBUG"):
            raise
        message = f"{type(exc).__name__}: {exc}".strip().splitlines()[0][:500]
        print(f"khabar {command}: error: {message} (KHABAR_DEBUG=1 shows details)", file=sys.stderr)
        return 1


# --------------------------------------------------------------------------- run


def quiet_logs() -> None:
    level = os.environ.get("KHABAR_LOG_LEVEL", "ERROR")
    for name in ("apache_beam", "trafilatura", "htmldate", "courlan", "google"):
        logging.getLogger(name).setLevel(level)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise CliError(message)


def _all_options_parser() -> argparse.ArgumentParser:
    """A parser that knows every registered Beam option (to reject unknown flags)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    parser = _Parser(prog="khabar run", add_help=False, allow_abbrev=False)
    seen: set[type] = set()
    stack = list(PipelineOptions.__subclasses__())
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        stack.extend(cls.__subclasses__())
        try:
            cls._add_argparse_args(parser)
        except argparse.ArgumentError:
            pass  # an option registered twice by two classes
    return parser


def _run_help() -> str:
    from apache_beam.options.pipeline_options import DirectOptions, StandardOptions

    from pipeline.options import KhabarOptions

    parser = argparse.ArgumentParser(
        prog="khabar run",
        description="Read raw articles (text, JSON Lines, HTML, RSS/Atom; local or gs://), "
        "parse, clean, detect language, normalize, deduplicate, and write Avro to "
        "OUTPUT/articles/ and OUTPUT/dead_letter/. Batch on the DirectRunner by default. "
        "Any Apache Beam pipeline option passes through to the runner.",
        epilog="Example: khabar run --input seeds/ --output out/demo --direct_num_workers=2 "
        "--direct_running_mode=multi_processing",
    )
    KhabarOptions._add_argparse_args(parser)
    beam_group = parser.add_argument_group("common Beam options (all others pass through too)")
    for cls in (StandardOptions, DirectOptions):
        cls._add_argparse_args(beam_group)  # type: ignore[arg-type]
    return parser.format_help()


def parse_run_args(argv: list[str]):
    """Validate ``khabar run`` arguments; returns (PipelineOptions, KhabarOptions)."""
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

    from pipeline.options import KhabarOptions

    parser = _all_options_parser()
    _, unknown = parser.parse_known_args(argv)
    if unknown:
        raise CliError(f"unrecognized arguments: {' '.join(unknown)}")
    options = PipelineOptions(argv)
    khabar = options.view_as(KhabarOptions)
    standard = options.view_as(StandardOptions)
    if standard.streaming:
        if not khabar.subscription:
            raise CliError("--streaming needs --subscription projects/P/subscriptions/S")
        if not re.fullmatch(r"projects/[^/]+/subscriptions/[^/]+", khabar.subscription):
            raise CliError(
                f"--subscription must look like projects/P/subscriptions/S, got "
                f"{khabar.subscription!r}"
            )
    elif not khabar.input:
        raise CliError("--input is required (a file, directory or glob; local or gs://)")
    if not khabar.output:
        raise CliError("--output is required (a directory, local or gs://)")
    if not standard.runner:
        standard.runner = "DirectRunner"
    from pipeline.deploy import validate_run_options

    validate_run_options(options)
    return options, khabar


def cmd_run(argv: list[str]) -> int:
    if "-h" in argv or "--help" in argv:
        print(_run_help(), end="")
        return 0
    options, khabar = parse_run_args(argv)
    from apache_beam.options.pipeline_options import StandardOptions

    from pipeline.run import prepare_output, run_batch, run_streaming
    from pipeline.sources import InputError, expand_inputs

    quiet_logs()
    if options.view_as(StandardOptions).streaming:
        prepare_output(khabar.output, overwrite=khabar.overwrite)
        started = time.time()
        summary = run_streaming(options)
        if "counts" not in summary:
            print(f"khabar run: streaming job submitted: {summary}")
            return 0
        print(format_summary(summary, time.time() - started))
        return 0 if summary["conservation"]["ok"] else 1
    try:
        files = expand_inputs(khabar.input)
    except InputError as exc:
        raise CliError(str(exc)) from None
    prepare_output(khabar.output, overwrite=khabar.overwrite)
    from pipeline.progress import Progress

    started = time.time()
    with Progress(quiet=khabar.quiet) as progress:
        summary = run_batch(options, files, progress.channel)
    print(format_summary(summary, time.time() - started))
    return 0 if summary["conservation"]["ok"] else 1


def format_summary(summary: dict[str, Any], elapsed: float) -> str:
    c = summary["counts"]
    lines = [
        f"khabar run: {summary['files']} file(s), runner {summary['runner']}, {elapsed:.1f} s"
        if summary.get("mode") != "streaming"
        else f"khabar run --streaming: runner {summary['runner']}, {elapsed:.1f} s",
        f"  records in        {c['records_in']:>8}",
        f"  articles written  {c['articles']:>8}   -> {summary['outputs']['articles']}",
        f"  duplicates        {c['duplicates']:>8}   "
        + (
            f"-> {summary['outputs']['duplicates']}"
            if summary["options"]["emit_duplicates"] or summary.get("mode") == "streaming"
            else "(linked, not written; --emit_duplicates writes them)"
        ),
        f"  dead letters      {c['dead_letters']:>8}   -> {summary['outputs']['dead_letter']}",
        "  per stage (ok / dead letters):"
        + (
            "  (Beam metrics; the local streaming runner undercounts them)"
            if summary.get("mode") == "streaming"
            else ""
        ),
    ]
    for stage, counts in summary["stages"].items():
        lines.append(f"    {stage:<10} {counts.get('ok', 0):>8} / {counts.get('dead_letter', 0)}")
    if summary["languages"]:
        langs = ", ".join(f"{k} {v}" for k, v in summary["languages"].items())
        lines.append(f"  languages detected (incl. duplicates): {langs}")
    cons = summary["conservation"]
    verdict = "OK" if cons["ok"] else "MISMATCH"
    lines.append(
        f"  conservation: {c['records_in']} in = {c['articles']} written + {c['duplicates']} "
        f"duplicates + {c['dead_letters']} dead letters  [{verdict}]"
    )
    lines.append(f"  summary: {summary['outputs']['summary']}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- poll / stream


def _poll_parser(prog: str, topic_required: bool) -> argparse.ArgumentParser:
    from pipeline.poller import DEFAULT_MAX_FEED_BYTES, DEFAULT_TIMEOUT

    parser = _Parser(
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
        "--allow-private-addresses",
        dest="allow_private",
        action="store_true",
        help="allow feeds (and redirects) to link-local/metadata addresses",
    )
    return parser


def _feeds(args: argparse.Namespace) -> list[str]:
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
    return feeds


def _default_state(topic: str) -> str:
    import hashlib

    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    digest = hashlib.sha256(topic.encode()).hexdigest()[:12]
    return os.path.join(base, "khabar", f"poller-{digest}.json")


def cmd_poll(argv: list[str]) -> int:
    args = _poll_parser("khabar poll", topic_required=True).parse_args(argv)
    if not re.fullmatch(r"projects/[^/]+/topics/[^/]+", args.topic):
        raise CliError(f"--topic must look like projects/P/topics/T, got {args.topic!r}")
    feeds = _feeds(args)
    from pipeline.poller import Poller, PubSubPublisher

    quiet_logs()
    poller = Poller(
        PubSubPublisher(args.topic),
        feeds=feeds,
        watch=args.watch,
        state_path=args.state or _default_state(args.topic),
        timeout=args.timeout,
        max_feed_bytes=args.max_feed_bytes,
        allow_private=args.allow_private,
    )

    def report(stats) -> None:
        print(
            f"poll: fetched {stats.fetched}, not modified {stats.not_modified}, errors "
            f"{stats.errors}, published {stats.published}, already seen {stats.skipped_seen}",
            flush=True,
        )

    total = poller.run(args.interval, args.max_runtime, on_poll=report)
    print(f"khabar poll: published {total.published} item(s) to {args.topic}")
    return 0


def cmd_stream(argv: list[str]) -> int:
    if "-h" in argv or "--help" in argv:
        print(_poll_parser("khabar stream", topic_required=False).format_help())
        print(
            "All `khabar run` options apply too (--output, --window_seconds, "
            "--allowed_lateness, --dedup_ttl, --max_runtime, --emit_duplicates, ...)."
        )
        return 0
    args, rest = _poll_parser("khabar stream", topic_required=False).parse_known_args(argv)
    feeds = _feeds(args)
    import threading
    import uuid

    from pipeline.emulator import EMULATOR_ENV, EmulatorError, PubSubEmulator
    from pipeline.emulator import ensure_topic_and_subscription as ensure
    from pipeline.poller import Poller, PubSubPublisher
    from pipeline.run import prepare_output, run_streaming

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


def cmd_inspect(argv: list[str]) -> int:
    from pipeline.inspect import InspectError, format_report, inspect_paths

    parser = _Parser(
        prog="khabar inspect",
        description="Summarize khabar Avro output: a run directory, Avro files or globs "
        "(local or gs://).",
    )
    parser.add_argument("paths", nargs="+", help="run directory, .avro files or globs")
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    parser.add_argument("--samples", type=int, default=3, help="sample records to show")
    parser.add_argument("--against", metavar="OLD", help="show drift from an older run")
    args = parser.parse_args(argv)
    try:
        report = inspect_paths(args.paths, samples=args.samples)
        old = inspect_paths([args.against], samples=0) if args.against else None
    except InspectError as exc:
        raise CliError(str(exc)) from None
    drift = None
    if old is not None:
        from pipeline.drift import drift_report, format_drift

        drift = drift_report(report, old)
    if args.json:
        payload = report if drift is None else {"report": report, "drift": drift}
        print(json.dumps(payload, ensure_ascii=False, indent=2, default=str))
    else:
        print(format_report(report))
        if drift is not None:
            print(format_drift(drift))
    return 0


# --------------------------------------------------------------------------- benchmarks


def cmd_deploy(argv: list[str]) -> int:
    from pipeline.deploy import main as deploy_main

    return deploy_main(argv)


def cmd_report(argv: list[str]) -> int:
    from pipeline.report import main as report_main

    return report_main(argv)


def cmd_replay(argv: list[str]) -> int:
    from pipeline.replay import main as replay_main

    quiet_logs()
    return replay_main(argv)


def cmd_cat(argv: list[str]) -> int:
    from pipeline.cat import main as cat_main

    return cat_main(argv)


def cmd_bench(argv: list[str]) -> int:
    from pipeline.bench import main as bench_main

    return bench_main(argv)


def cmd_bench_ner(argv: list[str]) -> int:
    from pipeline.bench_ner import main as bench_ner_main

    return bench_ner_main(argv)


def cmd_bench_dedup(argv: list[str]) -> int:
    from pipeline.bench_dedup import main as bench_dedup_main

    return bench_dedup_main(argv)


def cmd_bench_normalize(argv: list[str]) -> int:
    from pipeline.bench_normalize import main as bench_normalize_main

    return bench_normalize_main(argv)


def cmd_bench_langid(argv: list[str]) -> int:
    from pipeline.bench_langid import main as bench_langid_main

    return bench_langid_main(argv)


if __name__ == "__main__":
    sys.exit(main())
