"""Dataflow deployment, offline.

1. ``deploy/metadata.json`` is what ``khabar.pipeline.job.dataflow`` generates from the options now,
   and every parameter has help and a regex that accepts its default.
2. Graph parity: the real ``DataflowRunner`` builds the whole job for batch and for
   streaming, stages it to a GCS-protocol server on loopback (``gcs_emulator``) and, with
   ``--template_location``, writes the job description to a local file instead of
   submitting it. Nothing is intercepted or patched: that is Beam's own code path for
   creating a (classic) template, and the one a Flex Template launcher drives. Runner v2
   jobs carry their graph as the staged ``pipeline.pb`` (the job JSON has no steps), so
   the test reads that object back from the bucket, exactly as Dataflow would, and checks
   the steps, their wiring, the Pub/Sub source, the stateful dedup, the windowing, and
   that workers run the given image with nothing else to install. The job that
   ``khabar deploy launch`` submits is also compared with the one ``khabar run`` builds.
3. Bad Dataflow options are refused with one line, before any job is built.

``--no_auth``: without it Beam looks up Google default credentials (metadata server
retries, about 26 s, and there are none here). With it Beam's Dataflow client and its
staging GCS client are anonymous, which the emulator accepts; the only trace it leaves
in the job is the option itself.
"""

from __future__ import annotations

import argparse
import base64
import bz2
import json
import re
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.internal import pickler
from apache_beam.io.filesystems import FileSystems
from apache_beam.portability import common_urns
from apache_beam.portability.api import beam_runner_api_pb2, standard_window_fns_pb2

from khabar.pipeline.commands import deploy
from khabar.pipeline.commands.common import parse_run_args
from khabar.pipeline.job import dataflow
from tests.conftest import ROOT, SEEDS

IMAGE = "europe-docker.pkg.dev/khabar-test/khabar/worker:test"
STAGE = "khabar-deploy-stage"
INPUT = "khabar-deploy-in"
OUTPUT = "khabar-deploy-out"
SUBSCRIPTION = "projects/khabar-test/subscriptions/khabar-raw"
SEED_FILES = ("text/001_tabriz_metro.txt", "jsonl/news.jsonl", "feeds/shahrkhabar_rss.xml")
# What Dataflow may stage beside the graph: Beam's record of the submitting environment.
# No SDK tarball, no pickled main session, no requirements, setup.py or extra packages:
# workers install nothing, everything is in the image.
ALLOWED_PACKAGES = {"submission_environment_dependencies.txt"}


def dataflow_args(job_name: str, template: Path | None = None) -> list[str]:
    args = [
        "--runner",
        "DataflowRunner",
        "--project",
        "khabar-test",
        "--region",
        "europe-west1",
        "--temp_location",
        f"gs://{STAGE}/tmp",
        "--staging_location",
        f"gs://{STAGE}/staging",
        "--sdk_container_image",
        IMAGE,
        "--sdk_location",
        "container",
        "--no_auth",
        "--job_name",
        job_name,
    ]
    if template is not None:
        args += ["--template_location", str(template)]
    return args


def batch_args(job_name: str, template: Path | None = None) -> list[str]:
    return [
        *dataflow_args(job_name, template),
        "--input",
        f"gs://{INPUT}/seeds/",
        "--output",
        f"gs://{OUTPUT}/{job_name}",
    ]


def streaming_args(job_name: str, template: Path | None = None) -> list[str]:
    return [
        *dataflow_args(job_name, template),
        "--streaming",
        "--subscription",
        SUBSCRIPTION,
        "--output",
        f"gs://{OUTPUT}/{job_name}",
        "--window_seconds",
        "120",
        "--allowed_lateness",
        "600",
        "--dedup_ttl",
        "86400",
    ]


@pytest.fixture(scope="module")
def buckets(gcs_emulator: str) -> str:
    from google.cloud import storage

    client = storage.Client.create_anonymous_client()
    client.project = "khabar-test"
    for name in (STAGE, INPUT, OUTPUT):
        if client.lookup_bucket(name) is None:
            client.create_bucket(name)
    for rel in SEED_FILES:
        client.bucket(INPUT).blob(f"seeds/{rel}").upload_from_filename(str(SEEDS / rel))
    return gcs_emulator


@pytest.fixture(autouse=True)
def no_worker_image_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(dataflow.WORKER_IMAGE_ENV, raising=False)


