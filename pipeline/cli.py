"""``khabar``: the dispatcher. It only picks the command and turns errors into one line.

Errors on the command line or in the inputs are one line on stderr and a non-zero exit,
never a traceback (set ``KHABAR_DEBUG=1`` to see the traceback of an unexpected error).
Each command lives in its own module under ``commands/`` (or ``bench/``), imported only
when it is asked for, so ``khabar --help`` does not load Beam.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Sequence

from khabar.pipeline.errors import CliError, did_you_mean
from khabar.pipeline.job.gcs import use_emulator_if_configured
from khabar.pipeline.job.threads import pin_numeric_threads
from khabar.pipeline.textsafe import SafeStream
from khabar.schemas.version import PIPELINE_VERSION

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
  bench-scale   memory and time per article as a batch grows (2k, 16k, 64k articles)

khabar <command> --help shows the options of a command.
"""


COMMANDS = {
    "run": "khabar.pipeline.commands.run",
    "inspect": "khabar.pipeline.commands.inspect",
    "report": "khabar.pipeline.commands.report",
    "replay": "khabar.pipeline.commands.replay",
    "cat": "khabar.pipeline.commands.cat",
    "poll": "khabar.pipeline.commands.poll",
    "deploy": "khabar.pipeline.commands.deploy",
    "stream": "khabar.pipeline.commands.stream",
    "bench": "khabar.pipeline.bench.pipeline",
    "bench-langid": "khabar.pipeline.bench.langid",
    "bench-dedup": "khabar.pipeline.bench.dedup",
    "bench-ner": "khabar.pipeline.bench.ner",
    "bench-normalize": "khabar.pipeline.bench.normalize",
    "bench-scale": "khabar.pipeline.bench.scale",
}


def command_main(command: str) -> Callable[[list[str]], int]:
    """The ``main(argv)`` of a command's module (imported on demand)."""
    return importlib.import_module(COMMANDS[command]).main


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0 if args else 2
    if args[0] in ("--version", "-V", "version"):

        print(f"khabar {PIPELINE_VERSION}")
        return 0
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        hint = did_you_mean(command, COMMANDS)
        print(
            f"khabar: error: unknown command {command!r}{hint} (try: khabar --help)",
            file=sys.stderr,
        )
        return 2
    # every printout (reports, records, file names, errors) shows control characters
    # and bidi overrides from the data as visible escapes
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = SafeStream(sys.stdout), SafeStream(sys.stderr)
    try:
        return _dispatch(command, rest)
    finally:
        sys.stdout, sys.stderr = saved


def _dispatch(command: str, rest: list[str]) -> int:
    try:
        # before any command loads numpy: see pipeline/job/threads.py
        pin_numeric_threads()
        use_emulator_if_configured()
        return command_main(command)(rest)
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


if __name__ == "__main__":
    sys.exit(main())
