"""One big JSON Lines file read as byte ranges gives exactly what a whole-file read gives:
the same records, line numbers (so ids), dead letters and record cap (#23 item 2)."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from khabar.pipeline.stages.read import ReadFailure
from khabar.pipeline.stages.sources import FileReader, LineRange, RangePlanner


def outcome(items) -> list[tuple]:
    out = []
    for item in items:
        if isinstance(item, ReadFailure):
            out.append(("dead", type(item.error).__name__, item.position, item.raw_payload))
        else:
            out.append(("record", item.input_uri, item.position, item.payload))
    return out


def read_whole(path: str, **limits) -> list[tuple]:
    return outcome(FileReader(None, **limits)(path))


def read_in_ranges(path: str, range_bytes: int, **limits) -> tuple[list[tuple], list]:
    units = list(RangePlanner(None, range_bytes=range_bytes, **limits)(path))
    reader = FileReader(None, **limits)
    items = [item for unit in units for item in reader(unit)]
    return outcome(items), units


LINE = st.one_of(
    st.builds(
        lambda t: json.dumps({"title": t, "body": t * 3}, ensure_ascii=False),
        st.text(min_size=0, max_size=40),
    ),
    st.sampled_from(["", " ", "\t \t", "{broken", "\u200c", "x" * 300]),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=st.lists(LINE, min_size=0, max_size=60),
    endings=st.sampled_from(["\n", "\r\n"]),
    final_newline=st.booleans(),
    range_bytes=st.integers(min_value=1, max_value=400),
    cap=st.integers(min_value=1, max_value=80),
    max_record_bytes=st.sampled_from([64, 200, 1 << 20]),
)
def test_ranges_read_exactly_what_the_whole_file_reads(
    tmp_path: Path, lines, endings, final_newline, range_bytes, cap, max_record_bytes
) -> None:
    text = endings.join(lines) + (endings if final_newline and lines else "")
    path = tmp_path / "big.jsonl"
    path.write_bytes(text.encode("utf-8"))
    limits = {"max_record_bytes": max_record_bytes, "max_records_per_file": cap}
    ranged, units = read_in_ranges(str(path), range_bytes, **limits)
    assert ranged == read_whole(str(path), **limits)
    parts = [u for u in units if isinstance(u, LineRange)]
    if parts:  # ranges tile the file: contiguous, whole lines, the last to the end
        assert parts[0].start == 0 and parts[-1].end is None
        for a, b in zip(parts, parts[1:], strict=False):
            assert a.end == b.start


def write_day(tmp_path: Path, words: list[int]) -> tuple[Path, list[str]]:
    """A JSON Lines file of one record per entry of ``words`` (its body's word count)."""
    path = tmp_path / "day.jsonl"
    rows = [
        json.dumps({"title": f"t{i:04d}", "body": "متن " * n}, ensure_ascii=False)
        for i, n in enumerate(words)
    ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path, rows


def test_a_big_file_is_split_and_counted_once(tmp_path: Path) -> None:
    path, _ = write_day(tmp_path, [50] * 500)
    units = list(RangePlanner(range_bytes=16 << 10)(str(path)))
    assert len(units) > 10 and all(isinstance(u, LineRange) for u in units)
    reader = FileReader()
    counted = []
    reader.files.inc = lambda n=1: counted.append(n)  # files_read: once per file
    records = [r for u in units for r in reader(u)]
    assert [r.position for r in records] == list(range(1, 501))
    assert len(counted) == 1


def test_what_is_not_split(tmp_path: Path) -> None:
    small = tmp_path / "small.jsonl"
    small.write_text('{"title": "a", "body": "b"}\n', encoding="utf-8")
    packed = tmp_path / "big.jsonl.gz"
    packed.write_bytes(gzip.compress(b'{"title": "a", "body": "b"}\n' * 5000))
    blank = tmp_path / "blank.jsonl"
    blank.write_text("\n" * 5000, encoding="utf-8")
    text = tmp_path / "article.txt"
    text.write_text("عنوان\n\n" + "متن " * 5000, encoding="utf-8")
    planner = RangePlanner(range_bytes=1024)
    for path in (small, packed, blank, text):
        assert list(planner(str(path))) == [str(path)], path.name
    assert read_whole(str(blank))[0][:2] == ("dead", "EmptyInput")
    assert list(planner(str(tmp_path / "gone.jsonl"))) == [str(tmp_path / "gone.jsonl")]


@pytest.mark.parametrize("parts", [1.05, 2.1, 3.9, 7.5])
def test_ranges_are_equal_parts(tmp_path: Path, parts: float) -> None:
    # The runner hands a stage's units to its workers in turn: a file cut into full
    # ranges and a short tail gave one worker all the full ranges of files alike.
    path, rows = write_day(tmp_path, [20 + i % 7 for i in range(2000)])
    size = path.stat().st_size
    longest = max(len(r.encode()) + 1 for r in rows)
    units = list(RangePlanner(range_bytes=int(size / parts))(str(path)))
    n = math.ceil(parts)
    assert len(units) == n
    ends = [u.end if u.end is not None else size for u in units]
    lengths = [end - u.start for u, end in zip(units, ends, strict=True)]
    assert sum(lengths) == size
    for length in lengths:
        assert abs(length - size / n) <= longest, (lengths, size / n)