# --------------------------------------------------------------------------- helpers


class Graph:
    """The Runner API graph Dataflow would run, read back from the staging bucket."""

    def __init__(self, job: dict[str, Any]) -> None:
        self.job = job
        self.options = job["environment"]["sdkPipelineOptions"]["options"]
        self.url = self.options["pipelineUrl"]
        with FileSystems.open(self.url) as handle:
            self.raw = handle.read()
        self.proto = beam_runner_api_pb2.Pipeline.FromString(self.raw)
        self.by_name = {t.unique_name: t for t in self.proto.components.transforms.values()}

    def transform(self, name: str) -> beam_runner_api_pb2.PTransform:
        assert name in self.by_name, f"no step {name!r} in the job"
        return self.by_name[name]

    def feeds(self, upstream: str, downstream: str) -> bool:
        outputs = set(self.transform(upstream).outputs.values())
        return bool(outputs & set(self.transform(downstream).inputs.values()))

    def leaf(self, composite: str, urn: str) -> beam_runner_api_pb2.PTransform:
        for name, transform in self.by_name.items():
            if name.startswith(composite + "/") and transform.spec.urn == urn:
                return transform
        raise AssertionError(f"no {urn} step under {composite}")

    def pickled_code(self) -> bytes:
        """Every DoFn of the job as raw pickle bytes (Beam compresses and base64s them)."""
        chunks = []
        for transform in self.by_name.values():
            if transform.spec.urn != common_urns.primitives.PAR_DO.urn:
                continue
            packed = base64.b64decode(
                beam_runner_api_pb2.ParDoPayload.FromString(transform.spec.payload).do_fn.payload
            )
            try:
                chunks.append(zlib.decompress(packed))
            except zlib.error:
                chunks.append(bz2.decompress(packed))
        return b"".join(chunks)

    def windowing(self, name: str) -> beam_runner_api_pb2.WindowingStrategy:
        (pcoll_id,) = self.transform(name).outputs.values()
        pcoll = self.proto.components.pcollections[pcoll_id]
        return self.proto.components.windowing_strategies[pcoll.windowing_strategy_id]


def load_job(path: Path) -> Graph:
    job = json.loads(path.read_text(encoding="utf-8"))
    return Graph(job)


def assert_runs_on_image_only(graph: Graph) -> None:
    pools = graph.job["environment"]["workerPools"]
    images = {c["containerImage"] for pool in pools for c in pool["sdkHarnessContainerImages"]}
    assert images == {IMAGE}
    staged = {p["name"] for pool in pools for p in pool.get("packages", [])}
    assert staged <= ALLOWED_PACKAGES, f"workers would install {staged - ALLOWED_PACKAGES}"
    assert graph.options["sdk_container_image"] == IMAGE
    assert graph.options["save_main_session"] is False
    assert graph.url.startswith(f"gs://{STAGE}/staging/")
    for env in graph.proto.components.environments.values():
        assert env.urn == common_urns.environments.DOCKER.urn
        docker = beam_runner_api_pb2.DockerPayload.FromString(env.payload)
        assert docker.container_image == IMAGE
        for dep in env.dependencies:
            url = beam_runner_api_pb2.ArtifactUrlPayload.FromString(dep.type_payload).url
            assert url.rsplit("/", 1)[-1] in ALLOWED_PACKAGES, url


def assert_worker_threads(graph: Graph, threads: int) -> None:
    """One Python SDK process per vCPU (Dataflow's default, kept), ``threads`` bundles at a
    time in each: in the job's options and in the worker pool Dataflow would create."""
    experiments = graph.job["environment"]["experiments"]
    assert "use_multiple_sdk_containers" in experiments
    assert "no_use_multiple_sdk_containers" not in experiments
    assert graph.options["number_of_worker_harness_threads"] == threads
    pools = graph.job["environment"]["workerPools"]
    assert [pool["numThreadsPerWorker"] for pool in pools] == [threads] * len(pools)


