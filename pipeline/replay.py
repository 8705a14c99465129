"""``khabar replay DIR/dead_letter --output NEWDIR``: process dead letters again, after a fix.

Each dead letter goes back through the same graph as a normal run (``ProcessArticles``:
parse, clean, language, normalize, dedup) as the raw record it was, with its provenance:

* ``input_uri`` and ``position`` as recorded, so an article gets the same deterministic id
  it would have had in the first run, and a record that fails again keeps pointing at
  its source;
* the original format from ``attributes["format"]`` (sniffed from the bytes when a
  read-level failure happened before the format was known; ``--format`` sets it then),
  and every other attribute (feed title, Pub/Sub attributes) carried through;
* records that failed at the ``read`` stage were whole files (an empty file, malformed
  or refused XML): they are split again (a feed into its items, JSON Lines into lines);
* ``read``/``TooLarge`` dead letters hold only the first bytes of the input, so their
  input is read again from ``input_uri`` (one line for JSON Lines, else the whole file)
  under the new ``--max_article_bytes``; only if what is there now still starts with the
  stored bytes (else it stays dead as ``SourceChanged``; ``SourceUnavailable`` if gone);
* ``attributes["replay_count"]`` counts how often a record has been replayed.

The output is a normal run directory (``articles/``, ``dead_letter/``, ``duplicates/`` with
``--emit_duplicates``, ``_SUMMARY.json``), so ``khabar inspect``, ``report``, ``cat`` and a
later replay work on it. Deduplication runs among the replayed records and against the
articles the first run wrote (``--dedup_against``; by default the run directories the
dead letters sit in): a replayed record that another copy already brought into that run
(same content fingerprint, then same canonical URL) becomes a duplicate of it, in its
story cluster, so the two outputs together hold each article once (near-duplicate story
clusters are found among the replayed records only). Its conservation check: records in
(dead letters read, whole files counted as the records they split into) = articles
written + duplicates + dead letters still dead.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import time
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.pvalue import TaggedOutput

from pipeline.build import JobSettings, process_and_write
from pipeline.cli import CliError, format_summary
from pipeline.inspect import _is_avro_file, _match
from pipeline.progress import Progress, ProgressChannel
from pipeline.sinks import (
    ARTICLES_DIR,
    DEAD_LETTER_DIR,
    join,
)
from pipeline.sources import iter_lines_limited, open_input, read_limited
from transforms.common import ARTICLES, DEAD_LETTER, StageError, make_dead_letter
from transforms.parse import (
    DEFAULT_MAX_RECORD_BYTES,
    FEED_FORMATS,
    FORMATS,
    EmptyInput,
    RawRecord,
    TooLarge,
    detect_format,
    split_records,
)

NAMESPACE = "replay"
REPLAY_COUNT = "replay_count"

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


class SourceUnavailable(StageError):
    """A truncated dead letter's input can no longer be read."""


class SourceChanged(StageError):
    """A truncated dead letter's input no longer starts with the stored bytes."""


# --------------------------------------------------------------------------- dead letter -> raw


def _replay_count(attrs: dict[str, str]) -> str:
    try:
        previous = int(attrs.get(REPLAY_COUNT, "0"))
    except ValueError:
        previous = 0
    return str(previous + 1)


def _refetch(uri: str, fmt: str | None, position: int | None, limit: int) -> bytes:
    """The input of a truncated read-stage dead letter, read again under ``limit``."""
    try:
        handle = open_input(uri)  # decompressed a bounded chunk at a time
    except Exception as exc:  # noqa: BLE001 - any storage error: the input is gone
        raise SourceUnavailable(f"cannot read {uri} again: {type(exc).__name__}: {exc}") from None
    with handle:
        if fmt == "jsonl" and position is not None:
            for lineno, line, truncated in iter_lines_limited(handle, limit):
                if lineno == position:
                    if truncated:
                        raise TooLarge(
                            f"JSON line above the limit of {limit} bytes (truncated here)"
                        )
                    return line
            raise SourceUnavailable(f"{uri} has no line {position} any more")
        data, more = read_limited(handle, limit)
    if more:
        raise TooLarge(f"file above the limit of {limit} bytes; raw_payload holds the first part")
    return data


