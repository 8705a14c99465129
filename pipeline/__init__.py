"""khabar's pipeline assembly: options, sources, sinks, CLI."""

from pipeline.gcs import use_emulator_if_configured

use_emulator_if_configured()