STAGE_CHAIN = [
    "Process/Stages/Parse",
    "Process/Stages/Clean",
    "Process/Stages/Language",
    "Process/Stages/Normalize",
    "Process/Stages/Entities",
    "Process/Dedup",
]
#: Batch: articles wait in work files while dedup decides on their keys; entities are
#: tagged on the survivors, once the decisions are applied.
BATCH_CHAIN = [
    *STAGE_CHAIN[:4],
    "Process/SetAside",
    "Process/ShinglesAside",
    "Process/Dedup",
    "Process/KeyById",
    "Process/JoinShingles",
    "Process/WithShingles",
    "Process/NearDedup",
    "Process/KeepDecision",
    "Process/Decisions",
]
#: ... and the articles set aside get the decisions (a side input) when read back.
APPLY_CHAIN = [
    "Process/SetAside",
    "Process/SpreadWorkFiles",
    "Process/Apply",
    "Process/Entities",
    "WriteArticles",
]


# --------------------------------------------------------------------------- 1 metadata


def test_metadata_json_is_generated_from_the_options() -> None:
    kept = (ROOT / "deploy" / "metadata.json").read_text(encoding="utf-8")
    assert kept == dataflow.metadata_json(), (
        "deploy/metadata.json is stale: "
        "python -m khabar.pipeline.commands.deploy metadata > deploy/metadata.json"
    )
    assert deploy.main(["metadata", "--check", str(ROOT / "deploy" / "metadata.json")]) == 0


def test_every_option_is_a_parameter_with_help_and_regex() -> None:
    from khabar.pipeline.job.options import KhabarOptions

    parameters = json.loads((ROOT / "deploy" / "metadata.json").read_text())["parameters"]
    names = [p["name"] for p in parameters]
    assert len(names) == len(set(names))
    parser = argparse.ArgumentParser(add_help=False)
    KhabarOptions._add_argparse_args(parser)
    flags = {a.option_strings[0][2:] for a in parser._actions if a.option_strings}
    assert flags - set(dataflow.NOT_PARAMETERS) == set(names) - set(dataflow.BEAM_PARAMETERS)
    for parameter in parameters:
        assert parameter["helpText"].strip(), parameter["name"]
        assert parameter["label"].strip(), parameter["name"]
        assert parameter["regexes"], parameter["name"]
        for regex in parameter["regexes"]:
            re.compile(regex)
        if "defaultValue" in parameter:
            assert re.fullmatch(parameter["regexes"][0], parameter["defaultValue"]), parameter
    by_name = {p["name"]: p for p in parameters}
    assert by_name["output"]["isOptional"] is False
    assert by_name["subscription"]["paramType"] == "PUBSUB_SUBSCRIPTION"
    assert by_name["streaming"]["paramType"] == "BOOLEAN"


@pytest.mark.parametrize(
    ("name", "good", "bad"),
    [
        ("input", ["gs://khabar-in/seeds/", "gs://khabar-in/a/*.jsonl"], ["seeds/", "gs:/b/x"]),
        ("output", ["gs://khabar-out/run1", "gs://khabar-out"], ["gs://Bad_Bucket/x", "/tmp"]),
        ("subscription", [SUBSCRIPTION], ["projects/p/topics/t", "projects/khabar/subs/x"]),
        ("window_seconds", ["60", "3600"], ["0", "-5", "1.5"]),
        ("num_shards", ["0", "8"], ["-1", "x"]),
        ("format", ["auto", "jsonl"], ["docx", ""]),
        ("emit_duplicates", ["true", "false"], ["yes", "1"]),
    ],
)
def test_parameter_regexes(name: str, good: list[str], bad: list[str]) -> None:
    (parameter,) = [p for p in dataflow.template_parameters() if p["name"] == name]
    (regex,) = parameter["regexes"]
    for value in good:
        assert re.fullmatch(regex, value), (name, value)
    for value in bad:
        assert not re.fullmatch(regex, value), (name, value)


# --------------------------------------------------------------------------- 2 graph parity


