"""``BatchStageFn``: articles handed to a core in groups keep their own timestamps and
windows, every article is counted once, and a group that fails is run article by article
so that only the bad one becomes a dead letter."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import FixedWindows, TimestampedValue

from khabar.pipeline.stages.stage import run_stage
from khabar.transforms import metrics as M

#: Group sizes ``many`` was called with (the in-process runner shares this module).
CALLS: list[int] = []


def upper_core():
    def core(article: dict) -> dict:
        if article["text"] == "bad":
            raise ValueError("a bad article")
        return {**article, "text": article["text"].upper()}

    def many(articles: list[dict]) -> list[dict]:
        CALLS.append(len(articles))
        return [core(a) for a in articles]  # raises for the whole group if one is bad

    core.many = many  # type: ignore[attr-defined]
    return core


def where(article, window=beam.DoFn.WindowParam, timestamp=beam.DoFn.TimestampParam):
    yield (article["id"], article["text"], int(window.start), int(timestamp))


def test_groups_keep_windows_and_isolate_failures() -> None:
    texts = ["a", "b", "bad", "c", "d", "e", "f"]
    CALLS.clear()
    p = TestPipeline()
    if True:
        items = (
            p
            | beam.Create([(i, t) for i, t in enumerate(texts)])
            | beam.Map(lambda it: TimestampedValue({"id": str(it[0]), "text": it[1]}, it[0] * 4))
            | beam.WindowInto(FixedWindows(10))
        )
        out = run_stage(items, "Upper", "upper", upper_core, batch_size=3)
        assert_that(
            out.articles | "Where" >> beam.ParDo(where),
            equal_to(
                [
                    (str(i), t.upper(), (i * 4) // 10 * 10, i * 4)
                    for i, t in enumerate(texts)
                    if t != "bad"
                ]
            ),
        )
        assert_that(
            out.dead_letter | beam.Map(lambda d: (d["stage"], d["error_type"])),
            equal_to([("upper", "ValueError")]),
            label="DeadLetters",
        )
    result = p.run()
    result.wait_until_finish()
    counters = {
        c.key.metric.name: c.committed
        for c in result.metrics().query(MetricsFilter().with_namespace(M.stage("upper")))[
            "counters"
        ]
    }
    assert counters[M.OK] == 6 and counters[M.DEAD_LETTER] == 1
    assert counters.get(M.RETRIED, 0) == 0
    assert CALLS and max(CALLS) <= 3 and sum(CALLS) >= 3  # groups were handed over
