"""``khabar run``: the pipeline, batch (files) or streaming (a Pub/Sub subscription)."""

from __future__ import annotations

import argparse
import time

from apache_beam.options.pipeline_options import DirectOptions, StandardOptions

from khabar.pipeline.commands.common import format_summary, parse_run_args, quiet_logs
from khabar.pipeline.errors import CliError
from khabar.pipeline.job.options import KhabarOptions
from khabar.pipeline.job.progress import Progress
from khabar.pipeline.job.run import prepare_output, run_batch, run_streaming
from khabar.pipeline.stages.sources import InputError, expand_inputs


def _run_help() -> str:
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


def main(argv: list[str]) -> int:
    if "-h" in argv or "--help" in argv:
        print(_run_help(), end="")
        return 0
    options, khabar = parse_run_args(argv)
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
    started = time.time()
    with Progress(quiet=khabar.quiet) as progress:
        summary = run_batch(options, files, progress.channel)
    print(format_summary(summary, time.time() - started))
    return 0 if summary["conservation"]["ok"] else 1