def test_batch_job_for_dataflow(buckets: str, tmp_path: Path) -> None:
    template = tmp_path / "batch-job.json"
    outcome = deploy.launch(batch_args("khabar-batch-test", template))
    assert outcome["mode"] == "batch" and outcome["files"] == len(SEED_FILES)
    assert outcome["job_id"] is None  # written, not submitted
    graph = load_job(template)
    assert graph.job["name"] == "khabar-batch-test"
    assert graph.job["type"] == "JOB_TYPE_BATCH"
    assert graph.options["runner"] == "DataflowRunner"
    assert graph.options["output"] == f"gs://{OUTPUT}/khabar-batch-test"
    assert_runs_on_image_only(graph)
    assert_worker_threads(graph, dataflow.HARNESS_THREADS)  # khabar's default

    for step in ["Read/Split", *BATCH_CHAIN, *APPLY_CHAIN, "AllDeadLetters", "WriteDeadLetters"]:
        graph.transform(step)
    assert "CountDuplicates" in graph.by_name  # --emit_duplicates off: counted, not written
    assert "WriteDuplicates" not in graph.by_name
    # the decisions reach the reading step as its side input
    side = "Process/Apply/Read/ParDo(ApplyDecisionsFn)"
    for chain in (["Read/Split", *BATCH_CHAIN, side], APPLY_CHAIN):
        for upstream, downstream in zip(chain, chain[1:], strict=False):
            assert graph.feeds(upstream, downstream), f"{upstream} does not feed {downstream}"
    assert graph.feeds("Process/Dedup", "Process/LinkExact")  # exact copies follow clusters
    assert graph.feeds("Process/NearOutputs", "Process/LinkExact")
    assert graph.feeds("Read/Split", "AllDeadLetters")
    assert graph.feeds("Process/Apply", "Process/RemoveWorkDir")
    # a reshuffle after the read: files, then their line ranges, spread over the workers
    for upstream, downstream in (
        ("Read/Reshuffle", "Read/Plan"),
        ("Read/Plan", "Read/SpreadRanges"),
        ("Read/SpreadRanges", "Read/Split"),
    ):
        assert graph.feeds(upstream, downstream), f"{upstream} does not feed {downstream}"
    assert "Process/Stages/Entities" not in graph.by_name  # tagged after dedup only
    assert graph.feeds("Process/Stages/StageDeadLetters", "Process/DeadLetters")
    assert graph.feeds("Process/DeadLetters", "AllDeadLetters")
    assert graph.feeds("AllDeadLetters", "WriteDeadLetters")
    # The inputs were expanded on the launcher (against the bucket) and baked into the job.
    for rel in SEED_FILES:
        assert f"gs://{INPUT}/seeds/{rel}".encode() in graph.pickled_code(), rel
    assert all(
        t.spec.urn != common_urns.composites.PUBSUB_READ.urn for t in graph.by_name.values()
    )


