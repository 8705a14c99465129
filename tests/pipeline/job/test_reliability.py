"""Reliability: hostile input through the whole job, conservation as a property, reruns,
a job killed mid-run, and transient faults inside a stage."""

from __future__ import annotations

import gzip
import json
import os
import resource
import signal
import subprocess
import time
from pathlib import Path

import apache_beam as beam
import fastavro
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from khabar.pipeline.stages.stage import run_stage
from khabar.transforms.common import DEAD_LETTER
from tests.conftest import ROOT, VENV_BIN, read_avro, run_khabar, write_news_corpus

ZWNJ = "\u200c"


def write_hostile(folder: Path) -> int:
    """Every hostile case of the reliability issue; returns the number of records."""
    folder.mkdir(parents=True, exist_ok=True)
    n = 0

    def put(name: str, data: bytes, records: int = 1) -> None:
        nonlocal n
        (folder / name).write_bytes(data)
        n += records

    put("huge_article.txt", b"title\n\n" + ("word " * 4_200_000).encode())  # ~21 MB
    put("long_line.jsonl", b'{"title": "x", "body": "' + b"y" * 10_500_000 + b'"}')
    put("invalid_utf8.txt", "تیتر\n\nمتن ".encode() + b"\xff\xfe\xfa" + " خراب".encode())
    put("mixed_encodings.txt", "عنوان\n\n".encode() + "متن".encode("cp1256"))
    put("nul_bytes.txt", b"title\n\nbody\x00\x00\x00 more")
    put(
        "bidi.txt",
        "Bank \u202etransfer\u202c notice\n\nSend \u2066money\u2069 to\u200b account "
        "\u202enow\u202c, said the message."
        "\n\nThe second paragraph of the notice is harmless.".encode(),
    )
    put("homoglyphs.txt", "Ρаyраl аccоunt lоcked\n\nYоur аccоunt hаs bееn lоckеd tоdаy.".encode())
    put("deep.jsonl", b"[" * 200_000 + b"]" * 200_000)
    put(
        "types.jsonl",
        b"\n".join(
            [
                b'{"title": 1e400, "body": "b"}',
                b'{"title": "t", "body": "b", "published": 99999999999999999999999}',
                b'{"title": ["a"], "body": "b"}',
                b'{"title": "t", "body": {"x": 1}}',
                b'{"title": "t", "body": "b", "url": 5, "source": null}',
                b'{"title": true, "body": false}',
                b"12345",
                b'"just a string"',
            ]
        ),
        records=8,
    )
    put(
        "steer.jsonl",
        json.dumps(
            {
                "title": "Path steering",
                "body": "An article whose source and url try to steer an output path, "
                "which khabar never uses to build a path.",
                "source": "../../../../etc/passwd\u0000",
                "url": "file:///../../etc/shadow",
            }
        ).encode(),
    )
    put(
        "laughs.xml",
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>'
        b"<rss><channel><item><title>&c;</title></item></channel></rss>",
    )
    put(
        "xxe.xml",
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<rss><channel><item><title>&x;</title></item></channel></rss>",
    )
    put("nested.xml", b"<rss>" + b"<a>" * 100_000 + b"</a>" * 100_000 + b"</rss>")
    put("bomb.rss.gz", gzip.compress(b"<rss>" + b" " * 60_000_000 + b"</rss>"))
    put("binary.html", os.urandom(5000))
    put("empty.jsonl", b"")
    return n


