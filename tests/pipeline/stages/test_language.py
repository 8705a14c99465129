"""The DetectLanguage stage in Beam."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from khabar.pipeline.stages.language import DetectLanguage
from tests.transforms.test_language import SENTENCES


def test_beam_stage() -> None:
    articles = [
        {"title": "t1", "lead": "", "body": SENTENCES["fa"][0]},
        {"title": "t2", "lead": "", "body": SENTENCES["en"][0]},
    ]
    with TestPipeline() as p:
        out = p | beam.Create(articles) | DetectLanguage()
        langs = out.articles | beam.Map(lambda a: (a["title"], a["language"], a["script"]))
        assert_that(langs, equal_to([("t1", "fa", "Arab"), ("t2", "en", "Latn")]))
        assert_that(out.dead_letter, equal_to([]), label="no dead letters")
