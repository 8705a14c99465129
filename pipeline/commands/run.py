"""``khabar run``: the pipeline, batch (files) or streaming (a Pub/Sub subscription)."""

from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import hashlib
import json
import os
import sys
import tempfile
import threading
import time
from typing import Any

from apache_beam.options.pipeline_options import DirectOptions, StandardOptions

from khabar.pipeline.commands.common import (
    format_dry_run,
    format_summary,
    parse_run_args,
    quiet_logs,
)
from khabar.pipeline.errors import EXIT_DATA_CHECK, CliError
from khabar.pipeline.job.interrupt import Interruptible
from khabar.pipeline.job.options import KhabarOptions
from khabar.pipeline.job.progress import Progress
from khabar.pipeline.job.run import (
    interrupted_summary,
    is_dry_run,
    prepare_output,
    remove_temp_files,
    run_batch,
    run_streaming,
)
from khabar.pipeline.stages.model_files import check_model_dir
from khabar.pipeline.stages.sources import InputError, expand_inputs
from khabar.transforms.entities import ModelError


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


def data_checks(summary: dict[str, Any], max_dead_letter_rate: float | None) -> list[str]:
    """Why a finished run should exit non-zero although it ran (empty list: it should not)."""
    c = summary["counts"]
    failures = []
    if summary["conservation"]["ok"] is False:
        failures.append("conservation mismatch: records in != written + duplicates + dead")
    if c["articles"] == 0 and c["dead_letters"] > 0:
        failures.append(f"no article written; all {c['dead_letters']} record(s) dead letters")
    elif max_dead_letter_rate is not None and c["records_in"]:
        rate = c["dead_letters"] / c["records_in"]
        if rate > max_dead_letter_rate:
            failures.append(
                f"dead-letter rate {rate:.1%} ({c['dead_letters']} of {c['records_in']}) is "
                f"above --max_dead_letter_rate {max_dead_letter_rate:g}"
            )
    return failures


def _exit_status(summary: dict[str, Any], failures: list[str]) -> int:
    if not failures:
        return 0
    return 1 if summary["conservation"]["ok"] is False else EXIT_DATA_CHECK


def main(argv: list[str]) -> int:
    if "-h" in argv or "--help" in argv:
        print(_run_help(), end="")
        return 0
    options, khabar = parse_run_args(argv)
    quiet_logs(khabar.log_format)
    try:
        check_model_dir(khabar.entities_model)
    except ModelError as exc:
        raise CliError(str(exc)) from None
    if is_dry_run(options):
        return _dry_run(options, khabar)
    if options.view_as(StandardOptions).streaming:
        prepare_output(khabar.output, overwrite=khabar.overwrite)
        started = time.time()
        summary = run_streaming(options)
        if "counts" not in summary:
            print(f"khabar run: streaming job submitted: {summary}")
            return 0
        print(format_summary(summary, time.time() - started))
        return 0 if summary["conservation"]["ok"] else 1
    with stdin_input(khabar) as spool:
        files = list_inputs(khabar.input)
        prepare_output(khabar.output, overwrite=khabar.overwrite)
        return _run_batch_job(options, khabar, files, spool)


#: How long listing remote input (``gs://``) may take on the launching machine before
#: the run gives up with one line (``KHABAR_LIST_TIMEOUT`` seconds). Without network or
#: credentials, Beam's GCS client retries for about 120 s before it fails.
LIST_TIMEOUT = 30.0


def list_inputs(patterns: list[str]) -> list[str]:
    """The input files, listed here (the batch graph names its files). Remote patterns
    are listed under :data:`LIST_TIMEOUT`; every failure is one line."""
    remote = [p for p in patterns if "://" in p]
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["files"] = expand_inputs(patterns)
        except InputError as exc:
            outcome["error"] = str(exc)
        except Exception as exc:  # noqa: BLE001 - one line, whatever the storage said
            outcome["error"] = f"cannot list {' '.join(remote or patterns)}: {exc}"

    if not remote:
        work()
    else:
        limit = float(os.environ.get("KHABAR_LIST_TIMEOUT", LIST_TIMEOUT))
        thread = threading.Thread(target=work, name="khabar-list-inputs", daemon=True)
        thread.start()
        thread.join(limit)
        if thread.is_alive():
            raise CliError(
                f"listing {' '.join(remote)} took more than {limit:g} s (no network or no "
                "credentials here?); KHABAR_LIST_TIMEOUT sets the limit"
            )
    if "error" in outcome:
        raise CliError(outcome["error"])
    return outcome["files"]


def _dry_run(options: Any, khabar: Any) -> int:
    """``--dry_run True``: build and translate the job, print what it is made of, run
    nothing and write nothing (the output directory is not even looked at)."""
    if options.view_as(StandardOptions).streaming:
        facts = run_streaming(options)
    else:
        facts = run_batch(options, list_inputs(khabar.input))
    print(format_dry_run(facts))
    return 0


