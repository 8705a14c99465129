"""`khabar run` on runners other than the local one (#23 item 5 and 6): dry runs that
translate the whole job offline, runner flags that pass through, runs without metrics,
remote listing under a time limit, the portable runner giving the default's records."""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from apache_beam.options.pipeline_options import SetupOptions
from apache_beam.runners.runner import PipelineResult, PipelineState

from khabar.pipeline.commands.common import parse_run_args
from khabar.pipeline.job import dataflow
from khabar.pipeline.job.run import finish_summary
from tests.compare_runs import differences, run_records
from tests.conftest import GOLDEN_SEEDS, SEEDS, run_khabar

IMAGE = "europe-docker.pkg.dev/khabar-test/khabar/worker:test"
DATAFLOW = [
    "--runner",
    "DataflowRunner",
    "--project",
    "khabar-test",
    "--region",
    "europe-west1",
    "--temp_location",
    "gs://khabar-ra-stage/tmp",
    "--sdk_container_image",
    IMAGE,
    "--no_auth",
    "--dry_run",
    "True",
]


@pytest.fixture(scope="module")
def bucket(gcs_emulator: str) -> str:
    from google.cloud import storage

    client = storage.Client.create_anonymous_client()
    client.project = "khabar-test"
    for name in ("khabar-ra-stage", "khabar-ra-in", "khabar-ra-out"):
        if client.lookup_bucket(name) is None:
            client.create_bucket(name)
    for path in SEEDS.rglob("*"):
        if path.is_file():
            blob = client.bucket("khabar-ra-in").blob(f"seeds/{path.relative_to(SEEDS)}")
            blob.upload_from_filename(str(path))
    return gcs_emulator


def _objects(bucket_name: str) -> list[str]:
    from google.cloud import storage

    client = storage.Client.create_anonymous_client()
    return [b.name for b in client.list_blobs(bucket_name)]


def test_dataflow_dry_run_of_the_batch_job_exits_0_and_writes_nothing(bucket: str) -> None:
    result = run_khabar(
        "run", *DATAFLOW, "--input", "gs://khabar-ra-in/seeds/", "--output", "gs://khabar-ra-out/b"
    )
    assert result.returncode == 0, result.stderr
    files = len([p for p in SEEDS.rglob("*") if p.is_file() and p.name != "README.md"])
    assert f"dry run (batch, runner DataflowRunner, {files} input file(s))" in result.stdout
    assert "nothing ran and nothing was written" in result.stdout
    # khabar's worker defaults, read from the translated job (pipeline/job/dataflow.py)
    assert (
        "Dataflow SDK processes: one per vCPU; harness threads each: "
        f"{dataflow.HARNESS_THREADS}" in result.stdout
    )
    assert "Traceback" not in result.stderr
    assert _objects("khabar-ra-out") == []


def test_dataflow_dry_run_of_the_streaming_job_exits_0(bucket: str) -> None:
    result = run_khabar(
        "run",
        *DATAFLOW,
        "--streaming",
        "--subscription",
        "projects/khabar-test/subscriptions/khabar-in",
        "--output",
        "gs://khabar-ra-out/s",
        "--number_of_worker_harness_threads",
        "6",
    )
    assert result.returncode == 0, result.stderr
    assert "dry run (streaming, runner DataflowRunner)" in result.stdout
    # the user's number of harness threads wins over khabar's default
    assert "harness threads each: 6" in result.stdout
    # dedup state: keys Dataflow can route and update by, and state that is cleared
    assert "stateful steps 4" in result.stdout
    assert "stateful keys: all deterministic" in result.stdout
    assert "stateful state cleared by timers: all" in result.stdout
    assert _objects("khabar-ra-out") == []


def test_a_local_dry_run_translates_and_runs_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_khabar("run", "--input", str(SEEDS), "--output", str(out), "--dry_run", "True")
    assert result.returncode == 0, result.stderr
    assert "dry run (batch, runner DirectRunner" in result.stdout
    assert not out.exists()


RUNNER_MODULE = """
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.runner import PipelineRunner


class ElsewhereOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--elsewhere_endpoint", default=None)


class ElsewhereRunner(PipelineRunner):
    def run_pipeline(self, pipeline, options):
        raise RuntimeError("a dry run must not run")
"""


