"""``khabar inspect``: what is in a run's Avro output, for people and for machines."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import fastavro
from apache_beam.io.filesystems import FileSystems

from khabar.pipeline.commands.drift import drift_report, format_drift
from khabar.pipeline.errors import CliError
from khabar.pipeline.job.options import Parser
from khabar.pipeline.stages.sinks import ARTICLES_DIR, DEAD_LETTER_DIR, DUPLICATES_DIR, join

TOP = 10


class InspectError(Exception):
    pass


def _match(pattern: str) -> list[str]:
    try:
        return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
    except Exception:  # noqa: BLE001 - no match
        return []


def _is_avro_file(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name.endswith(".avro") and not name.startswith((".", "_"))


def discover(paths: list[str]) -> tuple[list[str], str | None]:
    """Avro files under run directories, files or globs; and a run's _SUMMARY.json."""
    files: list[str] = []
    summary = None
    for path in paths:
        if path.endswith(".avro") or any(ch in path for ch in "*?["):
            found = [p for p in _match(path) if _is_avro_file(p)]
        else:
            base = path.rstrip("/")
            found = []
            for kind in (ARTICLES_DIR, DUPLICATES_DIR, DEAD_LETTER_DIR):
                # batch: kind/*.avro; streaming: kind/date=YYYY-MM-DD/*.avro
                for pattern in (join(base, kind, "*.avro"), join(base, kind, "date=*", "*.avro")):
                    found += [p for p in _match(pattern) if _is_avro_file(p)]
            if not found:
                found = [p for p in _match(join(base, "*.avro")) if _is_avro_file(p)]
            if FileSystems.exists(join(base, "_SUMMARY.json")):
                summary = join(base, "_SUMMARY.json")
        if not found:
            raise InspectError(f"no khabar Avro files found at {path}")
        files += found
    return sorted(set(files)), summary


