"""Pick the runner that really runs a local job.

Beam's ``DirectRunner`` first tries the Prism runner, whose binary it downloads from
GitHub at run time (offline that fails after about a second and it falls back; online it
would silently switch engines). khabar does no downloads at run time, so for a batch job
on the DirectRunner it goes straight to what the DirectRunner falls back to for such a
graph: the FnApiRunner (fast, batch). Streaming, or any other ``--runner``, is left to
Beam unchanged (streaming locally needs the BundleBasedDirectRunner; see docs/BEAM-NOTES.md).
"""

from __future__ import annotations

import importlib
import json
import os
import time
from collections.abc import Sequence
from typing import Any

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.runners.runner import PipelineRunner

from khabar.pipeline.errors import CliError
from khabar.pipeline.job.gcs import install_emulator_client

#: ``KHABAR_STAGE_PROFILE=FILE``: a batch job on the FnApiRunner appends one JSON line per
#: bundle to FILE (its fused stage, when it started and its wall seconds); ``khabar bench``
#: reads it to show where 1 and 2 workers spend their time.
STAGE_PROFILE_ENV = "KHABAR_STAGE_PROFILE"

DIRECT_NAMES = {"directrunner", "direct", "switchingdirectrunner"}

#: Beam's runners by lower-case class name (and without the ``Runner`` suffix):
#: ``dataflow`` and ``DataflowRunner`` both name the Dataflow runner.
KNOWN_RUNNERS = {
    path.rsplit(".", 1)[-1].lower(): path
    for path in (
        *StandardOptions.ALL_KNOWN_RUNNERS,
        # Beam ships it but does not list it: ``--runner DaskRunner`` would be refused
        "apache_beam.runners.dask.dask_runner.DaskRunner",
    )
}


def runner_flag(argv: Sequence[str]) -> str | None:
    """The value of ``--runner`` in ``argv`` (``--runner X`` or ``--runner=X``), or None."""
    for i, arg in enumerate(argv):
        if arg == "--runner" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--runner="):
            return arg.split("=", 1)[1]
    return None


def runner_path(name: str) -> str:
    """The dotted path of the runner class ``name`` (a known name or a dotted path)."""
    key = name.lower()
    return KNOWN_RUNNERS.get(key) or KNOWN_RUNNERS.get(key + "runner") or name


def load_runner_options(argv: Sequence[str]) -> str | None:
    """Import the module of the runner ``argv`` names, so that its own pipeline options
    (``--dask_client_address``, ``--flink_master``, ...) are registered before the
    arguments are checked. Returns the runner's dotted path; a runner that cannot be
    imported is one line (which package it needs), not an unknown-flag error."""
    name = runner_flag(argv)
    if not name:
        return None
    path = runner_path(name)
    if "." not in path:
        known = ", ".join(sorted(p.rsplit(".", 1)[-1] for p in KNOWN_RUNNERS.values()))
        raise CliError(f"--runner {name!r} is not a Beam runner (known: {known})")
    module, _, cls = path.rpartition(".")
    try:
        loaded = importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - ImportError, or a broken optional dependency
        raise CliError(
            f"--runner {name} cannot be loaded here: {exc} (install the Beam extra it "
            "needs, for example apache-beam[dask] for DaskRunner)"
        ) from None
    if not hasattr(loaded, cls):
        raise CliError(f"--runner {name!r}: {module} has no {cls}")
    return path


def make_runner(options: PipelineOptions) -> PipelineRunner | None:
    """A runner instance for ``options``, or ``None`` to let Beam create it by name.

    Every job is made here, so this is also where GCS emulator mode reaches its workers."""
    install_emulator_client(options)
    standard = options.view_as(StandardOptions)
    name = (standard.runner or "DirectRunner").rsplit(".", 1)[-1].lower()
    if name not in DIRECT_NAMES:
        return None
    if standard.streaming:
        # Local streaming (Pub/Sub, TestStream, timers) only runs on the BundleBased one.
        from apache_beam.runners.direct.direct_runner import BundleBasedDirectRunner

        return BundleBasedDirectRunner()
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    provision = fn_runner.ExtendedProvisionInfo(
        beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)
    )
    runner = fn_runner.FnApiRunner(provision_info=provision)
    profile = os.environ.get(STAGE_PROFILE_ENV)
    if profile:
        profile_bundles(runner, profile)
    return runner


def profile_bundles(runner: Any, path: str) -> bool:
    """Time every bundle the FnApiRunner ``runner`` executes: one JSON line per bundle
    appended to ``path``: ``{"stage", "start", "seconds"}`` (``start``: Unix time).
    A bundle's time includes starting the worker processes (the first bundle) and moving
    its data to and from them; the time outside bundles is the runner's own (building the
    graph, the shuffles' buffers between stages). It wraps ``_execute_bundle``, Beam's
    private method (Beam is pinned to one minor version); returns False, timing nothing,
    when a Beam version lacks it."""
    inner = getattr(runner, "_execute_bundle", None)
    if inner is None:
        return False

    def timed(context: Any, bundle_manager: Any, bundle_input: Any) -> Any:
        at, started = time.time(), time.perf_counter()
        try:
            return inner(context, bundle_manager, bundle_input)
        finally:
            line = {
                "stage": bundle_manager.stage.name,
                "start": round(at, 4),
                "seconds": round(time.perf_counter() - started, 4),
            }
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(line) + "\n")

    runner._execute_bundle = timed
    return True
