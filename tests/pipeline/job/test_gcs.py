"""gs:// input and output through Beam's GCS filesystem against a real GCS-protocol
server on loopback (gcp-storage-emulator), and clear errors for bad buckets/objects."""

from __future__ import annotations

import os
import subprocess
import sys

import apache_beam as beam
import fastavro
import pytest
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions

from khabar.pipeline.job import gcs
from khabar.pipeline.job.runner import make_runner
from tests.conftest import SHARED, run_khabar


@pytest.fixture(scope="module")
def bucket(gcs_emulator: str) -> str:
    from google.cloud import storage

    client = storage.Client.create_anonymous_client()
    client.project = "khabar-test"
    bucket = client.create_bucket("khabar-gcs-test")
    seed = next((SHARED / "seeds").glob("*.txt"))
    bucket.blob("in/seed.txt").upload_from_filename(str(seed))
    bucket.blob("in/news.jsonl").upload_from_string(
        '{"title": "Storm closes ports", "body": "A storm closed the main ports on Saturday '
        'and ferries were cancelled, the coastguard said in a statement."}\n{"broken": \n'
    )
    return "khabar-gcs-test"


def test_batch_run_from_gs_to_gs(bucket: str) -> None:
    result = run_khabar("run", "--input", f"gs://{bucket}/in/", "--output", f"gs://{bucket}/out")
    assert result.returncode == 0, result.stderr
    assert "conservation: 3 in = 2 written + 0 duplicates + 1 dead letters  [OK]" in result.stdout
    files = [
        m.path for m in FileSystems.match([f"gs://{bucket}/out/articles/*.avro"])[0].metadata_list
    ]
    assert files
    titles = []
    for path in files:
        with FileSystems.open(path) as handle:
            titles += [r["title"] for r in fastavro.reader(handle)]
    assert "Storm closes ports" in titles
    assert any(t.startswith("دیدار و گفت") for t in titles)
    inspect = run_khabar("inspect", f"gs://{bucket}/out/", "--json")
    assert inspect.returncode == 0, inspect.stderr
    assert '"articles": 2' in inspect.stdout and '"dead_letters": 1' in inspect.stdout


def test_missing_bucket_and_object_are_one_line_errors(bucket: str) -> None:
    missing_bucket = run_khabar(
        "run", "--input", "gs://no-such-bucket-x/in/*", "--output", "/tmp/x"
    )
    assert missing_bucket.returncode == 2
    assert missing_bucket.stderr.count("\n") == 1, missing_bucket.stderr
    assert "bucket gs://no-such-bucket-x or the path does not exist" in missing_bucket.stderr
    missing_object = run_khabar(
        "run", "--input", f"gs://{bucket}/in/nothing.jsonl", "--output", "/tmp/x"
    )
    assert missing_object.returncode == 2
    assert "no input files match" in missing_object.stderr
    assert "Traceback" not in missing_object.stderr
    missing_inspect = run_khabar("inspect", f"gs://{bucket}/nothing/")
    assert missing_inspect.returncode == 2
    assert missing_inspect.stderr.strip().count("\n") == 0


def test_permission_error_is_one_clear_line() -> None:
    """A GCS-protocol server that refuses every request (403), as a bucket without the
    reader role does: khabar says so in one line."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Forbidden(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server API
            body = json.dumps(
                {"error": {"code": 403, "message": "caller does not have storage.objects.list"}}
            ).encode()
            self.send_response(403)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Forbidden)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host = f"http://127.0.0.1:{server.server_address[1]}"
        result = run_khabar(
            "run",
            "--input",
            "gs://locked-bucket/in/*.jsonl",
            "--output",
            "/tmp/x",
            env={"STORAGE_EMULATOR_HOST": host},
        )
    finally:
        server.shutdown()
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "permission denied" in result.stderr and "Traceback" not in result.stderr


def test_multi_processing_workers_get_the_emulator_client(monkeypatch, tmp_path) -> None:
    """Importing khabar patches nothing, so a worker process has the emulator client only
    because make_runner named the start-up hook in --beam_plugins (a plain FnApiRunner
    job, without it, is the control: its workers keep Beam's own client)."""
    from apache_beam.io.gcp import gcsio
    from apache_beam.runners.portability.fn_api_runner import fn_runner

    monkeypatch.setenv(gcs.EMULATOR_ENV, "http://127.0.0.1:9")  # never contacted
    # this process gets the patch too (make_runner): undone after the test
    monkeypatch.setattr(gcsio, "create_storage_client", gcsio.create_storage_client)
    argv = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]

    def run(options: PipelineOptions, runner) -> set[tuple[bool, bool]]:
        out = tmp_path / f"seen-{len(list(tmp_path.iterdir()))}"
        with beam.Pipeline(runner=runner, options=options) as p:
            (
                p
                | beam.Create(range(4))
                | beam.Reshuffle()
                | beam.Map(
                    lambda _, parent: f"{gcs.emulator_client_installed()} {os.getpid() != parent}",
                    os.getpid(),
                )
                | beam.io.WriteToText(str(out))
            )
        return {
            tuple(word == "True" for word in line.split())
            for path in tmp_path.glob(f"{out.name}*")
            for line in path.read_text().splitlines()
        }

    plain = PipelineOptions(argv)
    assert run(plain, fn_runner.FnApiRunner()) == {(False, True)}
    options = PipelineOptions(argv)
    assert run(options, make_runner(options)) == {(True, True)}
    assert gcs.WORKER_PLUGIN in options.view_as(SetupOptions).beam_plugins


def test_a_khabar_process_uses_the_emulator_client() -> None:
    """In emulator mode a `khabar` process talks to GCS through the anonymous client (Beam
    would otherwise hunt for credentials for about 26 s first, BEAM-NOTES.md)."""
    script = (
        "from khabar.pipeline import cli\n"
        "cli.main(['inspect', '/nonexistent-khabar-run'])\n"
        "from apache_beam.io.gcp import gcsio\n"
        "print(getattr(gcsio.create_storage_client, '_khabar_emulator', False))\n"
    )
    env = {**os.environ, "STORAGE_EMULATOR_HOST": "http://127.0.0.1:9"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.stdout.strip().splitlines()[-1] == "True", done.stderr
