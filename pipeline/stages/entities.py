"""The TagEntities stage, over the core ``transforms.entities.tag_entities_core``."""

from __future__ import annotations

import apache_beam as beam

from khabar.pipeline.stages.model_files import local_model_dir
from khabar.pipeline.stages.stage import beam_count, run_stage
from khabar.transforms.entities import tag_entities_core

#: Articles tagged together (``BatchStageFn``): the networks' time per article falls from
#: 9.4 ms alone to 7.0 in 16s and 6.4 in 32s (news-fa, one core); the held articles and
#: their activations stay a few MB.
ENTITY_BATCH = 32


class TagEntities(beam.PTransform):
    """Normalized articles -> articles with ``entities``/``entity_model``; failures -> dead
    letters. ``model_dir`` plugs in a user's own models (same directory format), local or
    on ``gs://`` (copied once per worker process: ``model_files``)."""

    def __init__(self, model_dir: str | None = None) -> None:
        super().__init__()
        self.model_dir = model_dir

    def expand(self, pcoll):
        model_dir = self.model_dir
        return run_stage(
            pcoll,
            "TagEntities",
            "entities",
            lambda: tag_entities_core(local_model_dir(model_dir), beam_count()),
            batch_size=ENTITY_BATCH,
        )