def test_flags_of_a_runner_pass_through_once_it_is_named(tmp_path: Path) -> None:
    """A runner named by its dotted path brings its own options (Beam registers them when
    its module is imported): they pass through instead of being refused as unknown."""
    (tmp_path / "elsewhere_runner.py").write_text(RUNNER_MODULE, encoding="utf-8")
    env = {"PYTHONPATH": str(tmp_path)}
    common = ["--input", str(SEEDS), "--output", str(tmp_path / "o"), "--dry_run", "True"]
    result = run_khabar(
        "run",
        "--runner",
        "elsewhere_runner.ElsewhereRunner",
        "--elsewhere_endpoint",
        "localhost:8099",
        *common,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "runner elsewhere_runner.ElsewhereRunner" in result.stdout
    unnamed = run_khabar("run", "--elsewhere_endpoint", "localhost:8099", *common, env=env)
    assert unnamed.returncode == 2
    assert "unrecognized arguments: --elsewhere_endpoint" in unnamed.stderr


@pytest.mark.parametrize(
    ("runner", "says"),
    [("DaskRunner", "cannot be loaded here"), ("NoSuchRunner", "is not a Beam runner")],
)
def test_a_runner_that_cannot_load_is_one_line(runner: str, says: str) -> None:
    result = run_khabar(
        "run", "--runner", runner, "--dask_client_address", "x:1", "--input", "s", "--output", "o"
    )
    assert result.returncode == 2
    assert says in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_no_main_session_is_pickled_unless_asked(tmp_path: Path) -> None:
    base = ["--input", str(SEEDS), "--output", str(tmp_path / "o")]
    options, _ = parse_run_args(base)
    assert options.view_as(SetupOptions).save_main_session is False
    options, _ = parse_run_args([*base, "--save_main_session"])
    assert options.view_as(SetupOptions).save_main_session is True


def test_setup_file_route_is_refused_for_dataflow() -> None:
    result = run_khabar(
        "run",
        *DATAFLOW,
        "--setup_file",
        "./setup.py",
        "--input",
        "gs://khabar-ra-in/seeds/",
        "--output",
        "gs://khabar-ra-out/x",
    )
    assert result.returncode == 2
    assert "--setup_file is not supported" in result.stderr


@pytest.fixture()
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers: storage that hangs."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    sock.close()


def test_listing_remote_input_that_hangs_is_one_line_within_the_limit(
    silent_server: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    result = run_khabar(
        "run",
        "--input",
        "gs://khabar-ra-in/seeds/",
        "--output",
        str(tmp_path / "o"),
        env={"STORAGE_EMULATOR_HOST": silent_server, "KHABAR_LIST_TIMEOUT": "3"},
    )
    assert result.returncode == 2
    assert "took more than 3 s" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert time.monotonic() - started < 60


def test_a_runner_without_metrics_is_accounted_from_its_files(
    golden_seeds_run: Path, tmp_path: Path
) -> None:
    """Beam's base ``PipelineResult`` reports no metrics (``NotImplementedError``), as
    some runners do: the summary counts the files and says what it could not check."""
    run = tmp_path / "run"
    shutil.copytree(golden_seeds_run, run)
    options, _ = parse_run_args(["--input", str(SEEDS), "--output", str(run)])
    summary = finish_summary(
        options, PipelineResult(PipelineState.DONE), dt.datetime.now(dt.UTC), {"files": 1}
    )
    counts = summary["counts"]
    assert (counts["articles"], counts["duplicates"], counts["dead_letters"]) == (25, 5, 2)
    assert summary["conservation"]["ok"] is None
    assert "khabar/records_in" in summary["metrics_unreported"]
    assert "did not report" in summary["conservation"]["why"]


def test_the_portable_runner_writes_the_default_runners_records(
    golden_seeds_run: Path, tmp_path: Path
) -> None:
    """The path Flink and Spark job servers take: Beam's portable runner with its embedded
    job server, workers in this process."""
    out = tmp_path / "portable"
    result = run_khabar(
        "run",
        "--input",
        str(GOLDEN_SEEDS),
        "--output",
        str(out),
        "--emit_duplicates",
        "--runner",
        "PortableRunner",
        "--job_endpoint",
        "embed",
        "--environment_type",
        "LOOPBACK",
    )
    assert result.returncode == 0, result.stderr
    assert "[OK]" in result.stdout
    found = differences(run_records(golden_seeds_run), run_records(out))
    assert not found, "\n".join(found)


SHIPPED_MODELS = Path(__file__).resolve().parents[3] / "transforms" / "models" / "ner"


def test_an_entity_model_directory_on_gcs_is_read_through_filesystems(
    bucket: str, golden_seeds_run: Path, tmp_path: Path
) -> None:
    """#23 item 4: ``--entities_model gs://...`` (what the Dataflow template accepts) is
    copied once per worker and gives the records the shipped models give."""
    from google.cloud import storage

    client = storage.Client.create_anonymous_client()
    for path in SHIPPED_MODELS.iterdir():
        client.bucket("khabar-ra-in").blob(f"models/ner/{path.name}").upload_from_filename(
            str(path)
        )
    out = tmp_path / "gcs-model"
    result = run_khabar(
        "run",
        "--input",
        str(GOLDEN_SEEDS),
        "--output",
        str(out),
        "--emit_duplicates",
        "--entities_model",
        "gs://khabar-ra-in/models/ner",
    )
    assert result.returncode == 0, result.stderr
    found = differences(run_records(golden_seeds_run), run_records(out))
    assert not found, "\n".join(found)

    missing = run_khabar(
        "run",
        "--input",
        str(GOLDEN_SEEDS),
        "--output",
        str(tmp_path / "none"),
        "--entities_model",
        "gs://khabar-ra-in/models/nothing-here",
    )
    assert missing.returncode == 2
    assert "no manifest.json in entity model directory gs://khabar-ra-in/models/nothing-here" in (
        missing.stderr
    )


def test_a_clean_run_is_checked_although_some_counters_never_moved(tmp_path: Path) -> None:
    """No dead letter, so ``written_dead_letters`` is never incremented and no runner
    reports it: that is a 0, not a missing metric."""
    source = tmp_path / "clean.jsonl"
    source.write_text(
        '{"title": "First", "body": "A first article about the weather in Tabriz today."}\n'
        '{"title": "Second", "body": "A second article about trains between two cities."}\n',
        encoding="utf-8",
    )
    result = run_khabar("run", "--input", str(source), "--output", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "2 in = 2 written + 0 duplicates + 0 dead letters  [OK]" in result.stdout
