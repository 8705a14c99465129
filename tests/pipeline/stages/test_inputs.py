"""Inputs as they really come: files read as listed, non-regular files, vanished files,
decompression bombs, record caps, feed budgets, hostile feeds and messages; one bad file
or record never stops a job (issue 15)."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from apache_beam.pvalue import TaggedOutput

from khabar.pipeline.graph.streaming import MessageReader
from khabar.pipeline.stages.read import ExpandUnits
from khabar.pipeline.stages.sources import FileReader, expand_inputs
from khabar.transforms.common import DEAD_LETTER
from khabar.transforms.parse import parse_record
from khabar.transforms.split import split_records


def read_all(path: str, **kwargs) -> tuple[list[dict], list[dict]]:
    """(records, dead letters) of one file through the batch reader (Beam-free call)."""
    records, dead = [], []
    for out in ExpandUnits(FileReader(**kwargs)).process(path):
        if isinstance(out, TaggedOutput):
            assert out.tag == DEAD_LETTER
            dead.append(out.value)
        else:
            records.append(out)
    return records, dead


def test_listed_paths_are_read_as_written_never_globbed_again(tmp_path: Path) -> None:
    names = ["news[1].txt", "report*.txt", "q?.txt", "reportA.txt", "q1.txt", "n.txt"]
    for name in names:
        (tmp_path / name).write_text(f"{name}\n\nbody of {name}")
    listed = [str(tmp_path / n) for n in names[:3]]
    assert expand_inputs(listed) == sorted(listed)  # each once; no match of the others
    # a pattern that exists only as a pattern is still a glob, expanded once
    assert expand_inputs([str(tmp_path / "q[0-9].txt")]) == [str(tmp_path / "q1.txt")]
    # a directory with metacharacters in its name is walked, not matched as a pattern
    odd = tmp_path / "in[1]"
    odd.mkdir()
    (odd / "a.txt").write_text("t\n\nb")
    assert expand_inputs([str(odd)]) == [str(odd / "a.txt")]
    for path in listed:
        records, dead = read_all(path)
        assert len(records) == 1 and not dead and records[0]["input_uri"] == path


def test_fifo_is_never_opened_and_vanished_file_is_a_dead_letter(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("t\n\nb")
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "gone.txt").write_text("t\n\nb")
    files = expand_inputs([str(tmp_path)])
    assert str(tmp_path / "pipe") in files
    (tmp_path / "gone.txt").unlink()
    signal.alarm(20)  # a blocking open would hang here
    try:
        _, fifo = read_all(str(tmp_path / "pipe"))
        _, gone = read_all(str(tmp_path / "gone.txt"))
    finally:
        signal.alarm(0)
    assert [d["error_type"] for d in fifo] == ["NotRegularFile"]
    assert "FIFO" in fifo[0]["error_message"]
    assert [d["error_type"] for d in gone] == ["FileVanished"]


# Peak RSS from VmHWM (this process's own memory): ru_maxrss would also count the
# forking parent's pages (Linux carries the pre-exec high-water mark over).
BOMB_SCRIPT = """
import re, sys
from apache_beam.pvalue import TaggedOutput
from khabar.pipeline.stages.read import ExpandUnits
from khabar.pipeline.stages.sources import FileReader
outs = list(ExpandUnits(FileReader()).process(sys.argv[1]))
kinds = [o.value["error_type"] if isinstance(o, TaggedOutput) else "record" for o in outs]
status = open("/proc/self/status").read()
print(kinds, int(re.search(r"VmHWM:\\s+(\\d+)", status).group(1)) // 1024)
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_gzip_bomb_is_stopped_while_inflating(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.txt.gz"
    chunk = b"a" * (1 << 20)  # text, so the reader goes on inflating
    with gzip.open(bomb, "wb", compresslevel=9) as handle:
        for _ in range(1024):  # 1 GiB
            handle.write(chunk)
    assert bomb.stat().st_size < 2 << 20
    out = subprocess.run(
        [sys.executable, "-c", BOMB_SCRIPT, str(bomb)], capture_output=True, text=True, check=True
    ).stdout.split()
    peak_mb = int(out[-1])
    assert "'TooLarge']" in out[0]
    assert peak_mb < 600, f"peak RSS {peak_mb} MB inflating a 1 GiB bomb"


def test_jsonl_record_cap_and_blank_line_bomb(tmp_path: Path) -> None:
    path = tmp_path / "many.jsonl.gz"
    line = b'{"title": "t", "body": "b"}\n'
    with gzip.open(path, "wb") as handle:
        handle.write(b"\n" * 20_000_000)  # blank lines: inflated a chunk at a time
        handle.write(line * 5000)
    records, dead = read_all(str(path), max_records_per_file=1000)
    assert len(records) == 1000
    assert [d["error_type"] for d in dead] == ["RecordCap"]
    assert "line 20001001 and after" in dead[0]["error_message"]


def rss(items: list[bytes], extra: bytes = b"") -> bytes:
    return (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>F</title>'
        + extra
        + b"".join(items)
        + b"</channel></rss>"
    )


def test_feed_is_a_container_with_its_own_budget(tmp_path: Path) -> None:
    item = b"<item><title>t%d</title><description>d</description></item>"
    items = [item % i for i in range(20_000)]
    path = tmp_path / "big.rss"
    path.write_bytes(rss(items))
    assert path.stat().st_size > 1_000_000
    records, dead = read_all(str(path), max_record_bytes=200_000)
    assert len(records) == 20_000 and not dead
    # an item above the per-article limit fails alone, at the parse stage
    huge = b"<item><title>h</title><description>" + b"x" * 300_000 + b"</description></item>"
    path.write_bytes(rss([huge, items[0]]))
    records, dead = read_all(str(path), max_record_bytes=200_000)
    assert len(records) == 2 and not dead
    with pytest.raises(Exception, match="above the limit"):
        parse_record(records[0], max_record_bytes=200_000)
    assert parse_record(records[1], max_record_bytes=200_000)["title"] == "t0"


def test_one_bad_item_costs_only_that_item() -> None:
    good = b"<item><title>ok</title><description>fine text</description></item>"
    undeclared = b"<item><title>one&nbsp;two</title><description>x</description></item>"
    broken = b"<item><title>bad</title><description>a <b>b</i> c</description></item>"
    empty = b"<item><guid>g</guid></item>"
    records = list(split_records("mem://f.rss", rss([good, undeclared, broken, empty]), "feed"))
    assert len(records) == 4
    parsed = []
    for record in records:
        try:
            parsed.append(parse_record(record.to_dict())["title"])
        except Exception as exc:  # noqa: BLE001
            parsed.append(type(exc).__name__)
    assert parsed == ["ok", "one\xa0two", "bad", "EmptyFeedItem"]


@pytest.mark.parametrize(
    ("name", "data", "error"),
    [
        ("deep.rss", rss([b"<item><title>t</title><description>" + b"<x>" * 5000
                          + b"</x>" * 5000 + b"</description></item>"]), "XMLSecurityError"),
        ("laughs.rss", b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa">]>'
         + rss([b"<item><title>&a;</title></item>"]), "XMLSecurityError"),
        ("xxe.rss", b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
         + rss([b"<item><title>&x;</title></item>"]), "XMLSecurityError"),
        ("binary.rss", bytes(range(256)) * 40, None),
    ],
)
def test_hostile_feeds_are_dead_letters_in_batch_and_streaming(
    tmp_path: Path, name: str, data: bytes, error: str | None
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    records, dead = read_all(str(path))
    assert not records and len(dead) == 1
    assert error is None or dead[0]["error_type"] == error

    class Message:
        def __init__(self, payload: bytes) -> None:
            self.data, self.message_id = payload, "m1"
            self.attributes = {"input_uri": name, "format": "feed", "unit": "file"}

    expand = ExpandUnits(MessageReader("projects/p/subscriptions/s"))
    outs = list(expand.process(Message(data)))
    assert len(outs) == 1 and isinstance(outs[0], TaggedOutput)
    assert error is None or outs[0].value["error_type"] == error
    good = list(expand.process(Message(rss([b"<item><title>ok</title></item>"]))))
    assert len(good) == 1 and json.loads(good[0]["payload"])["title"]["value"] == "ok"