def test_hostile_input_ends_as_dead_letters_with_bounded_memory(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    expected = write_hostile(inputs)
    out = tmp_path / "out"
    started = time.time()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = run_khabar("run", "--input", str(inputs), "--output", str(out), timeout=600)
    peak_mb = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    assert result.returncode == 0, result.stderr
    assert time.time() - started < 300
    summary = json.loads((out / "_SUMMARY.json").read_text())
    assert summary["counts"]["records_in"] == expected
    assert summary["conservation"]["ok"]
    articles, dead = read_avro(out / "articles"), read_avro(out / "dead_letter")
    by_file = {}
    for d in dead:
        by_file.setdefault(Path(d["input_uri"]).name, []).append(d["error_type"])
    assert by_file["huge_article.txt"] == ["TooLarge"]
    assert by_file["long_line.jsonl"] == ["TooLarge"]
    assert by_file["invalid_utf8.txt"] == ["DecodeError"]  # broken UTF-8: not guessed
    assert by_file["mixed_encodings.txt"] == ["DecodeError"]
    assert by_file["nul_bytes.txt"] == ["UnsupportedFormat"]  # NUL bytes, not UTF-16: binary
    assert by_file["deep.jsonl"] == ["InvalidRecord"]
    # 8 lines of wrong types; the one with an impossible epoch keeps its article, date empty
    assert len(by_file["types.jsonl"]) == 7
    assert by_file["laughs.xml"] == ["XMLSecurityError"]
    assert by_file["xxe.xml"] == ["XMLSecurityError"]
    assert by_file["nested.xml"] and by_file["bomb.rss.gz"] == ["TooLarge"]
    assert by_file["binary.html"] and by_file["empty.jsonl"] == ["EmptyInput"]
    # every dead letter keeps the bytes it came from (size-capped for TooLarge)
    invalid = next(d for d in dead if d["input_uri"].endswith("invalid_utf8.txt"))
    assert invalid["raw_payload"] == (inputs / "invalid_utf8.txt").read_bytes()
    # bidi controls and zero-width characters are gone; the text survives
    (bidi,) = [a for a in articles if a["input_uri"].endswith("bidi.txt")]
    assert "\u202e" not in bidi["title"] + bidi["body"] and "transfer" in bidi["title"]
    assert any(a["input_uri"].endswith("homoglyphs.txt") for a in articles)
    # source/url never steer a path: only khabar's own files exist under the output
    (steer,) = [a for a in articles if a["input_uri"].endswith("steer.jsonl")]
    assert steer["source"].startswith("../") and steer["canonical_url"] is None
    names = {p.relative_to(out).parts[0] for p in out.rglob("*") if p.is_file()}
    assert names <= {"articles", "dead_letter", "_SUMMARY.json"}
    assert not (Path("/etc") / "passwd.avro").exists()
    assert peak_mb < 2500, f"peak memory {peak_mb:.0f} MB"


def test_rerun_is_idempotent_apart_from_ingested_at(tmp_path: Path) -> None:
    seeds = ROOT / "seeds"
    runs = []
    for name in ("a", "b"):
        result = run_khabar("run", "--input", str(seeds), "--output", str(tmp_path / name))
        assert result.returncode == 0, result.stderr
        run = tmp_path / name
        records = read_avro(run / "articles") + read_avro(run / "dead_letter")
        for r in records:
            r.pop("ingested_at", None)
            r.pop("failed_at", None)
        runs.append(sorted(records, key=lambda r: (r.get("id") or "", r.get("input_uri"))))
    assert runs[0] == runs[1]


def test_killed_job_leaves_no_partial_output_and_rerun_completes(tmp_path: Path) -> None:
    corpus = tmp_path / "in"
    assert write_news_corpus(corpus, files=4, per_file=500) == 2000
    out = tmp_path / "out"
    args = [str(VENV_BIN / "khabar"), "run", "--input", str(corpus), "--output", str(out)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(8)  # mid-run: models loaded, records flowing, nothing finalized yet
    assert proc.poll() is None, "the job finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # readers look at articles/*.avro: nothing there, or only complete files
    for path in (out / "articles").glob("*.avro"):
        with open(path, "rb") as handle:
            list(fastavro.reader(handle))
    assert not (out / "_SUMMARY.json").exists()
    rerun = run_khabar("run", "--input", str(corpus), "--output", str(out), timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads((out / "_SUMMARY.json").read_text())
    assert summary["conservation"]["ok"] and summary["counts"]["records_in"] == 2000
    assert len(read_avro(out / "articles")) == summary["counts"]["articles"]


_ATTEMPTS: dict[str, int] = {}


def flaky_core():
    def core(article: dict) -> dict:
        _ATTEMPTS[article["id"]] = _ATTEMPTS.get(article["id"], 0) + 1
        if _ATTEMPTS[article["id"]] == 1:
            raise ConnectionResetError("flaky backend")
        return dict(article, seen=_ATTEMPTS[article["id"]])

    return core


def test_transient_error_in_a_stage_is_retried_not_lost() -> None:
    _ATTEMPTS.clear()
    with TestPipeline() as p:
        out = run_stage(p | beam.Create([{"id": "a"}, {"id": "b"}]), "Flaky", "flaky", flaky_core)
        assert_that(
            out.articles | beam.Map(lambda a: (a["id"], a["seen"])),
            equal_to([("a", 2), ("b", 2)]),
            label="ok",
        )
        assert_that(out[DEAD_LETTER], equal_to([]), label="dead")


def _record(kind: str, i: int, ok: bool) -> tuple[str, bytes]:
    title, body = f"Title {i} {kind}", f"Body text number {i} about {kind} and more words here."
    if kind == "jsonl":
        return kind, (json.dumps({"title": title, "body": body}) if ok else '{"title": ').encode()
    if kind == "text":
        return kind, (f"{title}\n\n{body}" if ok else "").encode()
    if kind == "html":
        page = f"<html><head><title>{title}</title></head><body><article><p>{body} " * 3
        return kind, (page + "</p></article></body></html>" if ok else "<html></html>").encode()
    items = f"<item><title>{title}</title><description>{body}</description></item>"
    return kind, (f"<rss><channel>{items}</channel></rss>" if ok else "<rss><chan").encode()


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(
    st.lists(
        st.tuples(st.sampled_from(["jsonl", "text", "html", "rss"]), st.booleans()),
        min_size=1,
        max_size=10,
    ),
    st.integers(min_value=0, max_value=3),
)
def test_conservation_property(specs: list[tuple[str, bool]], copies: int) -> None:
    import tempfile

    from apache_beam.options.pipeline_options import PipelineOptions

    from khabar.pipeline.job.run import run_batch

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        ext = {"jsonl": "jsonl", "text": "txt", "html": "html", "rss": "rss"}
        files = []
        for i, (kind, ok) in enumerate(specs):
            _, data = _record(kind, i % (copies + 1), ok)  # repeats make duplicates
            path = folder / f"r{i}.{ext[kind]}"
            path.write_bytes(data)
            files.append(str(path))
        out = Path(tmp) / "out"
        summary = run_batch(
            PipelineOptions(["--output", str(out), "--emit_duplicates"]), sorted(files)
        )
        c = summary["counts"]
        assert c["records_in"] == len(specs)
        assert summary["conservation"]["ok"]
        articles = read_avro(out / "articles") + read_avro(out / "duplicates")
        dead = read_avro(out / "dead_letter")
        assert len(articles) + len(dead) == len(specs)
        for record in articles:
            assert record["input_uri"] in files
        for d in dead:
            assert d["input_uri"] in files
            assert d["raw_payload"] == Path(d["input_uri"]).read_bytes()