def read_records(path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(schema name, record) for every record of one Avro file."""
    with FileSystems.open(path) as handle:
        try:
            reader = fastavro.reader(handle)
        except Exception as exc:  # noqa: BLE001
            raise InspectError(f"{path} is not an Avro file: {exc}") from None
        name = str(reader.writer_schema.get("name", "")).rsplit(".", 1)[-1]
        for record in reader:
            yield name, record


def _short(text: str | None, n: int = 120) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= n else text[: n - 1] + "…"


def inspect_paths(paths: list[str], samples: int = 3) -> dict[str, Any]:
    files, summary_path = discover(paths)
    languages: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    formats: Counter[str] = Counter()
    dup_reasons: Counter[str] = Counter()
    dl_stage: Counter[str] = Counter()
    dl_type: Counter[str] = Counter()
    schema_versions: Counter[str] = Counter()
    n_articles = n_dups = n_dead = 0
    sample_articles: list[dict[str, Any]] = []
    entity_types: Counter[str] = Counter()
    entity_texts: dict[str, Counter[str]] = {}
    cluster_sizes: Counter[str] = Counter()
    cluster_sources: dict[str, set[str]] = {}
    survivor_titles: dict[str, str] = {}
    sample_dead: list[dict[str, Any]] = []
    for path in files:
        for name, record in read_records(path):
            schema_versions[f"{name} v{record.get('schema_version', '?')}"] += 1
            if name == "DeadLetter":
                n_dead += 1
                dl_stage[record["stage"]] += 1
                dl_type[f"{record['stage']}/{record['error_type']}"] += 1
                if len(sample_dead) < samples:
                    sample_dead.append(
                        {
                            "stage": record["stage"],
                            "error_type": record["error_type"],
                            "error_message": _short(record["error_message"], 160),
                            "input_uri": record["input_uri"],
                            "position": record.get("position"),
                            "raw_bytes": len(record["raw_payload"]),
                        }
                    )
                continue
            cluster = record.get("cluster_id") or record.get("canonical_id") or record["id"]
            cluster_sizes[cluster] += 1
            cluster_sources.setdefault(cluster, set()).add(record.get("source") or "(unknown)")
            if record["id"] == cluster:
                survivor_titles[cluster] = record["title"]
            if record.get("duplicate_of"):
                n_dups += 1
                dup_reasons[record.get("duplicate_reason") or "?"] += 1
                continue
            n_articles += 1
            for entity in record.get("entities") or []:
                entity_types[entity["type"]] += 1
                entity_texts.setdefault(entity["type"], Counter())[entity["text"]] += 1
            languages[record["language"]] += 1
            sources[record.get("source") or "(unknown)"] += 1
            formats[record.get("input_format") or "?"] += 1
            if len(sample_articles) < samples:
                published = record.get("published_at")
                sample_articles.append(
                    {
                        "id": record["id"],
                        "language": f"{record['language']} ({record['language_confidence']:.2f},"
                        f" {record['script']})",
                        "source": record.get("source"),
                        "published_at": published.isoformat() if published else None,
                        "url": record.get("url"),
                        "title": _short(record["title"]),
                        "body": _short(record["body"]),
                        "input": f"{record['input_uri']}#{record['input_position']}",
                        "entities": [
                            f"{e['text']} ({e['type']})"
                            for e in (record.get("entities") or [])
                            if e["field"] in ("title", "lead", "body")
                        ][:10],
                    }
                )
    report: dict[str, Any] = {
        "files": len(files),
        "schema_versions": dict(schema_versions),
        "articles": n_articles,
        "duplicates_written": n_dups,
        "dead_letters": n_dead,
        "languages": dict(languages.most_common()),
        "sources": dict(sources.most_common(TOP)),
        "sources_all": dict(sources.most_common()),
        "formats": dict(formats.most_common()),
        "duplicates_by_reason": dict(dup_reasons),
        "dead_letters_by_stage": dict(dl_stage.most_common()),
        "dead_letters_by_error": dict(dl_type.most_common()),
        "entities_by_type": dict(entity_types.most_common()),
        "top_entities": {
            kind: dict(texts.most_common(5)) for kind, texts in sorted(entity_texts.items())
        },
        "largest_clusters": [
            {
                "cluster_id": cid,
                "size": size,
                "sources": sorted(cluster_sources[cid]),
                "survivor_title": _short(survivor_titles.get(cid), 100),
            }
            for cid, size in cluster_sizes.most_common(5)
            if size > 1
        ],
        "sample_articles": sample_articles,
        "sample_dead_letters": sample_dead,
    }
    if summary_path:
        with FileSystems.open(summary_path) as handle:
            run = json.loads(handle.read().decode("utf-8"))
        report["run"] = {
            "records_in": run["counts"]["records_in"],
            "duplicates": run["counts"]["duplicates"],
            "conservation_ok": run["conservation"]["ok"],
            "runner": run.get("runner"),
            "finished_at": run.get("finished_at"),
        }
    return report


def _counter_line(title: str, counts: dict[str, int]) -> str:
    if not counts:
        return f"{title}: none"
    return f"{title}: " + ", ".join(f"{k} {v}" for k, v in counts.items())


def format_report(r: dict[str, Any]) -> str:
    lines = [
        f"{r['files']} Avro file(s); schema: "
        + ", ".join(f"{k} ({v} records)" for k, v in r["schema_versions"].items()),
        f"articles {r['articles']}, duplicates written {r['duplicates_written']}, "
        f"dead letters {r['dead_letters']}",
    ]
    if "run" in r:
        run = r["run"]
        lines.append(
            f"run: {run['records_in']} records in, {run['duplicates']} duplicates found, "
            f"conservation {'OK' if run['conservation_ok'] else 'MISMATCH'}, "
            f"runner {run['runner']}, finished {run['finished_at']}"
        )
    lines += [
        _counter_line("languages", r["languages"]),
        _counter_line(f"sources (top {TOP})", r["sources"]),
        _counter_line("formats", r["formats"]),
        _counter_line("duplicates by reason", r["duplicates_by_reason"]),
        _counter_line("dead letters by stage", r["dead_letters_by_stage"]),
        _counter_line("dead letters by error", r["dead_letters_by_error"]),
    ]
    lines.append(_counter_line("entities by type", r.get("entities_by_type", {})))
    for kind, texts in r.get("top_entities", {}).items():
        lines.append(f"  top {kind}: " + ", ".join(f"{t} {n}" for t, n in texts.items()))
    if r.get("largest_clusters"):
        lines.append("largest story clusters (survivor + duplicates written):")
        for c in r["largest_clusters"]:
            lines.append(
                f"  - {c['size']} copies from {len(c['sources'])} source(s) "
                f"({', '.join(c['sources'][:5])}): {c['survivor_title']}"
            )
    elif r["duplicates_written"] == 0:
        lines.append("largest story clusters: run with --emit_duplicates to see them")
    if r["sample_articles"]:
        lines.append("sample articles:")
        for s in r["sample_articles"]:
            lines.append(f"  - [{s['language']}] {s['title']}")
            lines.append(f"    source {s['source']}, published {s['published_at']}, id {s['id']}")
            lines.append(f"    {s['body']}")
            if s.get("entities"):
                lines.append(f"    entities: {'; '.join(s['entities'])}")
            lines.append(f"    from {s['input']}")
    if r["sample_dead_letters"]:
        lines.append("sample dead letters:")
        for s in r["sample_dead_letters"]:
            lines.append(
                f"  - {s['stage']}/{s['error_type']}: {s['error_message']}"
                f" ({s['input_uri']}#{s['position']}, {s['raw_bytes']} raw bytes)"
            )
    return "\n".join(lines)


# --------------------------------------------------------------------------- command


def main(argv: list[str]) -> int:
    parser = Parser(
        prog="khabar inspect",
        description="Summarize khabar Avro output: a run directory, Avro files or globs "
        "(local or gs://).",
    )
    parser.add_argument("paths", nargs="+", help="run directory, .avro files or globs")
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    parser.add_argument("--samples", type=int, default=3, help="sample records to show")
    parser.add_argument("--against", metavar="OLD", help="show drift from an older run")
    args = parser.parse_args(argv)
    try:
        report = inspect_paths(args.paths, samples=args.samples)
        old = inspect_paths([args.against], samples=0) if args.against else None
    except InspectError as exc:
        raise CliError(str(exc)) from None
    drift = None
    if old is not None:
        drift = drift_report(report, old)
    if args.json:
        payload = report if drift is None else {"report": report, "drift": drift}
        print(json.dumps(payload, ensure_ascii=False, indent=2, default=str))
    else:
        print(format_report(report))
        if drift is not None:
            print(format_drift(drift))
    return 0

