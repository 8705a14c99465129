"""Helpers the ``khabar`` commands share: quiet logs, ``khabar run`` argument checks,
the run summary printed at the end, and stop signals (SIGTERM/SIGINT) for the
long-running commands."""

from __future__ import annotations

import logging
import os
import re
import signal
import threading
import time
from typing import Any

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from khabar.pipeline.errors import CliError
from khabar.pipeline.job.dataflow import validate_run_options
from khabar.pipeline.job.options import KhabarOptions, all_options_parser


def quiet_logs() -> None:
    level = os.environ.get("KHABAR_LOG_LEVEL", "ERROR")
    for name in ("apache_beam", "trafilatura", "htmldate", "courlan", "google"):
        logging.getLogger(name).setLevel(level)


def parse_run_args(argv: list[str]):
    """Validate ``khabar run`` arguments; returns (PipelineOptions, KhabarOptions)."""
    parser = all_options_parser()
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
    validate_run_options(options)
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
    verdict = "OK" if cons["ok"] else "MISMATCH"
    lines.append(
        f"  conservation: {c['records_in']} in = {c['articles']} written + {c['duplicates']} "
        f"duplicates + {c['dead_letters']} dead letters  [{verdict}]"
    )
    if c.get("dates_left_empty"):
        lines.append(
            f"  dates left empty: {c['dates_left_empty']} (unreadable or implausible; "
            "the articles were kept)"
        )
    lines.append(f"  summary: {summary['outputs']['summary']}")
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
