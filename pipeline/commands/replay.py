"""``khabar replay DIR/dead_letter --output NEWDIR``: find the dead letters, run the replay
graph (``graph/replay.py``) and print its summary."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
import time
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from khabar.pipeline.commands.cat import record_name
from khabar.pipeline.commands.common import format_summary, quiet_logs
from khabar.pipeline.commands.inspect import _is_avro_file, _match
from khabar.pipeline.errors import CliError
from khabar.pipeline.graph.replay import build_replay
from khabar.pipeline.job.options import KhabarOptions, all_options_parser
from khabar.pipeline.job.progress import Progress, ProgressChannel
from khabar.pipeline.job.run import finish_summary, job_settings, prepare_output
from khabar.pipeline.job.runner import make_runner
from khabar.pipeline.stages.sinks import ARTICLES_DIR, DEAD_LETTER_DIR, join
from khabar.transforms import metrics as M

USAGE = """usage: khabar replay DEAD_LETTERS [DEAD_LETTERS ...] --output NEWDIR [options]

Process dead letters again (after a fix) through the same stages as `khabar run`,
keeping their provenance (input URI, position, format, attributes). Records that failed
while reading a whole file are split again; truncated ones (TooLarge) are read again from
their input. Writes a normal run directory with its own _SUMMARY.json.

DEAD_LETTERS: a run's dead_letter/ folder, a run directory, or dead-letter Avro files or
globs (local or gs://); give them before the options.

options:
  --output NEWDIR          where to write (must not be the run being replayed)
  --emit_duplicates        also write duplicates (linked to their survivor)
  --max_article_bytes N    size limit for records (raise it to replay TooLarge)
  --format FMT             format for records whose dead letter does not name one
  --overwrite              replace an earlier output in NEWDIR
  --num_shards N           Avro files per output kind
  --dedup_against RUN      copies of RUN's articles become duplicates (repeatable; default:
                           the run the dead letters are in; none: only among the replayed)
  --quiet                  no live progress line
  any Apache Beam option   (--runner, --direct_num_workers, ...), as for `khabar run`

example:
  khabar replay out/nightly/dead_letter --output out/replay --max_article_bytes 20000000
