"""Streaming graph on Beam's TestStream (BundleBasedDirectRunner): arrival-time windows,
late data in one batched pane, duplicates across windows, and TTL expiry of the dedup
state."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import TimestampedValue

from khabar.pipeline.graph.batch import JobSettings
from khabar.pipeline.graph.streaming import ProcessStream
from khabar.pipeline.job.options import KhabarOptions
from khabar.pipeline.job.run import job_settings
from khabar.transforms.common import ARTICLES, DEAD_LETTER, DUPLICATES
from khabar.transforms.split import RawRecord

T0 = int(dt.datetime(2026, 11, 28, 10, 0, tzinfo=dt.UTC).timestamp())
TTL = 1000
STREAM = JobSettings(window_seconds=60, allowed_lateness=3600, ttl_seconds=TTL)


BODIES = {
    "harbour": "The harbour authority reopened the northern docks after the storm and ships "
    "queued outside the breakwater waiting for pilots.",
    "school": "Primary schools moved classes online because the air quality index reached "
    "unhealthy levels in most districts of the capital.",
    "museum": "The national museum unveiled a restored bronze statue that had spent forty "
    "years in storage after it was damaged in a fire.",
    "bridge": "Engineers closed the old stone bridge to lorries after cracks were found in two "
    "of its arches during a routine inspection.",
}


def iso(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat()


def raw(n: int, title: str, published: int | None, body: str | None = None) -> dict:
    obj = {"title": title, "body": body or BODIES.get(title, title)}
    if published is not None:
        obj["published"] = iso(published)
    return RawRecord("pubsub://test", n, "jsonl", json.dumps(obj).encode()).to_dict()


class _Describe(beam.DoFn):
    """After a GroupByKey: (positions, window start - T0, pane index) per firing, as the
    file sink sees them (one file per window and pane)."""

    def process(self, kv, w=beam.DoFn.WindowParam, pane=beam.DoFn.PaneInfoParam):
        _, group = kv
        yield (sorted(a["input_position"] for a in group), int(w.start) - T0, pane.index)


def describe(pcoll, label: str):
    return (
        pcoll
        | f"Key{label}" >> beam.Map(lambda a: (None, a))
        | f"Group{label}" >> beam.GroupByKey()
        | f"Describe{label}" >> beam.ParDo(_Describe())
    )


def test_windows_late_data_cross_window_duplicates_and_ttl() -> None:
    stream = (
        TestStream()
        .advance_watermark_to(T0)
        .add_elements(
            [
                TimestampedValue(raw(1, "harbour", T0 + 5), T0 + 6),
                TimestampedValue(raw(2, "harbour", T0 + 9), T0 + 10),  # same text: duplicate
                TimestampedValue(raw(9, "", None, body=" "), T0 + 11),  # empty: dead letter
            ]
        )
        .advance_watermark_to(T0 + 60)  # closes window [T0, T0+60)
        .add_elements(
            [
                TimestampedValue(raw(3, "school", T0 + 70), T0 + 71),
                TimestampedValue(raw(4, "harbour", T0 + 72), T0 + 73),  # duplicate, next window
                # windows are on arrival: feed dates in a closed window or two hours old
                # change nothing (they made late panes, a file each, when windows were
                # on published_at)
                TimestampedValue(raw(5, "museum", T0 + 30), T0 + 80),
                TimestampedValue(raw(6, "bridge", T0 - 7200), T0 + 85),
            ]
        )
        .advance_watermark_to(T0 + TTL + 500)  # dedup state of "harbour" expires
        .add_elements([TimestampedValue(raw(7, "harbour", T0 + TTL + 510), T0 + TTL + 520)])
        .advance_watermark_to_infinity()
    )
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    with TestPipeline(runner="BundleBasedDirectRunner", options=options) as p:
        out = p | stream | ProcessStream(STREAM)
        articles = describe(out[ARTICLES], "A")
        dups = describe(out[DUPLICATES], "D")
        dead = out[DEAD_LETTER] | "DL" >> beam.Map(lambda d: (d["position"], d["stage"]))
        assert_that(
            articles,
            equal_to(
                [
                    ([1], 0, 0),  # on time: the window's one pane
                    ([3, 5, 6], 60, 0),
                    ([7], TTL + 500, 0),  # after the TTL expired: a new survivor
                ]
            ),
            label="articles",
        )
        # 4 is a copy of 1 seen a window later: still linked (state outlives windows)
        assert_that(dups, equal_to([([2], 0, 0), ([4], 60, 0)]), label="duplicates")
        assert_that(dead, equal_to([(9, "clean")]), label="dead")


STORY = (
    "Rescue teams reached the mountain villages cut off by the landslide on Friday and "
    "began moving families to shelters in the valley, the provincial governor said, adding "
    "that the main road would stay closed for at least a week while engineers inspect the "
    "damaged bridge and clear the rocks that fell across the highway near the tunnel."
)
OTHER = (
    "The central bank kept its main interest rate unchanged on Thursday, saying inflation "
    "had eased for a third month in a row but that it would watch food prices closely before "
    "deciding on any cut, and analysts said a first reduction could come early next year."
)


def test_near_duplicates_across_windows_first_seen_survives() -> None:
    rewritten = STORY.replace("on Friday", "late on Friday").replace(
        "the provincial governor said", "officials told reporters"
    )
    stream = (
        TestStream()
        .advance_watermark_to(T0)
        .add_elements(
            [
                TimestampedValue(raw(1, "Landslide villages reached", T0 + 5, STORY), T0 + 6),
                TimestampedValue(raw(2, "Bank holds rates", T0 + 7, OTHER), T0 + 8),
            ]
        )
        .advance_watermark_to(T0 + 120)
        .add_elements(
            # the agency story again, new headline and two edits, from another outlet
            [
                TimestampedValue(
                    raw(3, "Families moved after landslide", T0 + 125, rewritten), T0 + 126
                )
            ]
        )
        .advance_watermark_to_infinity()
    )
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    with TestPipeline(runner="BundleBasedDirectRunner", options=options) as p:
        out = p | stream | ProcessStream(STREAM)
        survivors = out[ARTICLES] | "S" >> beam.Map(
            lambda a: (a["input_position"], a["cluster_id"] == a["id"], a["similarity"])
        )
        dups = out[DUPLICATES] | "D" >> beam.Map(
            lambda a: (a["input_position"], a["duplicate_reason"], a["similarity"] > 0.5)
        )
        assert_that(survivors, equal_to([(1, True, 1.0), (2, True, 1.0)]), label="survivors")
        assert_that(dups, equal_to([(3, "near", True)]), label="near")


@pytest.mark.parametrize(
    ("args", "near_found"),
    [
        ([], True),
        (["--near_dedup", "off"], False),
        (["--near_threshold", "0.95", "--near_containment", "0.99"], False),
    ],
)
def test_streaming_near_dedup_follows_the_near_options(args: list[str], near_found: bool) -> None:
    # the same --near_* options as batch, read by the one settings builder of every job
    settings = job_settings(PipelineOptions(["--output", "unused", *args]).view_as(KhabarOptions))
    rewritten = STORY.replace("on Friday", "late on Friday")
    stream = (
        TestStream()
        .advance_watermark_to(T0)
        .add_elements([TimestampedValue(raw(1, "Landslide", T0 + 5, STORY), T0 + 6)])
        .advance_watermark_to(T0 + 120)
        .add_elements([TimestampedValue(raw(2, "Landslide again", T0 + 125, rewritten), T0 + 126)])
        .advance_watermark_to_infinity()
    )
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    with TestPipeline(runner="BundleBasedDirectRunner", options=options) as p:
        out = p | stream | ProcessStream(replace(STREAM, near=settings.near))
        survivors = out[ARTICLES] | "S" >> beam.Map(lambda a: a["input_position"])
        dups = out[DUPLICATES] | "D" >> beam.Map(lambda a: a["input_position"])
        assert_that(survivors, equal_to([1] if near_found else [1, 2]), label="survivors")
        assert_that(dups, equal_to([2] if near_found else []), label="near")


def test_redelivered_item_lands_once_other_copies_stay_duplicates() -> None:
    """At-least-once delivery: the same item published twice (same poller item key, or
    the same record id) lands once and is not a duplicate of itself; another item with
    the same text is still a duplicate."""

    def item(n: int, key: str, position: int | None = None) -> dict:
        record = raw(position if position is not None else n, "harbour", T0 + 5)
        record["attributes"] = {"khabar_item": key, "unit": "record"}
        return record

    stream = (
        TestStream()
        .advance_watermark_to(T0)
        .add_elements(
            [
                TimestampedValue(item(1, "feed-a/g1"), T0 + 6),
                # redelivered after a restart: the feed had moved, so another position
                TimestampedValue(item(1, "feed-a/g1", position=4), T0 + 8),
                TimestampedValue(item(2, "feed-b/g7"), T0 + 9),  # a real copy
                TimestampedValue(raw(3, "school", T0 + 9), T0 + 10),
                TimestampedValue(raw(3, "school", T0 + 9), T0 + 11),  # same record id
            ]
        )
        .advance_watermark_to_infinity()
    )
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    with TestPipeline(runner="BundleBasedDirectRunner", options=options) as p:
        out = p | stream | ProcessStream(STREAM)
        assert_that(describe(out[ARTICLES], "A"), equal_to([([1, 3], 0, 0)]), label="articles")
        assert_that(describe(out[DUPLICATES], "D"), equal_to([([2], 0, 0)]), label="dups")