def raw_records_for(
    dead: dict[str, Any],
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    format_override: str | None = None,
) -> tuple[list[RawRecord], str]:
    """The raw record(s) to process again for one dead letter, and how they were made
    (``record``, ``resplit`` or ``refetched``). Raises a ``StageError`` when the record
    cannot even be rebuilt (it then stays a dead letter at stage ``read``)."""
    attrs = {str(k): str(v) for k, v in (dead.get("attributes") or {}).items()}
    fmt = attrs.pop("format", None) or format_override
    attrs[REPLAY_COUNT] = _replay_count(attrs)
    uri: str = dead["input_uri"]
    position: int | None = dead.get("position")
    payload = bytes(dead["raw_payload"])
    how = "record"
    if dead["stage"] == "read":
        if dead["error_type"] == "TooLarge":
            fresh = _refetch(uri, fmt, position, max_record_bytes)
            if not fresh.startswith(payload):
                raise SourceChanged(
                    f"{uri} changed since the failure (it no longer starts with the stored "
                    f"{len(payload)} bytes); not replayed"
                )
            payload, how = fresh, "refetched"
            if fmt == "jsonl" and position is not None:
                return [RawRecord(uri, position, "jsonl", payload, attrs)], how
        fmt = detect_format(uri, payload[:4096], fmt)
        records = list(split_records(uri, payload, fmt, max_record_bytes))
        if not records:
            raise EmptyInput("feed without items" if fmt in FEED_FORMATS else "no records")
        for record in records:
            record.attributes = {**attrs, **record.attributes}
        return records, ("resplit" if how == "record" else how)
    fmt = detect_format(uri, payload[:4096], fmt)
    if fmt in FEED_FORMATS and fmt not in FORMATS:  # a whole feed failed past the read stage
        records = list(split_records(uri, payload, fmt, max_record_bytes))
        for record in records:
            record.attributes = {**attrs, **record.attributes}
        return records, "resplit"
    return [RawRecord(uri, position or 0, fmt, payload, attrs)], how


class ExpandDeadLetters(beam.DoFn):
    """Dead letter -> raw records (main output); one that cannot be rebuilt -> a dead
    letter again (stage ``read``, the stored bytes kept, ``replay_count`` raised)."""

    def __init__(self, max_record_bytes: int, format_override: str | None) -> None:
        self.max_record_bytes = max_record_bytes
        self.format_override = format_override
        self.records_in = Metrics.counter("khabar", "records_in")
        self.read_failed = Metrics.counter("stage.read", "dead_letter")
        self.dead_in = Metrics.counter(NAMESPACE, "dead_letters_in")
        self.resplit = Metrics.counter(NAMESPACE, "resplit_dead_letters")
        self.resplit_records = Metrics.counter(NAMESPACE, "resplit_records")
        self.refetched = Metrics.counter(NAMESPACE, "refetched")
        self.not_rebuilt = Metrics.counter(NAMESPACE, "not_rebuilt")

    def process(self, dead: dict[str, Any]):
        self.dead_in.inc()
        Metrics.counter(NAMESPACE, f"from.{dead['stage']}/{dead['error_type']}").inc()
        try:
            records, how = raw_records_for(dead, self.max_record_bytes, self.format_override)
        except Exception as exc:  # noqa: BLE001 - one bad dead letter never stops a replay
            self.records_in.inc()
            self.read_failed.inc()
            self.not_rebuilt.inc()
            attrs = {str(k): str(v) for k, v in (dead.get("attributes") or {}).items()}
            attrs[REPLAY_COUNT] = _replay_count(attrs)
            yield TaggedOutput(
                DEAD_LETTER,
                make_dead_letter(
                    "read",
                    exc,
                    raw_payload=bytes(dead["raw_payload"]),
                    input_uri=dead["input_uri"],
                    position=dead.get("position"),
                    attributes=attrs,
                ),
            )
            return
        if how == "refetched":
            self.refetched.inc()
        if len(records) != 1 or how != "record":
            self.resplit.inc()
            self.resplit_records.inc(len(records))
        for record in records:
            self.records_in.inc()
            yield record.to_dict()