"""


# --------------------------------------------------------------------------- finding input


def dead_letter_files(paths: list[str]) -> list[str]:
    """Dead-letter Avro files under ``paths`` (a dead_letter folder, a run directory, or
    files and globs); checks that they hold dead letters."""
    files: list[str] = []
    for path in paths:
        if path.endswith(".avro") or any(ch in path for ch in "*?["):
            found = [p for p in _match(path) if _is_avro_file(p)]
        else:
            base = path.rstrip("/")
            found = [p for p in _match(join(base, DEAD_LETTER_DIR, "*.avro")) if _is_avro_file(p)]
            if not found:
                found = [p for p in _match(join(base, "*.avro")) if _is_avro_file(p)]
        if not found:
            raise CliError(f"no dead-letter Avro files at {path}")
        files += found
    files = sorted(set(files))
    for path in files:
        name = record_name(path)
        if name != "DeadLetter":
            raise CliError(f"{path} holds {name or 'unknown'} records, not dead letters")
    return files


def known_article_files(dead_files: list[str], against: list[str] | None) -> list[str]:
    """The articles to deduplicate the replay against: those of the runs in ``against``,
    or (``None``) of the run directories the dead-letter files sit in."""
    if against is None:
        parents = [f.rpartition("/")[0].rpartition("/") for f in dead_files]
        runs = {run for run, _, folder in parents if folder == DEAD_LETTER_DIR}
    else:
        runs = {a.rstrip("/") for a in against}
    files: list[str] = []
    for run in sorted(runs):
        found = [p for p in _match(join(run, ARTICLES_DIR, "*.avro")) if _is_avro_file(p)]
        if against is not None and not found:
            raise CliError(f"--dedup_against {run}: no articles/*.avro there")
        files += found
    return sorted(set(files))


def _norm(path: str) -> str:
    path = path.rstrip("/")
    return path if "://" in path else os.path.abspath(path)


# --------------------------------------------------------------------------- running


def run_replay(
    options: PipelineOptions,
    files: list[str],
    progress: ProgressChannel | None = None,
    known_files: list[str] | None = None,
) -> dict[str, Any]:
    """Run the replay job; writes and returns its summary (the ``_SUMMARY.json`` shape of
    ``khabar run`` plus a ``replay`` section)."""
    khabar = options.view_as(KhabarOptions)
    started = dt.datetime.now(dt.UTC)
    pipeline = beam.Pipeline(runner=make_runner(options), options=options)
    build_replay(pipeline, files, khabar.output, job_settings(khabar), progress, known_files)
    result = pipeline.run()
    result.wait_until_finish()

    def add_replay_section(summary: dict[str, Any]) -> None:
        rp = summary["metrics"].get(M.REPLAY, {})
        dead_in = rp.get(M.DEAD_LETTERS_IN, 0)
        expected_in = dead_in - rp.get(M.RESPLIT_DEAD_LETTERS, 0) + rp.get(M.RESPLIT_RECORDS, 0)
        records_in = summary["counts"]["records_in"]
        summary["replay"] = {
            "dead_letter_files": files,
            "dead_letters_in": dead_in,
            "resplit_dead_letters": rp.get(M.RESPLIT_DEAD_LETTERS, 0),
            "resplit_records": rp.get(M.RESPLIT_RECORDS, 0),
            "refetched": rp.get(M.REFETCHED, 0),
            "not_rebuilt": rp.get(M.NOT_REBUILT, 0),
            "by_original_error": {
                k[len(M.REPLAYED_FROM_PREFIX) :]: v
                for k, v in sorted(rp.items())
                if k.startswith(M.REPLAYED_FROM_PREFIX)
            },
            "records_in_ok": records_in == expected_in,
            "deduplicated_against": known_files or [],
            "duplicates_of_earlier_run": sum(
                v
                for k, v in summary["metrics"].get(M.DEDUP, {}).items()
                if k.startswith(M.DUPLICATES_EARLIER_PREFIX)
            ),
        }
        summary["conservation"]["ok"] = (
            summary["conservation"]["ok"] and records_in == expected_in
        )

    extra = {"files": len(files), "command": "replay"}
    return finish_summary(options, result, started, extra, amend=add_replay_section)


def format_replay(summary: dict[str, Any], elapsed: float) -> str:
    text = format_summary(summary, elapsed).replace("khabar run:", "khabar replay:", 1)
    rp = summary["replay"]
    origin = ", ".join(f"{k} {v}" for k, v in rp["by_original_error"].items()) or "none"
    lines = [
        text,
        f"  replayed {rp['dead_letters_in']} dead letter(s): {origin}",
    ]
    if rp["resplit_dead_letters"]:
        lines.append(
            f"  {rp['resplit_dead_letters']} whole input(s) or truncated record(s) rebuilt as "
            f"{rp['resplit_records']} record(s), {rp['refetched']} of them read again from "
            "their input"
        )
    if rp["deduplicated_against"]:
        lines.append(
            f"  {rp['duplicates_of_earlier_run']} duplicate(s) of articles already written "
            f"(checked against {len(rp['deduplicated_against'])} article file(s))"
        )
    if rp["not_rebuilt"]:
        lines.append(f"  {rp['not_rebuilt']} could not be rebuilt (still dead at stage read)")
    return "\n".join(lines)


def parse_replay_args(
    argv: list[str],
) -> tuple[list[str], PipelineOptions, bool, list[str] | None]:
    """(dead-letter paths, pipeline options, quiet, ``--dedup_against`` runs or None)."""
    paths: list[str] = []
    rest = list(argv)
    while rest and not rest[0].startswith("-"):
        paths.append(rest.pop(0))
    quiet = "--quiet" in rest
    rest = [a for a in rest if a != "--quiet"]
    against, rest = _pop_against(rest)
    stray = [a for a in rest if a and not a.startswith("-")]
    if not paths:
        raise CliError(
            "give the dead letters first: khabar replay DIR/dead_letter --output NEWDIR"
            + (f" (got {stray[0]!r} after an option)" if stray else "")
        )
    _, unknown = all_options_parser().parse_known_args(rest)
    if unknown:
        raise CliError(f"unrecognized arguments: {' '.join(unknown)}")
    options = PipelineOptions(rest)
    khabar = options.view_as(KhabarOptions)
    if khabar.input:
        raise CliError("replay reads the dead letters given before the options, not --input")
    if not khabar.output:
        raise CliError("--output is required (a new directory, local or gs://)")
    standard = options.view_as(StandardOptions)
    if not standard.runner:
        standard.runner = "DirectRunner"
    return paths, options, quiet, against


def _pop_against(args: list[str]) -> tuple[list[str] | None, list[str]]:
    """``--dedup_against RUN`` (repeatable; ``none`` turns it off) out of ``args``:
    (the runs, or None for the default, the runs the dead letters came from; the rest)."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False, exit_on_error=False)
    parser.add_argument("--dedup_against", "--dedup-against", action="append")
    try:
        known, rest = parser.parse_known_args(args)
    except argparse.ArgumentError as err:
        raise CliError("--dedup_against needs a run directory (or none)") from err
    if known.dedup_against is None:
        return None, rest
    return [run for run in known.dedup_against if run != "none"], rest


def main(argv: list[str]) -> int:
    quiet_logs()
    if not argv or "-h" in argv or "--help" in argv:
        print(USAGE, end="")
        return 0 if argv else 2
    paths, options, quiet, against = parse_replay_args(argv)
    khabar = options.view_as(KhabarOptions)
    level = os.environ.get("KHABAR_LOG_LEVEL", "ERROR")
    for name in ("apache_beam", "trafilatura", "htmldate", "courlan"):
        logging.getLogger(name).setLevel(level)
    files = dead_letter_files(paths)
    out = _norm(khabar.output)
    if any(_norm(f).startswith(out + "/") for f in files):
        raise CliError(
            f"--output {khabar.output} holds the dead letters being replayed; "
            "write the replay to a new directory"
        )
    known = known_article_files(files, against)
    if any(_norm(f).startswith(out + "/") for f in known):
        raise CliError(f"--dedup_against names --output {khabar.output}: write to a new directory")
    prepare_output(khabar.output, overwrite=khabar.overwrite)
    started = time.time()
    with Progress(quiet=quiet, label="khabar replay") as progress:
        summary = run_replay(options, files, progress.channel, known)
    print(format_replay(summary, time.time() - started))
    sys.stdout.flush()
    return 0 if summary["conservation"]["ok"] else 1
