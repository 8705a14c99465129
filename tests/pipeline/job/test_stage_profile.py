"""``KHABAR_STAGE_PROFILE``: the FnApiRunner's bundles timed stage by stage, on a real
pipeline, and ``khabar bench``'s reading of them."""

from __future__ import annotations

import json
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from khabar.pipeline.bench.pipeline import stage_label, wall_parts
from khabar.pipeline.job.runner import STAGE_PROFILE_ENV, make_runner


def test_every_bundle_of_a_batch_job_is_timed_by_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = tmp_path / "stages.jsonl"
    monkeypatch.setenv(STAGE_PROFILE_ENV, str(profile))
    options = PipelineOptions([])
    with beam.Pipeline(runner=make_runner(options), options=options) as p:
        _ = (
            p
            | "Numbers" >> beam.Create(range(50))
            | "Square" >> beam.Map(lambda x: (x % 5, x * x))
            | "Group" >> beam.GroupByKey()
            | "Total" >> beam.MapTuple(lambda k, xs: (k, sum(xs)))
        )
    lines = [json.loads(x) for x in profile.read_text().splitlines()]
    assert lines and all(set(x) == {"stage", "start", "seconds"} for x in lines)
    assert all(x["seconds"] >= 0 for x in lines)
    labels = {stage_label(x["stage"]) for x in lines}
    # the map before the shuffle and the sum after it are in different fused stages
    assert any(label.startswith("Numbers") or "Square" in label for label in labels)
    assert any(label.startswith("Group") and "Total" in label for label in labels)
    parts = wall_parts(lines, lines[0]["start"] - 1.0, 60.0)
    assert parts["bundles"] == len(lines)
    assert parts["parts"]["before the first bundle"] == pytest.approx(1.0, abs=1e-3)
    assert sum(parts["stages"].values()) == pytest.approx(sum(x["seconds"] for x in lines))


def test_stage_label_names_first_and_last_step() -> None:
    name = (
        "(((((Process/SpreadWorkFiles/ReshufflePerKey/GroupByKey/Read)+"
        "(ref_AppliedPTransform_Process-SpreadWorkFiles-ReshufflePerKey-FlatMap-restore_9))+"
        "(ref_AppliedPTransform_Process-Entities-Tag-ParDo_201))+"
        "(ref_AppliedPTransform_WriteArticles-Write-Write-WriteImpl_230))"
    )
    first, last = "Process/SpreadWorkFiles/ReshufflePerKey", "WriteArticles/Write/Write"
    assert stage_label(name) == f"{first} .. {last}"
    pcoll = "ref_PCollection_PCollection_186"
    assert stage_label(f"({pcoll}/Read)") == pcoll
    assert stage_label("odd") == "odd"
