"""``khabar deploy``: Flex Template metadata, an offline check of run options, and the
launch that submits a job to Dataflow (the Flex Template entry, ``deploy/main.py``).
The checks and the metadata generator are in ``job/dataflow.py``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from apache_beam.options.pipeline_options import (
    DebugOptions,
    GoogleCloudOptions,
    StandardOptions,
    WorkerOptions,
)

from khabar.pipeline.commands.common import parse_run_args, quiet_logs
from khabar.pipeline.errors import CliError
from khabar.pipeline.job.dataflow import (
    construct,
    is_dataflow,
    launch_args,
    metadata_json,
    validate_run_options,
)
from khabar.pipeline.job.options import Parser
from khabar.pipeline.job.run import prepare_output
from khabar.pipeline.stages.sources import InputError, expand_inputs


def launch(argv: Sequence[str]) -> dict[str, Any]:
    """Check, build and submit the job without waiting; returns what happened.

    Batch inputs are expanded here (on the launcher) and baked into the job, as
    ``khabar run`` does. ``--update`` (replacing a running streaming job) leaves the
    output alone; otherwise the output is checked like ``khabar run`` checks it.
    """
    options, khabar = parse_run_args(launch_args(argv))
    validate_run_options(options)
    if not is_dataflow(options):
        raise CliError("khabar deploy launch submits to Dataflow; use `khabar run` locally")
    streaming = bool(options.view_as(StandardOptions).streaming)
    cloud = options.view_as(GoogleCloudOptions)
    files: list[str] = []
    if not streaming:
        try:
            files = expand_inputs(khabar.input)
        except InputError as exc:
            raise CliError(str(exc)) from None
    if not cloud.update:
        prepare_output(khabar.output, overwrite=khabar.overwrite)
    pipeline = construct(options, files)
    result = pipeline.run()
    job_id = result.job_id() if getattr(result, "has_job", False) else None
    return {
        "mode": "streaming" if streaming else "batch",
        "files": len(files),
        "job_id": job_id,
        "job_name": cloud.job_name,
        "template_location": cloud.template_location,
        "dataflow_job_file": options.view_as(DebugOptions).dataflow_job_file,
    }


# --------------------------------------------------------------------------- command

USAGE = """usage: khabar deploy <command> [options]

commands:
  metadata [--check FILE]  print the Flex Template metadata.json generated from the
                           pipeline options (--check: exit 1 if FILE differs from it)
  check [run options]      validate `khabar run` options offline, Dataflow ones included
  launch [run options]     build the job and submit it to Dataflow without waiting (the
                           Flex Template entry, deploy/main.py); with --template_location
                           the job description is written there instead

See deploy/README.md.
"""


def _cmd_metadata(argv: list[str]) -> int:
    parser = Parser(prog="khabar deploy metadata")
    parser.add_argument("--check", metavar="FILE", help="compare FILE with the generated one")
    args = parser.parse_args(argv)
    generated = metadata_json()
    if not args.check:
        sys.stdout.write(generated)
        return 0
    try:
        with open(args.check, encoding="utf-8") as handle:
            current = handle.read()
    except OSError as exc:
        raise CliError(f"cannot read {args.check}: {exc.strerror}") from None
    if current != generated:
        print(
            f"{args.check} is out of date: regenerate it with "
            f"`python -m khabar.pipeline.commands.deploy metadata > {args.check}`",
            file=sys.stderr,
        )
        return 1
    print(f"{args.check} matches the pipeline options")
    return 0


def _cmd_check(argv: list[str]) -> int:
    options, _ = parse_run_args(list(argv))
    validate_run_options(options)
    standard = options.view_as(StandardOptions)
    mode = "streaming" if standard.streaming else "batch"
    if not is_dataflow(options):
        print(f"khabar deploy check: ok ({mode}, {standard.runner})")
        return 0
    cloud = options.view_as(GoogleCloudOptions)
    image = options.view_as(WorkerOptions).sdk_container_image or "(staged packages)"
    print(
        f"khabar deploy check: ok ({mode}, DataflowRunner, project {cloud.project}, region "
        f"{cloud.region}, temp {cloud.temp_location}, worker image {image})"
    )
    return 0


def _cmd_launch(argv: list[str]) -> int:
    quiet_logs()
    outcome = launch(argv)
    where = outcome["template_location"] or outcome["dataflow_job_file"]
    if outcome["job_id"]:
        print(
            f"khabar deploy launch: submitted {outcome['mode']} job {outcome['job_id']} "
            f"({outcome['job_name'] or 'unnamed'}); follow it with `gcloud dataflow jobs "
            f"show {outcome['job_id']}`"
        )
    else:
        print(f"khabar deploy launch: wrote the {outcome['mode']} job description to {where}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``khabar deploy``; errors are one line on stderr (exit 2), like every khabar command."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0 if args else 2
    commands = {"metadata": _cmd_metadata, "check": _cmd_check, "launch": _cmd_launch}
    command, rest = args[0], args[1:]
    if command not in commands:
        print(
            f"khabar deploy: error: unknown command {command!r} (try: khabar deploy --help)",
            file=sys.stderr,
        )
        return 2
    try:
        return commands[command](rest)
    except CliError as exc:
        print(f"khabar deploy {command}: error: {exc}", file=sys.stderr)
        return exc.code


if __name__ == "__main__":
    sys.exit(main())
