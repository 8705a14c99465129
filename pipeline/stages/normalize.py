"""The Normalize stage, over the core ``transforms.normalize.normalize_core`` (Persian
normalizer for ``fa``, NFC for the rest)."""

from __future__ import annotations

import apache_beam as beam

from khabar.pipeline.stages.stage import beam_count, run_stage
from khabar.transforms.normalize import normalize_core


class NormalizeArticles(beam.PTransform):
    """Articles with ``language`` -> normalized articles; failures -> dead letters."""

    def expand(self, pcoll):
        # hazm's tables and the ZWNJ lexicon are read-only; the restorer's word caches
        # are dicts filled idempotently (a lost race recomputes an equal value)
        return run_stage(
            pcoll,
            "Normalize",
            "normalize",
            lambda: normalize_core(beam_count()),
            thread_safe=True,
        )
