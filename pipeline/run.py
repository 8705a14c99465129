"""Run a batch job and account for every record (the conservation check)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

import schemas
from pipeline.build import build_batch
from pipeline.options import KhabarOptions
from pipeline.runner import make_runner
from pipeline.sinks import ARTICLES_DIR, DEAD_LETTER_DIR, DUPLICATES_DIR, OUTPUT_DIRS, join
from pipeline.version import PIPELINE_VERSION

SUMMARY_FILE = "_SUMMARY.json"
STAGES = ("read", "parse", "clean", "language", "normalize")


class OutputExists(Exception):
    pass


def prepare_output(output: str, overwrite: bool) -> None:
    """Refuse to mix two runs in one directory, or clear the old run with ``overwrite``."""
    existing: list[str] = []
    for kind in OUTPUT_DIRS:
        try:
            matches = FileSystems.match([join(output, kind, "*")])[0].metadata_list
        except Exception:  # noqa: BLE001 - nothing there
            matches = []
        existing.extend(m.path for m in matches)
    summary = join(output, SUMMARY_FILE)
    if FileSystems.exists(summary):
        existing.append(summary)
    if not existing:
        return
    if not overwrite:
        from pipeline.cli import CliError

        raise CliError(
            f"{output} already holds the output of a run ({len(existing)} files); "
            "use another --output or pass --overwrite to replace it"
        )
    FileSystems.delete(existing)


def runner_name(result: Any) -> str:
    """Name the runner that really ran (the DirectRunner picks one of several)."""
    kind = type(result).__name__
    module = type(result).__module__
    if "fn_api_runner" in module:
        return "FnApiRunner (DirectRunner, batch fast path)"
    if kind == "DirectPipelineResult":
        return "BundleBasedDirectRunner"
    if "dataflow" in module:
        return "DataflowRunner"
    if "prism" in module or "portable" in module:
        return "PrismRunner/portable"
    return kind


def counters(result: Any) -> dict[str, dict[str, int]]:
    """All Beam counters as {namespace: {name: value}} (committed where supported)."""
    out: dict[str, dict[str, int]] = {}
    for counter in result.metrics().query()["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        key = counter.key.metric
        bucket = out.setdefault(key.namespace, {})
        bucket[key.name] = bucket.get(key.name, 0) + int(value or 0)
    return out


def summarize(metrics: dict[str, dict[str, int]]) -> dict[str, Any]:
    k = metrics.get("khabar", {})
    dedup = metrics.get("dedup", {})
    duplicates = k.get("written_duplicates", 0) + k.get("skipped_duplicates", 0)
    counts = {
        "records_in": k.get("records_in", 0),
        "articles": k.get("written_articles", 0),
        "duplicates": duplicates,
        "duplicates_by_content": dedup.get("duplicates_content", 0),
        "duplicates_by_url": dedup.get("duplicates_url", 0),
        "dead_letters": k.get("written_dead_letters", 0),
        "files": k.get("files_read", 0),
    }
    stages = {
        stage: dict(metrics.get("stage." + stage, {"ok": 0, "dead_letter": 0})) for stage in STAGES
    }
    stages["read"]["ok"] = counts["records_in"] - stages["read"].get("dead_letter", 0)
    stages["dedup"] = {"ok": counts["articles"], "duplicates": duplicates}
    languages = dict(sorted(metrics.get("language", {}).items(), key=lambda kv: -kv[1]))
    out_total = counts["articles"] + duplicates + counts["dead_letters"]
    return {
        "counts": counts,
        "stages": stages,
        "languages": languages,
        "conservation": {
            "records_in": counts["records_in"],
            "accounted": out_total,
            "ok": counts["records_in"] == out_total,
        },
    }


def run_batch(options: PipelineOptions, files: list[str]) -> dict[str, Any]:
    khabar = options.view_as(KhabarOptions)
    started = dt.datetime.now(dt.UTC)
    pipeline = beam.Pipeline(runner=make_runner(options), options=options)
    build_batch(
        pipeline,
        files,
        khabar.output,
        input_format=khabar.input_format,
        max_record_bytes=khabar.max_article_bytes,
        emit_duplicates=khabar.emit_duplicates,
        num_shards=khabar.num_shards,
    )
    result = pipeline.run()
    result.wait_until_finish()
    finished = dt.datetime.now(dt.UTC)
    summary = summarize(counters(result))
    summary.update(
        {
            "pipeline_version": PIPELINE_VERSION,
            "schema_versions": {
                "article": schemas.ARTICLE_SCHEMA_VERSION,
                "dead_letter": schemas.DEAD_LETTER_SCHEMA_VERSION,
            },
            "runner": runner_name(result),
            "files": len(files),
            "started_at": started.isoformat(),
            "finished_at": finished.isoformat(),
            "seconds": round((finished - started).total_seconds(), 3),
            "options": {
                k: v
                for k, v in options.get_all_options(drop_default=True).items()
                if isinstance(v, (str, int, float, bool, list, type(None)))
            }
            | {"emit_duplicates": khabar.emit_duplicates},
            "outputs": {
                "articles": join(khabar.output, ARTICLES_DIR) + "/",
                "duplicates": join(khabar.output, DUPLICATES_DIR) + "/",
                "dead_letter": join(khabar.output, DEAD_LETTER_DIR) + "/",
                "summary": join(khabar.output, SUMMARY_FILE),
            },
        }
    )
    with FileSystems.create(join(khabar.output, SUMMARY_FILE)) as handle:
        handle.write(json.dumps(summary, ensure_ascii=False, indent=2).encode("utf-8"))
    return summary
