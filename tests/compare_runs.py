"""Compare two khabar runs record by record, apart from the wall-clock fields.

Behaviour is meant to stay byte-identical across refactors: the same inputs must give the
same articles, duplicates and dead letters, field for field (raw bytes included), except
``ingested_at`` (articles) and ``failed_at`` (dead letters), which record when the run
happened. Records are compared as canonical JSON (sorted keys, bytes as base64, times as
ISO 8601), sorted, per output kind.

    python -m tests.compare_runs OLD_RUN NEW_RUN          # exit 0 when identical
    python -m tests.compare_runs --dump RUN > golden.jsonl  # the golden form of a run
    python -m tests.compare_runs --golden golden.jsonl NEW_RUN
    python -m tests.compare_runs --rename transforms.=khabar.transforms. OLD_RUN NEW_RUN

``--rename`` maps a module prefix in the old run's dead-letter messages (a dead letter of
an unexpected exception names its class with its module, ``khabar.transforms.dates.DateParseError``;
under the ``khabar`` namespace that is ``khabar.transforms.dates.DateParseError``).
Ids hash the absolute input path, so two runs compare only when they read the same path.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastavro

WALL_CLOCK_FIELDS = frozenset({"ingested_at", "failed_at"})
KINDS = ("articles", "duplicates", "dead_letter")


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def canonical(record: dict[str, Any], renames: dict[str, str] | None = None) -> str:
    """One record as canonical JSON, without the wall-clock fields."""
    kept = {k: v for k, v in record.items() if k not in WALL_CLOCK_FIELDS}
    message = kept.get("error_message")
    for old, new in (renames or {}).items():
        if isinstance(message, str) and message.startswith(old):
            kept["error_message"] = new + message[len(old) :]
    return json.dumps(_plain(kept), ensure_ascii=False, sort_keys=True)


def run_records(run: Path, renames: dict[str, str] | None = None) -> dict[str, list[str]]:
    """Every record a run wrote, per kind, canonical and sorted (batch and streaming
    layouts alike: ``kind/*.avro`` and ``kind/date=*/*.avro``)."""
    out: dict[str, list[str]] = {}
    for kind in KINDS:
        rows: list[str] = []
        for path in sorted((run / kind).rglob("*.avro")) if (run / kind).is_dir() else []:
            with path.open("rb") as handle:
                rows.extend(canonical(r, renames) for r in fastavro.reader(handle))
        out[kind] = sorted(rows)
    return out


def dump(records: dict[str, list[str]]) -> Iterator[str]:
    for kind in KINDS:
        for row in records[kind]:
            yield json.dumps({"kind": kind, "record": json.loads(row)}, ensure_ascii=False)


def load_golden(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {kind: [] for kind in KINDS}
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        out[row["kind"]].append(json.dumps(row["record"], ensure_ascii=False, sort_keys=True))
    return {kind: sorted(rows) for kind, rows in out.items()}


def differences(old: dict[str, list[str]], new: dict[str, list[str]], limit: int = 3) -> list[str]:
    """What differs between two runs' records, one line each (empty: identical)."""
    found: list[str] = []
    for kind in KINDS:
        a, b = old.get(kind, []), new.get(kind, [])
        if a == b:
            continue
        found.append(f"{kind}: {len(a)} records before, {len(b)} after")
        only_old = sorted(set(a) - set(b))
        only_new = sorted(set(b) - set(a))
        found += [f"  only before: {row[:300]}" for row in only_old[:limit]]
        found += [f"  only after:  {row[:300]}" for row in only_new[:limit]]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.compare_runs", description=__doc__)
    parser.add_argument("runs", nargs="+", type=Path, help="OLD_RUN NEW_RUN, or one RUN")
    parser.add_argument("--dump", action="store_true", help="print RUN's records as JSON Lines")
    parser.add_argument("--golden", type=Path, help="compare RUN with this dump")
    parser.add_argument(
        "--rename",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="module prefix renamed in the old run's dead-letter messages",
    )
    args = parser.parse_args(argv)
    if args.dump:
        for line in dump(run_records(args.runs[0])):
            print(line)
        return 0
    if args.golden:
        old, new = load_golden(args.golden), run_records(args.runs[0])
    else:
        if len(args.runs) != 2:
            parser.error("give OLD_RUN NEW_RUN (or --golden FILE RUN)")
        renames = dict(item.split("=", 1) for item in args.rename)
        old, new = run_records(args.runs[0], renames), run_records(args.runs[1])
    found = differences(old, new)
    counts = ", ".join(f"{kind} {len(new[kind])}" for kind in KINDS)
    if found:
        print("\n".join(found))
        return 1
    print(f"identical apart from {', '.join(sorted(WALL_CLOCK_FIELDS))}: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
