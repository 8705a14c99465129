"""The Parse stage: raw records -> articles, over the core ``transforms.parse.parse_core``."""

from __future__ import annotations

import apache_beam as beam

from khabar.pipeline.stages.stage import beam_count, run_stage
from khabar.transforms.common import DEFAULT_MAX_RECORD_BYTES, dead_letter_from_raw
from khabar.transforms.parse import parse_core


class ParseArticles(beam.PTransform):
    """Raw records (``RawRecord.to_dict()``) -> articles; failures -> dead letters."""

    def __init__(self, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> None:
        super().__init__()
        self.max_record_bytes = max_record_bytes

    def expand(self, pcoll):
        limit = self.max_record_bytes
        return run_stage(
            pcoll, "Parse", "parse", lambda: parse_core(limit, beam_count()), dead_letter_from_raw
        )
