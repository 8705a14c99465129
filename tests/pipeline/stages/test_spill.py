"""Work files: articles set aside while batch dedup decides on their keys (#23)."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import given
from hypothesis import strategies as st

from khabar.pipeline.dedup import near
from khabar.pipeline.dedup.compose import (
    KEY_FIELDS,
    DedupKey,
    NearDupSettings,
    SurvivorFields,
    decision,
)
from khabar.pipeline.dedup.near import (
    SHINGLES,
    RepeatedKeys,
    band_keys,
    pack_node,
    unpack_node,
)
from khabar.pipeline.graph.batch import ProcessArticles
from khabar.pipeline.stages import spill
from khabar.pipeline.stages.spill import read_records, remove_work_dir, write_record
from khabar.transforms.split import RawRecord

from ..graph.test_batch import records


def test_work_file_round_trip_keeps_every_value() -> None:
    articles = [
        {"id": "a", "published_at": dt.datetime(2026, 12, 3, 6, 0, tzinfo=dt.UTC), "n": None},
        {"id": "b", "body": "متن\u200cفارسی " * 1000, "raw": b"\x00\xff", "entities": []},
    ]
    stream = io.BytesIO()
    written = sum(write_record(stream, a) for a in articles)
    assert written == len(stream.getvalue())
    stream.seek(0)
    assert list(read_records(stream)) == articles


@pytest.mark.parametrize("cut", [2, 10])
def test_a_truncated_work_file_is_an_error_not_a_short_read(cut: int) -> None:
    stream = io.BytesIO()
    write_record(stream, {"id": "a", "body": "x" * 100})
    broken = io.BytesIO(stream.getvalue()[:cut])
    with pytest.raises(OSError, match="truncated"):
        list(read_records(broken))


def test_the_key_is_small_and_carries_what_dedup_needs() -> None:
    body = " ".join(f"واژه{i}" for i in range(400))
    article = {"id": "x1", "title": "عنوان", "lead": "", "body": body, "url": "https://A.ir/n/1"}
    stored, key = DedupKey(NearDupSettings())(article)
    assert set(key) == {*KEY_FIELDS, SHINGLES}
    assert key["canonical_url"] == stored["canonical_url"] == "https://a.ir/n/1"
    assert key["content_fingerprint"] == stored["content_fingerprint"]
    assert stored["body"] == body  # the article itself is set aside whole
    assert len(key[SHINGLES]) == 4 * (400 - 2)  # one uint32 per 3-token shingle
    _, no_near = DedupKey(NearDupSettings(enabled=False))(article)
    assert SHINGLES not in no_near


def test_only_decisions_that_differ_from_a_lone_survivor_travel() -> None:
    defaults = SurvivorFields(near=True)
    lone = {
        "id": "a",
        "canonical_id": "a",
        "duplicate_of": None,
        "duplicate_reason": None,
        "cluster_id": "a",
        "similarity": 1.0,
    }
    assert list(decision(lone, False, defaults)) == []
    head = dict(lone, cluster_id="a")  # heads a cluster: same fields as a lone survivor
    assert list(decision(head, False, defaults)) == []
    copy = dict(
        lone, id="b", canonical_id="a", duplicate_of="a", duplicate_reason="near", similarity=0.8
    )
    assert list(decision(copy, True, defaults)) == [
        (
            "b",
            (
                True,
                {
                    k: copy[k]
                    for k in (
                        "canonical_id",
                        "duplicate_of",
                        "duplicate_reason",
                        "cluster_id",
                        "similarity",
                    )
                },
            ),
        )
    ]
    odd = dict(lone, canonical_id="z")  # a survivor that is not its own canonical: sent
    assert list(decision(odd, False, defaults))[0][1][1]["canonical_id"] == "z"


def test_remove_work_dir_takes_files_a_retried_bundle_left(tmp_path: Path) -> None:
    work = tmp_path / ".khabar-work-x"
    work.mkdir()
    for name in ("part-1.pkl", "part-2.pkl", "part-orphan.pkl"):
        (work / name).write_bytes(b"x")
    remove_work_dir(None, str(work), [str(work / "part-1.pkl"), str(work / "part-2.pkl")])
    assert not work.exists()
    remove_work_dir(None, str(tmp_path / "never-made"), [])  # nothing set aside: no error


def test_a_bundle_rolls_to_a_new_work_file(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(spill, "RECORDS_PER_WORK_FILE", 3)
    fn = spill.SetAsideFn(str(tmp_path), lambda a: (a, a["id"]))
    fn.start_bundle()
    keys = [k for i in range(7) for k in fn.process({"id": f"a{i}"})]
    paths = [wv.value.value for wv in fn.finish_bundle()]
    assert keys == [f"a{i}" for i in range(7)]
    assert len(paths) == 3
    back = []
    for path in paths:
        with open(path, "rb") as stream:
            back += [a["id"] for a in read_records(stream)]
    assert back == keys


def test_every_article_set_aside_is_read_back_and_the_work_dir_goes(tmp_path: Path) -> None:
    work = tmp_path / "work"
    extra = [
        RawRecord(
            "mem://c.jsonl",
            i,
            "jsonl",
            json.dumps(
                {"title": f"خبر {i}", "body": f"متن خبر شماره {i} درباره موضوعی تازه است " * 5},
                ensure_ascii=False,
            ).encode(),
        ).to_dict()
        for i in range(1, 40)
    ]
    p = TestPipeline()
    out = p | beam.Create(records() + extra) | ProcessArticles(work_dir=str(work))
    ids = (
        (out.articles, out.duplicates)
        | beam.Flatten()
        | beam.Map(lambda a: (a["input_uri"], a["input_position"]))
    )
    expected = [("mem://a.jsonl", 1), ("mem://a.jsonl", 2), ("mem://a.jsonl", 3)]
    expected += [("mem://c.jsonl", i) for i in range(1, 40)]
    assert_that(ids, equal_to(expected))
    result = p.run()
    result.wait_until_finish()
    counters = {
        c.key.metric.name: c.committed
        for c in result.metrics().query()["counters"]
        if c.key.metric.namespace == "work"
    }
    assert counters["records_written"] == counters["records_read"] == 42
    assert counters["files"] >= 1
    assert not work.exists()


NODES = st.tuples(
    st.sampled_from([0, 1]),
    st.integers(min_value=-(10**17), max_value=10**17),
    st.text(min_size=0, max_size=12),
)


@given(st.lists(NODES, min_size=0, max_size=30))
def test_packed_band_nodes_sort_as_the_nodes_and_come_back_whole(nodes) -> None:
    packed = [pack_node(n) for n in nodes]
    assert [unpack_node(p) for p in sorted(packed)] == sorted(nodes)


def test_a_killed_runs_work_files_are_cleared_before_the_next_run(tmp_path: Path) -> None:
    from khabar.pipeline.job.run import prepare_output, temp_paths

    work = tmp_path / f"{spill.WORK_DIR_PREFIX}0123456789ab"
    work.mkdir()
    (work / "part-1.pkl").write_bytes(b"x")
    assert temp_paths(str(tmp_path)) == [str(work / "part-1.pkl")]
    prepare_output(str(tmp_path), overwrite=False)  # nothing finalized: no need to ask
    assert not work.exists()


@given(st.lists(st.integers(min_value=0, max_value=40), max_size=300), st.integers(1, 4))
def test_repeated_keys_are_those_seen_twice_however_the_input_is_split(keys, parts) -> None:
    fn = RepeatedKeys()
    fn.FOLD = 7  # fold often: the folding is what is tested
    accs = []
    for part in range(parts):
        acc = fn.create_accumulator()
        for key in keys[part::parts]:
            acc = fn.add_input(acc, key)
        accs.append(acc)
    repeated = fn.extract_output(fn.merge_accumulators(accs))
    assert repeated.tolist() == sorted(k for k in set(keys) if keys.count(k) > 1)


def test_only_repeated_band_keys_are_grouped_and_big_hashes_survive() -> None:
    node = pack_node((0, 5, "a"))
    bands = (1, 2**64 - 1, 7)
    keys = band_keys(bands)
    repeated = {near._shard(int(keys[1])): np.array([int(keys[1])], dtype=np.uint64)}
    out = list(near._band_entries((node, bands, b"shingles"), repeated))
    assert out[0] == ((1, 2**64 - 1), node)
    # an article with a grouped entry is a candidate: its shingles go to the pair joins
    assert len(out) == 2 and out[1].tag == near._CANDIDATES
    assert out[1].value == ((0, 5, "a"), b"shingles")
    # an article in no shared bucket has no entry, is in no pair, and its shingles stay out
    assert list(near._band_entries((node, bands, b"shingles"), {})) == []
