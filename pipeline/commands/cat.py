"""``khabar cat``: a run's Avro as JSON Lines or Parquet, for tools that do not read Avro.

    khabar cat out/demo                                  # articles as JSON Lines on stdout
    khabar cat out/demo --kind dead_letter --out dl.jsonl
    khabar cat out/demo --parquet --out articles.parquet
    khabar cat out/demo/duplicates/*.avro                # explicit files or globs work too

Every record is read with the package's current schema of its kind (Avro schema
resolution), so files written by older schema versions come out with the current fields
(defaults filled in) and one Parquet schema fits a whole run.

JSON Lines: one object per line, UTF-8 (Persian stays readable, not ``\\u`` escaped),
times as ISO 8601 in UTC (``2026-11-28T05:45:00.000Z``), bytes (a dead letter's
``raw_payload``) as standard base64. Parquet: the same fields with native types (UTC
``timestamp[ms]``, ``binary`` for bytes, ``list<struct>`` for entities, ``map`` for
attributes) and each field's Avro ``doc`` as Arrow field metadata; written by pyarrow in
row groups, so memory stays bounded on large runs.

Reading elsewhere (the Avro itself, or what ``cat`` writes)::

    pandas:  pd.read_parquet("articles.parquet")   or  pd.read_json("a.jsonl", lines=True)
    DuckDB:  SELECT language, count(*) FROM 'articles.parquet' GROUP BY ALL;
             SELECT * FROM read_json_auto('a.jsonl');
    BigQuery: bq load --source_format=AVRO --use_avro_logical_types \\
                  dataset.articles "gs://bucket/run/articles/*.avro"
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import sys
from collections.abc import Iterator
from typing import IO, Any

import fastavro
import numpy as np
from apache_beam.io.filesystems import FileSystems

from khabar import schemas
from khabar.pipeline.commands.inspect import (
    _is_avro_file,
    _match,
    interrupted_note,
    load_summary,
)
from khabar.pipeline.errors import CliError
from khabar.pipeline.job.options import Parser
from khabar.pipeline.stages.sinks import ARTICLES_DIR, DEAD_LETTER_DIR, DUPLICATES_DIR, join

KINDS = (ARTICLES_DIR, DUPLICATES_DIR, DEAD_LETTER_DIR)
#: Avro record name -> package schema name (``schemas.parsed``)
SCHEMA_BY_RECORD = {"Article": "article", "DeadLetter": "dead_letter"}
BATCH_ROWS = 10_000


# --------------------------------------------------------------------------- finding files


def _is_pattern(path: str) -> bool:
    return path.endswith(".avro") or any(ch in path for ch in "*?[")


def find_files(paths: list[str], kind: str | None) -> list[str]:
    """Avro files of one kind: ``DIR/<kind>/*.avro`` for a run directory (default kind
    ``articles``), the files themselves for files and globs, ``DIR/*.avro`` for a folder
    such as ``DIR/dead_letter``."""
    files: list[str] = []
    for path in paths:
        if _is_pattern(path):
            found = [p for p in _match(path) if _is_avro_file(p)]
            if not found:
                raise CliError(f"no Avro files match {path}")
        else:
            base = path.rstrip("/")
            run = _interrupted_run(base)
            subdirs = [
                k
                for k in KINDS
                if _match(join(base, k, "*")) or _match(join(base, k, "date=*", "*"))
            ]
            if subdirs or run:  # a run directory
                wanted = kind or ARTICLES_DIR
                found = [
                    p
                    for pattern in (
                        join(base, wanted, "*.avro"),
                        join(base, wanted, "date=*", "*.avro"),  # streaming partitions
                    )
                    for p in _match(pattern)
                    if _is_avro_file(p)
                ]
                if run:
                    note = interrupted_note(run)
                    if not found:
                        raise CliError(f"{path}: {note}; no {wanted} Avro file was finalized")
                    print(f"khabar cat: warning: {path}: {note}", file=sys.stderr)
                if not found:
                    hint = (
                        " (the run did not write duplicates; khabar run --emit_duplicates "
                        "writes them)"
                        if wanted == DUPLICATES_DIR
                        else ""
                    )
                    raise CliError(f"no {wanted} Avro files in {path}{hint}")
            else:
                found = [p for p in _match(join(base, "*.avro")) if _is_avro_file(p)]
                if not found:
                    raise CliError(f"no khabar Avro files found at {path}")
        files.extend(found)
    return sorted(set(files))


def _interrupted_run(base: str) -> dict[str, Any] | None:
    """The summary of an interrupted run at ``base``, or None."""
    path = join(base, "_SUMMARY.json")
    try:
        if not FileSystems.exists(path):
            return None
        run = load_summary(path)
    except Exception:  # noqa: BLE001 - unreadable: not a marker
        return None
    return run if run.get("status") == "interrupted" else None


def record_name(path: str) -> str:
    """The Avro record name written in a file's header (``Article`` or ``DeadLetter``)."""
    with FileSystems.open(path) as handle:
        try:
            reader = fastavro.reader(handle)
        except Exception as exc:  # noqa: BLE001 - not Avro at all
            raise CliError(f"{path} is not an Avro file: {exc}") from None
        return str(reader.writer_schema.get("name", "")).rsplit(".", 1)[-1]


def schema_of(files: list[str], kind: str | None) -> str:
    """The package schema (``article`` / ``dead_letter``) shared by ``files``."""
    names = {record_name(path) for path in files}
    unknown = names - set(SCHEMA_BY_RECORD)
    if unknown:
        raise CliError(f"not khabar output: Avro record {sorted(unknown)[0]!r}")
    if len(names) > 1:
        raise CliError("the files mix articles and dead letters; cat one --kind at a time")
    name = SCHEMA_BY_RECORD[names.pop()]
    if kind is not None and (name == "dead_letter") != (kind == DEAD_LETTER_DIR):
        raise CliError(f"--kind {kind} does not match the files (they hold {name} records)")
    return name


def iter_records(files: list[str], schema_name: str) -> Iterator[dict[str, Any]]:
    """Records of ``files`` resolved to the package's current ``schema_name`` schema."""
    reader_schema = schemas.parsed(schema_name)
    for path in files:
        with FileSystems.open(path) as handle:
            yield from fastavro.reader(handle, reader_schema=reader_schema)


# --------------------------------------------------------------------------- JSON Lines


def iso_utc(value: dt.datetime) -> str:
    """ISO 8601 in UTC with milliseconds and ``Z``: ``2026-11-28T05:45:00.000Z``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(timespec="milliseconds") + "Z"


def float32_value(value: float) -> float:
    """An Avro ``float`` (32-bit) as the shortest decimal that reads back to the same
    32-bit value: ``0.9857``, not ``0.9857000112533569``."""
    return float(np.format_float_positional(np.float32(value), unique=True, trim="-"))


def to_json_value(value: Any) -> Any:
    """A record value as JSON: times ISO 8601 (UTC), bytes base64, floats (every float of
    the schemas is a 32-bit Avro ``float``) without float32 noise, containers recursed."""
    if isinstance(value, float):
        return float32_value(value) if value == value and abs(value) != float("inf") else value
    if isinstance(value, dt.datetime):
        return iso_utc(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    return value


def write_jsonl(records: Iterator[dict[str, Any]], out: IO[str]) -> int:
    n = 0
    for record in records:
        out.write(json.dumps(to_json_value(record), ensure_ascii=False, allow_nan=False))
        out.write("\n")
        n += 1
    return n


# --------------------------------------------------------------------------- Parquet


def arrow_type(avro: Any, named: dict[str, Any]) -> tuple[Any, bool]:
    """(pyarrow type, nullable) for an Avro type; ``named`` collects named types."""
    import pyarrow as pa

    if isinstance(avro, list):  # union: only [null, T] shapes are used by khabar
        branches = [b for b in avro if b != "null"]
        if len(branches) != 1:
            raise CliError(f"cannot map Avro union {avro} to Parquet")
        inner, _ = arrow_type(branches[0], named)
        return inner, "null" in avro
    if isinstance(avro, str):
        primitives = {
            "string": pa.string(),
            "bytes": pa.binary(),
            "int": pa.int32(),
            "long": pa.int64(),
            "float": pa.float32(),
            "double": pa.float64(),
            "boolean": pa.bool_(),
            "null": pa.null(),
        }
        if avro in primitives:
            return primitives[avro], avro == "null"
        if avro in named:
            return named[avro], False
        raise CliError(f"cannot map Avro type {avro!r} to Parquet")
    kind = avro.get("type")
    logical = avro.get("logicalType")
    if logical == "timestamp-millis":
        return pa.timestamp("ms", tz="UTC"), False
    if logical == "timestamp-micros":
        return pa.timestamp("us", tz="UTC"), False
    if logical == "date":
        return pa.date32(), False
    if kind == "record":
        fields = [arrow_field(f, named) for f in avro["fields"]]
        struct = pa.struct(fields)
        named[avro["name"]] = struct
        named[avro["name"].rsplit(".", 1)[-1]] = struct
        return struct, False
    if kind == "array":
        item, item_nullable = arrow_type(avro["items"], named)
        return pa.list_(pa.field("item", item, nullable=item_nullable)), False
    if kind == "map":
        value, _ = arrow_type(avro["values"], named)
        return pa.map_(pa.string(), value), False
    if kind == "enum":
        return pa.string(), False
    if kind == "fixed":
        return pa.binary(int(avro["size"])), False
    return arrow_type(kind, named)


def arrow_field(field: dict[str, Any], named: dict[str, Any]) -> Any:
    import pyarrow as pa

    typ, nullable = arrow_type(field["type"], named)
    metadata = {"doc": field["doc"]} if field.get("doc") else None
    return pa.field(field["name"], typ, nullable=nullable, metadata=metadata)


def arrow_schema(schema_name: str) -> Any:
    """The Arrow schema of a package Avro schema (``article`` or ``dead_letter``)."""
    import pyarrow as pa

    raw = schemas.load_raw(schema_name)
    named: dict[str, Any] = {}
    return pa.schema([arrow_field(f, named) for f in raw["fields"]])


def write_parquet(records: Iterator[dict[str, Any]], schema_name: str, out: str) -> int:
    """Write ``records`` to a Parquet file ``out`` (local or any Beam filesystem)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = arrow_schema(schema_name)
    names = schema.names
    n = 0
    handle = None
    if "://" in out:
        handle = FileSystems.create(out)
        sink: Any = pa.PythonFile(handle, mode="w")
    else:
        sink = out
    try:
        with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
            batch: list[dict[str, Any]] = []
            for record in records:
                batch.append({k: record.get(k) for k in names})
                if len(batch) >= BATCH_ROWS:
                    writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                    n += len(batch)
                    batch = []
            if batch or n == 0:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                n += len(batch)
    finally:
        if handle is not None:
            handle.close()
    return n


# --------------------------------------------------------------------------- command


def main(argv: list[str]) -> int:
    parser = Parser(
        prog="khabar cat",
        description="Print a run's Avro records as JSON Lines (default, to stdout) or write "
        "them as Parquet, for tools that do not read Avro. Times are ISO 8601 in UTC, bytes "
        "base64 (JSON).",
        epilog="Examples: khabar cat out/demo | head; khabar cat out/demo --kind dead_letter; "
        "khabar cat out/demo --parquet --out articles.parquet "
        "(then pandas.read_parquet, or DuckDB: SELECT * FROM 'articles.parquet').",
    )
    parser.add_argument("paths", nargs="+", help="run directory, or Avro files or globs")
    parser.add_argument(
        "--kind",
        choices=KINDS,
        default=None,
        help="which records of a run directory (default: articles)",
    )
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--jsonl", action="store_true", help="JSON Lines (the default)")
    fmt.add_argument("--parquet", action="store_true", help="Parquet (needs --out)")
    parser.add_argument("--out", help="output file, local or gs:// (default for JSON: stdout)")
    args = parser.parse_args(argv)
    if args.parquet and not args.out:
        raise CliError("--parquet needs --out FILE (Parquet is not written to a terminal)")
    files = find_files(args.paths, args.kind)
    schema_name = schema_of(files, args.kind)
    records = iter_records(files, schema_name)
    if args.parquet:
        n = write_parquet(records, schema_name, args.out)
        print(f"khabar cat: {n} record(s) -> {args.out}", file=sys.stderr)
        return 0
    if args.out:
        with FileSystems.create(args.out) as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8", newline="\n")
            n = write_jsonl(records, text)
            text.flush()
            text.detach()
        print(f"khabar cat: {n} record(s) -> {args.out}", file=sys.stderr)
        return 0
    out = sys.stdout
    if hasattr(out, "reconfigure"):
        out.reconfigure(encoding="utf-8")
    write_jsonl(records, out)
    out.flush()
    return 0