def test_streaming_job_for_dataflow(buckets: str, tmp_path: Path) -> None:
    template = tmp_path / "streaming-job.json"
    # a template parameter as the Flex launcher passes it: the user's value wins
    args = [*streaming_args("khabar-stream-test", template), "--number_of_worker_harness_threads=6"]
    outcome = deploy.launch(args)
    assert outcome["mode"] == "streaming" and outcome["job_id"] is None
    graph = load_job(template)
    assert graph.job["type"] == "JOB_TYPE_STREAMING"
    assert "enable_streaming_engine" in graph.job["environment"]["experiments"]
    assert_runs_on_image_only(graph)
    assert_worker_threads(graph, 6)

    # Dataflow's own Pub/Sub source, on our subscription, with the poller's attributes.
    read = graph.leaf("ReadPubSub", common_urns.composites.PUBSUB_READ.urn)
    payload = beam_runner_api_pb2.PubSubReadPayload.FromString(read.spec.payload)
    assert payload.subscription == SUBSCRIPTION and payload.with_attributes
    # At-least-once delivery, exactly-once files: Dataflow drops publisher retries of an
    # item (same poller item key, within 10 minutes) by the id attribute ...
    assert payload.id_attribute == "khabar_item"

    chain = [
        "ReadPubSub",
        "Expand",
        *STAGE_CHAIN[:-1],
        "Process/Dedup/Fingerprint",
        "Process/Dedup/KeyByFingerprint",
        "Process/Dedup/FirstByFingerprint",
        "Process/Dedup/KeyByUrl",
        "Process/Dedup/FirstByUrl",
        "Process/NearDedup/Sketch",
        "Process/NearDedup/CompareInBand",
        "Process/NearDedup/ArticlesAndVotes",
        "Process/NearDedup/Decide",
        "Process/WindowArticles",
        "WriteArticles",
    ]
    for upstream, downstream in zip(chain, chain[1:], strict=False):
        assert graph.feeds(upstream, downstream), f"{upstream} does not feed {downstream}"
    assert graph.feeds("Process/WindowDuplicates", "WriteDuplicates")
    assert graph.feeds("Expand", "WindowReadDead")
    assert graph.feeds("AllDeadLetters", "WriteDeadLetters")

    # Stateful dedup with its TTL timer, and the TTL given on the command line.
    for name in ("Process/Dedup/FirstByFingerprint", "Process/Dedup/FirstByUrl"):
        pardo = graph.leaf(name, common_urns.primitives.PAR_DO.urn)
        spec = beam_runner_api_pb2.ParDoPayload.FromString(pardo.spec.payload)
        assert "first" in spec.state_specs and spec.timer_family_specs, name
        first_seen = pickler.loads(spec.do_fn.payload)[0]
        assert first_seen.ttl == 86400
        # ... and later redeliveries (same item key or record id, within the TTL) are
        # dropped by the dedup state, counted in dedup.redelivered_*, not written.
        assert hasattr(first_seen, "redelivered"), name
    # near-duplicates: band buckets and per-article votes in state with their TTL timer
    for name, state, owner in (
        ("Process/NearDedup/CompareInBand", "members", "ttl"),
        ("Process/NearDedup/Decide", "seen", "ttl"),
    ):
        pardo = graph.transform(name)
        if pardo.spec.urn != common_urns.primitives.PAR_DO.urn:  # a ParDo with outputs
            pardo = graph.leaf(name, common_urns.primitives.PAR_DO.urn)
        spec = beam_runner_api_pb2.ParDoPayload.FromString(pardo.spec.payload)
        assert state in spec.state_specs and spec.timer_family_specs, name
        assert getattr(pickler.loads(spec.do_fn.payload)[0], owner) == 86400, name
    # every stateful step: keys with a deterministic coder (state is found by the encoded
    # key, also across an --update)
    stateful = [
        (name, t)
        for name, t in graph.by_name.items()
        if t.spec.urn == common_urns.primitives.PAR_DO.urn
        and beam_runner_api_pb2.ParDoPayload.FromString(t.spec.payload).state_specs
    ]
    assert len(stateful) == 4, [name for name, _ in stateful]
    for name, pardo in stateful:
        (pcoll_id,) = pardo.inputs.values()
        kv = graph.proto.components.coders[graph.proto.components.pcollections[pcoll_id].coder_id]
        assert kv.spec.urn == common_urns.coders.KV.urn, name
        key = graph.proto.components.coders[kv.component_coder_ids[0]]
        assert key.spec.urn == common_urns.coders.STRING_UTF8.urn, (name, key.spec.urn)

    # Arrival-time windows: --window_seconds 120, --allowed_lateness 600; late records (if
    # any) gathered for a while into one more pane, not a pane each.
    for name in ("Process/WindowArticles", "Process/WindowDuplicates", "WindowReadDead"):
        strategy = graph.windowing(name)
        assert strategy.window_fn.urn == common_urns.fixed_windows.urn
        fixed = standard_window_fns_pb2.FixedWindowsPayload.FromString(strategy.window_fn.payload)
        assert fixed.size.seconds == 120, name
        assert strategy.allowed_lateness == 600_000, name
        assert strategy.trigger.HasField("after_end_of_window"), name
        late = strategy.trigger.after_end_of_window.late_firings
        assert late.HasField("after_processing_time"), name
        (delay,) = late.after_processing_time.timestamp_transforms
        assert delay.delay.delay_millis == 10_000, name
    # one grouping per firing, one file per window, pane and shard
    for kind in ("WriteArticles", "WriteDuplicates", "WriteDeadLetters"):
        assert graph.feeds(f"{kind}/Shard", f"{kind}/GroupPanes"), kind
        assert graph.feeds(f"{kind}/GroupPanes", f"{kind}/WritePanes"), kind
        assert not any(n.startswith(f"{kind}/Write/") for n in graph.by_name), kind


class _Built(Exception):
    """Raised instead of running a pipeline: the graph is captured, nothing runs."""


def _capture_runs(monkeypatch: pytest.MonkeyPatch) -> list[beam.Pipeline]:
    captured: list[beam.Pipeline] = []

    def capture(self: beam.Pipeline, *args: Any, **kwargs: Any) -> None:
        captured.append(self)
        raise _Built

    monkeypatch.setattr(beam.Pipeline, "run", capture)
    return captured


def _shape(p: beam.Pipeline) -> dict[str, tuple[str, bytes, tuple, tuple]]:
    proto = p.to_runner_api()
    return {
        t.unique_name: (t.spec.urn, t.spec.payload, tuple(sorted(t.inputs)), tuple(t.outputs))
        for t in proto.components.transforms.values()
    }