def _run_batch_job(options: Any, khabar: Any, files: list[str], spool: stdin_input) -> int:
    started_at = dt.datetime.now(dt.UTC)
    started = time.time()
    progress = Progress(
        quiet=khabar.quiet,
        log_format=khabar.log_format,
        log_seconds=khabar.progress_seconds,
        input_files=files,
        limit=khabar.limit,
    )
    finishing = threading.Lock()

    def finish_interrupted() -> None:
        """Temp files removed, the output marked, one line. Runs once: in the main thread
        once the run unwound, or in the guard's watchdog if it never does."""
        if not finishing.acquire(blocking=False):
            return
        seen = progress.counts() if progress.enabled else None
        progress.stop()
        remove_temp_files(khabar.output)
        spool.release()  # the process ends without unwinding (os._exit)
        summary = interrupted_summary(options, started_at, len(files), guard.name, seen)
        finalized = summary["finalized_files"]
        line = (
            f"khabar run: interrupted by {guard.name} after {time.time() - started:.1f} s; "
            + (f"{finalized} Avro file(s) finalized, " if finalized else "nothing finalized, ")
            + f"{khabar.output} marked interrupted (_SUMMARY.json); rerun with --overwrite"
        )
        _log_line(khabar.log_format, line, event="interrupted", signal=guard.name)

    with Interruptible(on_give_up=finish_interrupted) as guard:
        try:
            with progress:
                summary = run_batch(options, files, progress.channel)
            if guard.signum is not None:  # the interrupt was swallowed on its way up
                raise KeyboardInterrupt(guard.name)
        except BaseException:
            if guard.signum is None:
                raise
            for _ in range(5):  # a re-raised interrupt may race the first call
                try:
                    guard.unwound()
                    break
                except KeyboardInterrupt:
                    continue
            finish_interrupted()
            # Worker threads of the runner may still hold the interpreter open: end here.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(guard.exit_code)
    if spool.path:
        summary["input_stdin"] = True
    failures = data_checks(summary, khabar.max_dead_letter_rate)
    if khabar.log_format == "json":
        print(json.dumps(_json_result(summary, failures), ensure_ascii=False))
    else:
        print(format_summary(summary, time.time() - started))
        for failure in failures:
            print(f"khabar run: check failed: {failure}", file=sys.stderr)
    return _exit_status(summary, failures)


def _json_result(summary: dict[str, Any], failures: list[str]) -> dict[str, Any]:
    return {
        "event": "finished",
        "status": summary.get("status"),
        "counts": summary["counts"],
        "conservation_ok": summary["conservation"]["ok"],
        "runner": summary.get("runner"),
        "seconds": summary.get("seconds"),
        "checks_failed": failures,
        "summary": summary["outputs"]["summary"],
    }


def _log_line(log_format: str, text: str, **fields: Any) -> None:
    """One line on stderr: the text, or a JSON object with it (``--log-format json``)."""
    if log_format == "json":
        record = {"ts": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **fields}
        record["message"] = text
        text = json.dumps(record, ensure_ascii=False)
    sys.stderr.write(text + "\n")  # one write: never split by another thread's line
    sys.stderr.flush()


class stdin_input:  # noqa: N801 - used as a context manager, like open()
    """``--input -``: standard input spooled to a file named by its content's digest (so
    the same bytes give the same ids on every run), removed afterwards.

    Two runs given the same bytes at once share that file. Each holds a shared ``flock``
    on ``<file>.lock`` from before it puts the file in place until it ends; the run that
    ends last (the one that can turn its lock exclusive) removes the file, so no run
    removes it under another. The empty lock file stays (removing it would race a run
    that has opened it but not locked it yet)."""

    def __init__(self, khabar: Any) -> None:
        self.khabar = khabar
        self.path: str | None = None
        self._lock: int | None = None

    def __enter__(self) -> stdin_input:
        inputs = list(self.khabar.input or [])
        if "-" not in inputs:
            return self
        if inputs.count("-") > 1:
            raise CliError("--input - (standard input) can be given once")

        if sys.stdin is None or sys.stdin.isatty():
            raise CliError("--input - reads standard input, but it is a terminal; pipe data in")
        digest = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(prefix="khabar-stdin-")
        with os.fdopen(fd, "wb") as handle:
            for chunk in iter(lambda: sys.stdin.buffer.read(1 << 20), b""):
                digest.update(chunk)
                handle.write(chunk)
        path = os.path.join(tempfile.gettempdir(), f"khabar-stdin-{digest.hexdigest()[:16]}")
        self._lock = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock, fcntl.LOCK_SH)  # waits while a finishing run removes it
        os.replace(tmp, path)
        self.path = path
        self.khabar.input = [path if item == "-" else item for item in inputs]
        return self

    def release(self) -> None:
        """Remove the spooled file unless another run still holds it; idempotent."""
        lock, self._lock = self._lock, None
        if lock is None:
            return
        try:
            try:
                # Not atomic on Linux (the shared lock goes first), which is fine here: a
                # run that fails to turn it exclusive is ending and no longer needs it.
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return  # another run still reads the file; it removes it when it ends
            if self.path:
                try:
                    os.remove(self.path)
                except OSError:
                    pass
        finally:
            os.close(lock)

    def __exit__(self, *exc_info: object) -> None:
        self.release()


