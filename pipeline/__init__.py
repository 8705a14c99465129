"""khabar's pipeline assembly: options, sources, sinks, CLI."""

from khabar.pipeline.job.gcs import use_emulator_if_configured

use_emulator_if_configured()