def build_replay(
    p: beam.Pipeline,
    files: list[str],
    output: str,
    settings: JobSettings | None = None,
    progress: ProgressChannel | None = None,
    known_files: list[str] | None = None,
) -> None:
    """Dead-letter Avro ``files`` -> the same stages and sinks as ``build_batch``;
    replayed copies of the articles in ``known_files`` (an earlier run's) are duplicates."""
    from apache_beam.io.avroio import ReadAllFromAvro

    settings = settings or JobSettings()
    known = None
    if known_files:
        known = (
            p
            | "KnownFiles" >> beam.Create(known_files)
            | "ReadKnownArticles" >> ReadAllFromAvro()
        )
    expanded = (
        p
        | "DeadLetterFiles" >> beam.Create(files)
        | "ReadDeadLetters" >> ReadAllFromAvro()
        | "Expand"
        >> beam.ParDo(ExpandDeadLetters(settings.max_record_bytes, settings.format)).with_outputs(
            DEAD_LETTER, main=ARTICLES
        )
    )
    process_and_write(
        expanded[ARTICLES], expanded[DEAD_LETTER], output, settings, progress, known
    )


# --------------------------------------------------------------------------- finding input


def dead_letter_files(paths: list[str]) -> list[str]:
    """Dead-letter Avro files under ``paths`` (a dead_letter folder, a run directory, or
    files and globs); checks that they hold dead letters."""
    from pipeline.cat import record_name

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
    from pipeline.options import KhabarOptions
    from pipeline.run import finish_summary, job_settings
    from pipeline.runner import make_runner

    khabar = options.view_as(KhabarOptions)
    started = dt.datetime.now(dt.UTC)
    pipeline = beam.Pipeline(runner=make_runner(options), options=options)
    build_replay(pipeline, files, khabar.output, job_settings(khabar), progress, known_files)
    result = pipeline.run()
    result.wait_until_finish()

    def add_replay_section(summary: dict[str, Any]) -> None:
        rp = summary["metrics"].get(NAMESPACE, {})
        dead_in = rp.get("dead_letters_in", 0)
        expected_in = dead_in - rp.get("resplit_dead_letters", 0) + rp.get("resplit_records", 0)
        records_in = summary["counts"]["records_in"]
        summary["replay"] = {
            "dead_letter_files": files,
            "dead_letters_in": dead_in,
            "resplit_dead_letters": rp.get("resplit_dead_letters", 0),
            "resplit_records": rp.get("resplit_records", 0),
            "refetched": rp.get("refetched", 0),
            "not_rebuilt": rp.get("not_rebuilt", 0),
            "by_original_error": {
                k[len("from.") :]: v for k, v in sorted(rp.items()) if k.startswith("from.")
            },
            "records_in_ok": records_in == expected_in,
            "deduplicated_against": known_files or [],
            "duplicates_of_earlier_run": sum(
                v
                for k, v in summary["metrics"].get("dedup", {}).items()
                if k.startswith("duplicates_earlier_")
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
    from apache_beam.options.pipeline_options import StandardOptions

    from pipeline.cli import _all_options_parser
    from pipeline.options import KhabarOptions

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
    _, unknown = _all_options_parser().parse_known_args(rest)
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
    import argparse

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
    if not argv or "-h" in argv or "--help" in argv:
        print(USAGE, end="")
        return 0 if argv else 2
    from pipeline.options import KhabarOptions
    from pipeline.run import prepare_output

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
