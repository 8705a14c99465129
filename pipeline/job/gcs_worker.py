"""Worker start-up in GCS emulator mode.

Beam imports the modules named in ``--beam_plugins`` when an SDK worker process starts
(``apache_beam.runners.worker.sdk_worker_main``); :func:`khabar.pipeline.job.gcs.
install_emulator_client` names this one, so importing it is the point: it installs the
anonymous emulator client in that worker. Nothing else imports it.
"""

from khabar.pipeline.job.gcs import use_emulator_if_configured

use_emulator_if_configured()