@pytest.mark.parametrize("mode", ["batch", "streaming"])
def test_launch_submits_the_graph_khabar_run_builds(
    mode: str, buckets: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from khabar.pipeline.job.run import run_batch, run_streaming
    from khabar.pipeline.stages.sources import expand_inputs

    argv = batch_args("khabar-parity") if mode == "batch" else streaming_args("khabar-parity")
    captured = _capture_runs(monkeypatch)
    with pytest.raises(_Built):
        deploy.launch(argv)
    for _ in range(2):  # twice: payloads that differ between two identical builds
        options, khabar = parse_run_args(dataflow.launch_args(argv))
        with pytest.raises(_Built):
            if mode == "batch":
                run_batch(options, expand_inputs(khabar.input))
            else:
                run_streaming(options)
    launched, run_once, run_again = (_shape(p) for p in captured)
    assert launched.keys() == run_once.keys()
    unstable = {name for name in run_once if run_once[name][1] != run_again[name][1]}
    assert len(unstable) < len(run_once) / 10, unstable  # a few random-keyed reshuffles
    for name, (urn, payload, inputs, outputs) in run_once.items():
        assert launched[name][0] == urn, name
        assert launched[name][2:] == (inputs, outputs), name
        if name not in unstable:
            assert launched[name][1] == payload, f"{name}: launch and run build it differently"


# --------------------------------------------------------------------------- 3 bad options


GOOD = [
    "--runner",
    "DataflowRunner",
    "--project",
    "khabar-test",
    "--region",
    "europe-west1",
    "--temp_location",
    f"gs://{STAGE}/tmp",
    "--sdk_container_image",
    IMAGE,
    "--input",
    f"gs://{INPUT}/seeds/",
    "--output",
    f"gs://{OUTPUT}/checked",
]


def _without(args: list[str], flag: str) -> list[str]:
    i = args.index(flag)
    return args[:i] + args[i + 2 :]


def _with(args: list[str], flag: str, value: str) -> list[str]:
    i = args.index(flag)
    return [*args[: i + 1], value, *args[i + 2 :]]


STREAM_GOOD = [*_without(GOOD, "--input"), "--streaming", "--subscription", SUBSCRIPTION]

BAD = [
    (_without(GOOD, "--temp_location"), "needs --temp_location gs://BUCKET/tmp"),
    (_without(GOOD, "--region"), "needs --region"),
    (_without(GOOD, "--project"), "needs --project"),
    (_with(GOOD, "--project", "123456789"), "is not a project id"),
    (_with(GOOD, "--temp_location", "gs://Bad_Bucket/tmp"), "not a valid Cloud Storage path"),
    (_with(GOOD, "--temp_location", f"gs://{STAGE}"), "expected gs://BUCKET/PATH"),
    (_with(GOOD, "--temp_location", "/tmp/khabar"), "on Cloud Storage"),
    (_with(GOOD, "--output", "gs:/khabar-out/x"), "--output 'gs:/khabar-out/x' is not a valid"),
    (_with(GOOD, "--input", "seeds/"), "Dataflow workers cannot read local files"),
    (_with(GOOD, "--output", "out/run"), "Dataflow workers write to gs:// only"),
    (_without(GOOD, "--sdk_container_image"), "needs --sdk_container_image"),
    ([*GOOD, "--format", "docx"], "invalid choice: 'docx'"),
    ([*GOOD, "--job_name", "Nightly_Run"], "--job_name 'Nightly_Run'"),
    ([*GOOD, "--num_workers", "5", "--max_num_workers", "2"], "more than --max_num_workers"),
    (_with(STREAM_GOOD, "--subscription", "projects/khabar-test/subscriptions/9x"), "Pub/Sub"),
    ([*STREAM_GOOD, "--max_runtime", "60"], "--max_runtime does not apply on Dataflow"),
    ([*STREAM_GOOD, "--update"], "--update needs --job_name"),
]


@pytest.mark.parametrize(("argv", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_dataflow_options_are_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert deploy.main(["check", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("khabar deploy check: error: "), err
    assert message in err


def test_good_dataflow_options_pass_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert deploy.main(["check", *GOOD]) == 0
    assert "ok (batch, DataflowRunner, project khabar-test" in capsys.readouterr().out
    assert deploy.main(["check", *STREAM_GOOD]) == 0
    assert "ok (streaming, DataflowRunner" in capsys.readouterr().out
    # Local runs only get the gs:// syntax check.
    assert deploy.main(["check", "--input", "seeds/", "--output", "out/x"]) == 0
    assert deploy.main(["check", "--input", "gs:/seeds", "--output", "out/x"]) == 2


def test_launch_refuses_before_building_a_job(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_job(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a job was built despite bad options")

    monkeypatch.setattr(deploy, "construct", no_job)
    monkeypatch.setattr(beam.Pipeline, "__init__", no_job)
    assert deploy.main(["launch", *_without(GOOD, "--temp_location")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs --temp_location" in err


def test_check_from_a_shell_is_one_line() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "khabar.pipeline.commands.deploy",
            "check",
            *_without(GOOD, "--region"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert "--runner DataflowRunner needs --region" in result.stderr


# --------------------------------------------------------------------------- launcher args


def test_flex_arguments_become_khabar_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    flex = ["--output=gs://b/o", "--streaming=true", "--emit_duplicates=false", "--overwrite=TRUE"]
    assert dataflow.normalize_flex_args(flex) == ["--output=gs://b/o", "--streaming", "--overwrite"]
    monkeypatch.setenv(dataflow.WORKER_IMAGE_ENV, IMAGE)
    args = dataflow.launch_args(["--output=gs://b/o"])
    assert "--runner=DataflowRunner" in args
    assert f"--sdk_container_image={IMAGE}" in args
    assert "--no_save_main_session" in args
    given = dataflow.launch_args(["--sdk_container_image=other:1", "--runner=DirectRunner"])
    assert f"--sdk_container_image={IMAGE}" not in given and "--runner=DataflowRunner" not in given


def _harness_threads(argv: list[str]) -> int | None:
    from apache_beam.options.pipeline_options import DebugOptions

    options, _ = parse_run_args(argv)
    return options.view_as(DebugOptions).number_of_worker_harness_threads


def test_harness_threads_default_on_dataflow_only_and_a_given_value_wins() -> None:
    args = batch_args("khabar-threads")
    assert _harness_threads(args) == dataflow.HARNESS_THREADS
    for given in ("1", "4", "0"):  # 0: Dataflow chooses (Beam then sends no number)
        assert _harness_threads([*args, "--number_of_worker_harness_threads", given]) == int(given)
        flex = dataflow.launch_args([*args, f"--number_of_worker_harness_threads={given}"])
        assert _harness_threads(flex) == int(given)
    local = ["--input", str(SEEDS), "--output", "/tmp/khabar-threads-out"]
    assert _harness_threads(local) is None  # other runners: untouched
    (parameter,) = [
        p for p in dataflow.template_parameters() if p["name"] == "number_of_worker_harness_threads"
    ]
    assert parameter["isOptional"] and str(dataflow.HARNESS_THREADS) in parameter["helpText"]
    assert re.fullmatch(parameter["regexes"][0], "0") and not re.fullmatch(
        parameter["regexes"][0], "-1"
    )


def test_worker_image_pins_the_numeric_libraries() -> None:
    # Dataflow's SDK processes never run the `khabar` dispatcher (pin_numeric_threads):
    # the worker image sets the variables the libraries read when they load.
    from khabar.pipeline.job.threads import THREAD_VARIABLES

    dockerfile = (ROOT / "deploy" / "Dockerfile.worker").read_text(encoding="utf-8")
    env = dict(re.findall(r"\b([A-Z_]+_THREADS)=(\S+)", dockerfile))
    linux = [name for name in THREAD_VARIABLES if name != "VECLIB_MAXIMUM_THREADS"]  # macOS
    assert {name: env.get(name) for name in linux} == dict.fromkeys(linux, "1")


def _labels(pipeline) -> set[str]:
    proto = pipeline.to_runner_api()
    return {t.unique_name for t in proto.components.transforms.values()}


@pytest.mark.parametrize(("near", "present"), [("on", True), ("off", False)])
def test_construct_honours_the_job_options(tmp_path: Path, near: str, present: bool) -> None:
    # the launcher builds the graph with the same builder as `khabar run`, options included
    from apache_beam.options.pipeline_options import PipelineOptions

    seed = str(ROOT / "seeds" / "000_3016482c832c8a52.txt")
    options = PipelineOptions(["--output", str(tmp_path / "out"), "--near_dedup", near])
    labels = _labels(dataflow.construct(options, [seed]))
    assert any("NearDedup" in label for label in labels) is present
