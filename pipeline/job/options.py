"""khabar's pipeline options: every knob defined once, for the CLI and for Dataflow.

``KhabarOptions`` is a Beam ``PipelineOptions`` subclass, so ``khabar run`` accepts any
Beam option beside these (``--runner``, ``--direct_num_workers``, ``--project``, ...) and a
Dataflow template can read the same names.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from typing import Any

from apache_beam.options.pipeline_options import PipelineOptions

from khabar.pipeline.errors import CliError, did_you_mean
from khabar.transforms.common import DEFAULT_MAX_ITEMS, DEFAULT_MAX_RECORD_BYTES

FORMAT_CHOICES = ("auto", "text", "jsonl", "html", "feed", "rss", "atom")


def number_in(
    kind: Callable[[str], float],
    lo: float,
    hi: float = math.inf,
    *,
    lo_open: bool = False,
    what: str,
) -> Callable[[str], Any]:
    """An argparse ``type``: ``kind`` (int or float) of the value, within [lo, hi] ((lo, hi]
    with ``lo_open``); otherwise a one-line error that says ``what`` was expected."""

    def parse(value: str) -> Any:
        try:
            number = kind(value)
        except ValueError:
            noun = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {noun}, got {value!r}") from None
        if not ((lo < number) if lo_open else (lo <= number)) or number > hi:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return number

    return parse


positive_int = number_in(int, 1, what="a positive number")
fraction = number_in(float, 0.0, 1.0, lo_open=True, what="a number in (0, 1]")
_rate = number_in(float, 0.0, 1.0, what="a fraction in [0, 1]")


class KhabarOptions(PipelineOptions):
    """Options of the khabar pipeline (shown by ``khabar run --help``)."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("khabar")
        group.add_argument(
            "--input",
            action="append",
            default=None,
            help="Input file, directory or glob, local or gs:// (repeatable). Directories are "
            "walked for .txt .jsonl .json .ndjson .html .htm .rss .atom .xml (and .gz of them).",
        )
        group.add_argument(
            "--output",
            default=None,
            help="Output directory, local or gs://: gets articles/, dead_letter/, "
            "duplicates/ (with --emit_duplicates) and _SUMMARY.json.",
        )
        group.add_argument(
            "--format",
            dest="input_format",
            default="auto",
            choices=FORMAT_CHOICES,
            help="Input format; 'auto' goes by extension, then by sniffing the content.",
        )
        group.add_argument(
            "--emit_duplicates",
            "--emit-duplicates",
            dest="emit_duplicates",
            action="store_true",
            default=False,
            help="Also write duplicates (linked to their survivor) to DIR/duplicates/.",
        )
        group.add_argument(
            "--max_article_bytes",
            "--max-article-bytes",
            dest="max_article_bytes",
            type=positive_int,
            default=DEFAULT_MAX_RECORD_BYTES,
            help="Largest raw record (article, JSON line, feed file) accepted; larger ones "
            f"become dead letters (TooLarge). Default {DEFAULT_MAX_RECORD_BYTES}.",
        )
        group.add_argument(
            "--max_feed_bytes",
            "--max-feed-bytes",
            dest="max_feed_bytes",
            type=positive_int,
            default=None,
            help="Largest feed file accepted (a container: each of its items is still held "
            "to --max_article_bytes). Default 10 x --max_article_bytes.",
        )
        group.add_argument(
            "--max_records_per_file",
            "--max-records-per-file",
            dest="max_records_per_file",
            type=positive_int,
            default=DEFAULT_MAX_ITEMS,
            help="Most records read from one file (JSON lines, feed items); the rest become "
            f"one dead letter (RecordCap). Default {DEFAULT_MAX_ITEMS}.",
        )
        group.add_argument(
            "--overwrite",
            action="store_true",
            default=False,
            help="Replace the outputs of an earlier run in --output (otherwise khabar refuses "
            "to write into a directory that already holds output).",
        )
        near = parser.add_argument_group(
            "khabar near-duplicate story clusters (batch and streaming)"
        )
        near.add_argument(
            "--near_dedup",
            "--near-dedup",
            dest="near_dedup",
            choices=("on", "off"),
            default="on",
            help="Near-duplicate detection and story clusters (MinHash LSH on word shingles, "
            "every candidate verified). Default on.",
        )
        near.add_argument(
            "--near_threshold",
            "--near-threshold",
            dest="near_threshold",
            type=fraction,
            default=0.4,
            help="Jaccard similarity of word shingles above which two articles are the same "
            "story (LSH bands are chosen for it). Default 0.4 (from khabar bench-dedup).",
        )
        near.add_argument(
            "--near_containment",
            "--near-containment",
            dest="near_containment",
            type=fraction,
            default=0.8,
            help="Share of the shorter article's shingles found in the longer one above which "
            "it is a cut copy of the same story. Default 0.8.",
        )
        near.add_argument(
            "--near_ngram",
            "--near-ngram",
            dest="near_ngram",
            type=positive_int,
            default=3,
            help="Words per shingle. Default 3.",
        )
        near.add_argument(
            "--near_num_perm",
            "--near-num-perm",
            dest="near_num_perm",
            type=positive_int,
            default=128,
            help="MinHash permutations (signature length). Default 128.",
        )
        group.add_argument(
            "--entities_model",
            "--entities-model",
            dest="entities_model",
            default=None,
            help="Directory of entity models to use instead of the shipped ones (same format "
            "as transforms/models/ner; train your own with python -m khabar.pipeline.train.ner "
            "--data DIR). The shipped Persian models are trained on ARMAN and PEYMA, which "
            "are licensed for RESEARCH USE ONLY: for commercial use, plug in your own.",
        )
        group.add_argument(
            "--max_dead_letter_rate",
            "--max-dead-letter-rate",
            dest="max_dead_letter_rate",
            type=_rate,
            default=None,
            help="Exit with status 3 when dead letters / records in is above this fraction "
            "(0 to 1; e.g. 0.05). Without it, a run exits 3 only when it wrote no article and "
            "had dead letters.",
        )
        group.add_argument(
            "--limit",
            type=positive_int,
            default=None,
            help="Read only the first N records (in input order) and stop: to try a large "
            "input quickly. The summary says the input was cut.",
        )
        group.add_argument(
            "--log_format",
            "--log-format",
            dest="log_format",
            choices=("text", "json"),
            default="text",
            help="Progress and log lines on stderr as plain text (default) or one JSON object "
            "a line (for log collectors); with json the final summary on stdout is JSON too. "
            "KHABAR_LOG_LEVEL (default ERROR) sets the level of library logs.",
        )
        group.add_argument(
            "--progress_seconds",
            "--progress-seconds",
            dest="progress_seconds",
            type=float,
            default=10.0,
            help="Seconds between progress lines when stderr is not a terminal (a log file, "
            "cron, nohup). Default 10; 0 turns them off.",
        )
        group.add_argument(
            "--quiet",
            action="store_true",
            default=False,
            help="No live progress line (it is only drawn on a terminal anyway).",
        )
        group.add_argument(
            "--num_shards",
            "--num-shards",
            dest="num_shards",
            type=int,
            default=0,
            help="Avro files per output kind in batch (0: let the runner decide).",
        )
        stream = parser.add_argument_group("khabar streaming (with --streaming)")
        stream.add_argument(
            "--subscription",
            default=None,
            help="Pub/Sub subscription to read, projects/P/subscriptions/S (streaming).",
        )
        stream.add_argument(
            "--window_seconds",
            "--window-seconds",
            dest="window_seconds",
            type=positive_int,
            default=60,
            help="Fixed window of the streaming output files, on arrival time, in seconds. "
            "Default 60.",
        )
        stream.add_argument(
            "--allowed_lateness",
            "--allowed-lateness",
            dest="allowed_lateness",
            type=positive_int,
            default=3600,
            help="Seconds a record behind the watermark (late) still goes to its window: "
            "late records are gathered for 10 s into one more file per window and counted "
            "(windows.late_records); in normal operation there are none. Default 3600.",
        )
        stream.add_argument(
            "--dedup_ttl",
            "--dedup-ttl",
            dest="dedup_ttl",
            type=positive_int,
            default=7 * 24 * 3600,
            help="Seconds the streaming dedup state remembers an article after its last "
            "copy. Default 604800 (7 days).",
        )
        stream.add_argument(
            "--max_runtime",
            "--max-runtime",
            dest="max_runtime",
            type=float,
            default=None,
            help="Stop a local streaming job after this many seconds, with every window's "
            "files complete (default: run until Ctrl-C).",
        )
        stream.add_argument(
            "--drain_seconds",
            "--drain-seconds",
            "--drain_timeout",
            "--drain-timeout",
            dest="drain_seconds",
            type=float,
            default=None,
            help="Local streaming: longest time from --max_runtime, SIGTERM or Ctrl-C to the "
            "exit, spent letting the open windows close and every published record land "
            "in a closed file; default window + 15 s for khabar stream (window + 60 s for "
            "khabar run --streaming, which has no heartbeat). What has not landed by then "
            "stays in khabar stream's spool and is published again on its next start.",
        )


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        match = re.match(r"unrecognized arguments: (\S+)", message)
        if match:
            message += did_you_mean(match.group(1), self._option_string_actions)
        raise CliError(message)


def all_options_parser() -> argparse.ArgumentParser:
    """A parser that knows every registered Beam option (to reject unknown flags)."""
    parser = Parser(prog="khabar run", add_help=False, allow_abbrev=False)
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
