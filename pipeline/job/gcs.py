"""GCS emulator mode, in one place.

With ``STORAGE_EMULATOR_HOST`` set (a GCS-protocol server such as gcp-storage-emulator on
loopback), google-cloud-storage talks to it at once, but Beam's GCS filesystem first spends
about 26 s hunting for default credentials (metadata server retries) before it falls back
to an anonymous client. Emulator mode replaces Beam's client factory with one that returns
an anonymous client straight away.

This module is applied from ``pipeline/__init__.py``, which every khabar module imports
(the stage DoFns import ``khabar.transforms.common`` -> ``pipeline.version``), so the patch is
live in every process that touches GCS, worker processes included; they inherit the
environment variable from the launcher. Without the variable nothing changes: real GCS
uses real credentials.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apache_beam.options.pipeline_options import PipelineOptions

EMULATOR_ENV = "STORAGE_EMULATOR_HOST"
#: Imported by Beam at worker start-up (``--beam_plugins``) in emulator mode.
WORKER_PLUGIN = "khabar.pipeline.job.gcs_worker"


def emulator_host() -> str | None:
    host = os.environ.get(EMULATOR_ENV, "").strip()
    return host or None


def use_emulator_if_configured() -> bool:
    """Patch Beam's GCS client factory for the emulator; returns whether it is active."""
    if not emulator_host():
        return False
    try:
        from apache_beam.io.gcp import gcsio
    except ImportError:  # Beam without the [gcp] extra: nothing to patch
        return False
    if getattr(gcsio.create_storage_client, "_khabar_emulator", False):
        return True

    def anonymous_client(pipeline_options=None, use_credentials=True):
        from google.cloud import storage

        return storage.Client.create_anonymous_client()

    anonymous_client._khabar_emulator = True  # type: ignore[attr-defined]
    gcsio.create_storage_client = anonymous_client
    return True


def emulator_client_installed() -> bool:
    """Whether Beam's GCS client factory in this process is the emulator one."""
    from apache_beam.io.gcp import gcsio

    return bool(getattr(gcsio.create_storage_client, "_khabar_emulator", False))


def install_emulator_client(options: PipelineOptions) -> bool:
    """Emulator mode for this process and for the worker processes of a job run with
    ``options`` (adds :data:`WORKER_PLUGIN` to ``--beam_plugins``); returns whether the
    emulator is configured."""
    from apache_beam.options.pipeline_options import SetupOptions

    if not use_emulator_if_configured():
        return False
    setup = options.view_as(SetupOptions)
    plugins = list(setup.beam_plugins or [])
    if WORKER_PLUGIN not in plugins:
        setup.beam_plugins = [*plugins, WORKER_PLUGIN]
    return True
