"""``khabar``: run the pipeline, inspect its Avro output, benchmark.

Errors on the command line or in the inputs are one line on stderr and a non-zero exit,
never a traceback (set ``KHABAR_DEBUG=1`` to see the traceback of an unexpected error).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

USAGE = """usage: khabar <command> [options]

commands:
  run           run the pipeline (batch by default) and write Avro
  inspect       summarize Avro output: languages, sources, duplicates, dead letters
  bench         benchmark the pipeline against a plain-Python loop
  bench-langid  benchmark language identification against lingua, CLD2, langdetect

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
        "bench": cmd_bench,
        "bench-langid": cmd_bench_langid,
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
    if not khabar.input:
        raise CliError("--input is required (a file, directory or glob; local or gs://)")
    if not khabar.output:
        raise CliError("--output is required (a directory, local or gs://)")
    standard = options.view_as(StandardOptions)
    if not standard.runner:
        standard.runner = "DirectRunner"
    return options, khabar


def cmd_run(argv: list[str]) -> int:
    if "-h" in argv or "--help" in argv:
        print(_run_help(), end="")
        return 0
    options, khabar = parse_run_args(argv)
    from pipeline.run import prepare_output, run_batch
    from pipeline.sources import InputError, expand_inputs

    level = os.environ.get("KHABAR_LOG_LEVEL", "ERROR")
    for name in ("apache_beam", "trafilatura", "htmldate", "courlan"):
        logging.getLogger(name).setLevel(level)
    try:
        files = expand_inputs(khabar.input)
    except InputError as exc:
        raise CliError(str(exc)) from None
    prepare_output(khabar.output, overwrite=khabar.overwrite)
    started = time.time()
    summary = run_batch(options, files)
    print(format_summary(summary, time.time() - started))
    return 0 if summary["conservation"]["ok"] else 1


def format_summary(summary: dict[str, Any], elapsed: float) -> str:
    c = summary["counts"]
    lines = [
        f"khabar run: {summary['files']} file(s), runner {summary['runner']}, {elapsed:.1f} s",
        f"  records in        {c['records_in']:>8}",
        f"  articles written  {c['articles']:>8}   -> {summary['outputs']['articles']}",
        f"  duplicates        {c['duplicates']:>8}   "
        + (
            f"-> {summary['outputs']['duplicates']}"
            if summary["options"]["emit_duplicates"]
            else "(linked, not written; --emit_duplicates writes them)"
        ),
        f"  dead letters      {c['dead_letters']:>8}   -> {summary['outputs']['dead_letter']}",
        "  per stage (ok / dead letters):",
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
    args = parser.parse_args(argv)
    try:
        report = inspect_paths(args.paths, samples=args.samples)
    except InspectError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2, default=str))
    else:
        print(format_report(report))
    return 0


# --------------------------------------------------------------------------- benchmarks


def cmd_bench(argv: list[str]) -> int:
    from pipeline.bench import main as bench_main

    return bench_main(argv)


def cmd_bench_langid(argv: list[str]) -> int:
    from pipeline.bench_langid import main as bench_langid_main

    return bench_langid_main(argv)


if __name__ == "__main__":
    sys.exit(main())
