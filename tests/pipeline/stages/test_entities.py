"""The TagEntities stage in Beam: entities per article, counters, dead letters."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from khabar.pipeline.stages.entities import TagEntities
from khabar.transforms.normalize import Normalizer
from tests.transforms.test_entities import seed_article


def test_beam_stage_counts() -> None:
    normalizer = Normalizer()
    articles = [
        seed_article(normalizer) | {"id": "fa1"},
        {"id": "ar1", "language": "ar", "title": "عنوان", "lead": None, "body": "نص"},
        {"id": "bad", "language": "en", "title": None, "lead": None, "body": 42},
    ]
    pipeline = TestPipeline()
    out = pipeline | beam.Create(articles) | TagEntities()
    counts = (
        out.articles
        | beam.Map(lambda a: (a["id"], len(a["entities"])))
        | "Collect" >> beam.combiners.ToList()
    )
    letters = out.dead_letter | "Stages" >> beam.Map(lambda d: d["stage"])

    def check(rows: list) -> None:
        got = dict(rows[0])
        assert set(got) == {"fa1", "ar1"}
        assert got["ar1"] == 0 and got["fa1"] >= 8

    assert_that(counts, check, label="articles")
    assert_that(letters, equal_to(["entities"]), label="dead letters")
    result = pipeline.run()
    result.wait_until_finish()
    metrics = result.metrics().query()["counters"]
    values = {
        m.key.metric.name: m.committed for m in metrics if m.key.metric.namespace == "entities"
    }
    assert values.get("no_model_ar") == 1
    assert values.get("PERSON", 0) >= 4 and values.get("ORGANIZATION", 0) >= 1
