"""Pick the runner that really runs a local job.

Beam's ``DirectRunner`` first tries the Prism runner, whose binary it downloads from
GitHub at run time (offline that fails after about a second and it falls back; online it
would silently switch engines). khabar does no downloads at run time, so for a batch job
on the DirectRunner it goes straight to what the DirectRunner falls back to for such a
graph: the FnApiRunner (fast, batch). Streaming, or any other ``--runner``, is left to
Beam unchanged (streaming locally needs the BundleBasedDirectRunner; see BEAM-NOTES.md).
"""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.runners.runner import PipelineRunner

from khabar.pipeline.job.gcs import install_emulator_client

DIRECT_NAMES = {"directrunner", "direct", "switchingdirectrunner"}


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
    return fn_runner.FnApiRunner(provision_info=provision)
