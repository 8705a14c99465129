"""The DetectLanguage stage, over the core ``transforms.language.detect_language_core``."""

from __future__ import annotations

import apache_beam as beam

from khabar.pipeline.stages.stage import beam_count, run_stage
from khabar.transforms.language import detect_language_core


class DetectLanguage(beam.PTransform):
    """Set 'language', 'language_confidence' and 'script' on every article."""

    def expand(self, pcoll):
        # the detector's tables are read-only once built: one per process
        return run_stage(
            pcoll,
            "DetectLanguage",
            "language",
            lambda: detect_language_core(beam_count()),
            thread_safe=True,
        )
