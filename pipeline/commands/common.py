"""Helpers the ``khabar`` commands share: quiet logs, ``khabar run`` argument checks,
the run summary printed at the end, and stop signals (SIGTERM/SIGINT) for the
long-running commands."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from typing import Any

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from khabar.pipeline.errors import CliError, did_you_mean
from khabar.pipeline.job.dataflow import apply_dataflow_defaults, validate_run_options
from khabar.pipeline.job.options import KhabarOptions, all_options_parser
from khabar.pipeline.job.runner import load_runner_options

#: The flags that say whether the launcher's main session is pickled for the workers.
SESSION_FLAGS = ("--save_main_session", "--no_save_main_session")

#: Libraries whose logs khabar keeps at KHABAR_LOG_LEVEL (default ERROR).
LOGGERS = ("apache_beam", "trafilatura", "htmldate", "courlan", "google", "hazm")


def quiet_logs(log_format: str = "text") -> None:
    """Library logs at ``KHABAR_LOG_LEVEL`` (DEBUG, INFO, WARNING, ERROR, CRITICAL; default
    ERROR); with ``log_format == "json"`` every log record is one JSON line on stderr."""
    level = os.environ.get("KHABAR_LOG_LEVEL", "ERROR").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise CliError(
            f"KHABAR_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {level!r}"
        )
    for name in LOGGERS:
        logging.getLogger(name).setLevel(level)
    if log_format == "json":
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonLogFormatter())
        root = logging.getLogger()
        for old in list(root.handlers):
            root.removeHandler(old)
        root.addHandler(handler)


class JsonLogFormatter(logging.Formatter):
    """A log record as one JSON object (``--log-format json``)."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="seconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(payload, ensure_ascii=False)


def parse_run_args(argv: list[str]):
    """Validate ``khabar run`` arguments; returns (PipelineOptions, KhabarOptions).

    The runner's own options are known once its module is loaded, so they pass through;
    no run pickles the launcher's main session (every DoFn lives in an installed module)
    unless ``--save_main_session`` asks for it."""
    runner = load_runner_options(argv)
    if not any(a.split("=", 1)[0] in SESSION_FLAGS for a in argv):
        argv = [*argv, "--no_save_main_session"]
    parser = all_options_parser()
    _, unknown = parser.parse_known_args(argv)
    if unknown:
        flag = next((u for u in unknown if u.startswith("-")), unknown[0])
        hint = did_you_mean(flag, parser._option_string_actions)
        raise CliError(f"unrecognized arguments: {' '.join(unknown)}{hint}")
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
    elif runner and runner not in StandardOptions.ALL_KNOWN_RUNNERS:
        standard.runner = runner  # a runner Beam only finds by its dotted path (Dask)
    validate_run_options(options)
    apply_dataflow_defaults(options)  # harness threads per SDK process (job/dataflow.py)
    return options, khabar


def format_summary(summary: dict[str, Any], elapsed: float) -> str:
    c = summary["counts"]
    lines = [
        f"khabar run: {summary['files']} file(s), runner {summary['runner']}, {elapsed:.1f} s"
        if summary.get("mode") != "streaming"
        else f"khabar run --streaming: runner {summary['runner']}, {elapsed:.1f} s",
        *(
            [
                f"  files read        {c['files']:>8}   "
                f"({c.get('files_dead_lettered', 0)} of them dead-lettered whole)"
            ]
            if "files" in c and summary.get("mode") != "streaming"
            else []
        ),
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
    if cons["ok"] is None:
        lines.append(
            f"  conservation: not checked ({cons.get('why', 'no metrics')}); in the files: "
            f"{c['articles']} written + {c['duplicates']} duplicates + {c['dead_letters']} "
            "dead letters"
        )
    else:
        verdict = "OK" if cons["ok"] else "MISMATCH"
        lines.append(
            f"  conservation: {c['records_in']} in = {c['articles']} written + "
            f"{c['duplicates']} duplicates + {c['dead_letters']} dead letters  [{verdict}]"
        )
    if c.get("dates_left_empty"):
        lines.append(
            f"  dates left empty: {c['dates_left_empty']} (unreadable or implausible; "
            "the articles were kept)"
        )
    if c.get("cut_by_limit"):
        lines.append(
            f"  --limit: the first {c['records_in']} records; {c['cut_by_limit']} more were "
            "read and left out"
        )
    lines.append(f"  summary: {summary['outputs']['summary']}")
    return "\n".join(lines)


def format_dry_run(facts: dict[str, Any]) -> str:
    """What ``khabar run --dry_run True`` prints: the translated graph, nothing run."""
    stateful = facts["stateful_steps"]
    loose = [s["step"] for s in stateful if not s["deterministic_key"]]
    no_timer = [s["step"] for s in stateful if not s["timer"]]
    files = f", {facts['files']} input file(s)" if facts["mode"] == "batch" else ""
    lines = [
        f"khabar run: dry run ({facts['mode']}, runner {facts['runner']}{files}): the graph "
        "was built and translated; nothing ran and nothing was written",
        f"  transforms {facts['transforms']}, GroupByKeys {facts['group_by_keys']}, "
        f"stateful steps {len(stateful)}",
        "  stateful keys: "
        + ("all deterministic" if not loose else "NOT deterministic in " + ", ".join(loose)),
        "  stateful state cleared by timers: "
        + ("all" if not no_timer else "NO timer in " + ", ".join(no_timer)),
    ]
    workers = facts.get("dataflow_workers")
    if workers:
        processes = "one per vCPU" if workers["sdk_process_per_vcpu"] else "one per VM"
        threads = workers["harness_threads"] or "chosen by Dataflow"
        lines.append(f"  Dataflow SDK processes: {processes}; harness threads each: {threads}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- poll / stream


class StopSignals:
    """SIGTERM/SIGINT set ``stop``; the exit code says which one came (0 / 130)."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.received: int | None = None
        self.at: float | None = None
        self._old: dict[int, Any] = {}

    def install(self) -> StopSignals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None:  # a second signal: stop now
            raise KeyboardInterrupt
        self.received = signum
        self.at = time.monotonic()
        self.stop.set()

    def exit_code(self, ok: bool) -> int:
        if self.received == signal.SIGTERM:
            return 0
        if self.received == signal.SIGINT:
            return 130
        return 0 if ok else 1
