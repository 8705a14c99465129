"""The Clean stage, over the core ``transforms.clean.clean_core``."""

from __future__ import annotations

import apache_beam as beam

from khabar.pipeline.stages.stage import run_stage
from khabar.transforms.clean import clean_core


class CleanArticles(beam.PTransform):
    """Articles -> cleaned articles; failures -> dead letters (stage ``clean``)."""

    def expand(self, pcoll):
        return run_stage(pcoll, "Clean", "clean", clean_core)
