"""A durable local spool between the poller and the local streaming job.

The local streaming runner acknowledges Pub/Sub messages as soon as it pulls them and
keeps its windows and dedup state in memory, and the emulator is new on every run, so a
SIGKILL loses every item that was published but not yet in a closed file. The spool
closes that gap: ``khabar stream`` appends each message to ``OUTPUT/_spool.jsonl`` (and
fsyncs) *before* publishing it; on the next start it reads the closed output files,
keeps the spooled messages whose records are not all there (``pending``) and publishes
them again, first. A message counts as landed when every record it carries is in a
closed file: articles and duplicates by (input URI, SHA-256 of the raw record), dead
letters by (input URI, SHA-256 of their raw payload), or the message as a whole was
dead-lettered.

Each line: ``{"key": item key, "data": base64, "attributes": {...}, "records": n}``. A line
cut by a kill is skipped when read (its message was never published: the append comes
first).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import fastavro
from apache_beam.io.filesystems import FileSystems

from khabar.pipeline.graph.streaming import message_records
from khabar.pipeline.stages.sinks import (
    ARTICLES_DIR,
    DEAD_LETTER_DIR,
    DUPLICATES_DIR,
    streaming_files,
)

SPOOL_FILE = "_spool.jsonl"


@dataclass
class SpooledMessage:
    key: str
    data: bytes
    attributes: dict[str, str]
    records: int = 1

    def to_line(self) -> bytes:
        return (
            json.dumps(
                {
                    "key": self.key,
                    "data": base64.b64encode(self.data).decode("ascii"),
                    "attributes": self.attributes,
                    "records": self.records,
                },
                ensure_ascii=False,
            ).encode("utf-8")
            + b"\n"
        )


def record_keys(
    message: SpooledMessage, max_record_bytes: int
) -> tuple[set[tuple[str, str]], tuple[str, str]]:
    """(keys of the records the message carries, key of the message as a whole)."""
    uri = message.attributes.get("input_uri", "")
    whole = (uri, hashlib.sha256(message.data).hexdigest())
    records, _ = message_records(message.data, message.attributes, max_record_bytes)
    return {(r.input_uri, hashlib.sha256(r.payload).hexdigest()) for r in records}, whole


@dataclass
class Landed:
    """What the closed output files hold, keyed for the spool check."""

    keys: set[tuple[str, str]] = field(default_factory=set)
    records: int = 0

    def holds(self, message: SpooledMessage, max_record_bytes: int) -> bool:
        records, whole = record_keys(message, max_record_bytes)
        if whole in self.keys:
            return True
        return bool(records) and records <= self.keys


def landed_in(output: str) -> Landed:
    """Read every closed Avro file of a streaming output (``date=*`` folders only)."""
    landed = Landed()
    for kind in (ARTICLES_DIR, DUPLICATES_DIR, DEAD_LETTER_DIR):
        for path in streaming_files(output, kind):
            with FileSystems.open(path) as handle:
                for record in fastavro.reader(handle):
                    landed.records += 1
                    if kind == DEAD_LETTER_DIR:
                        raw = record.get("raw_payload") or b""
                        landed.keys.add(
                            (record.get("input_uri") or "", hashlib.sha256(raw).hexdigest())
                        )
                    else:
                        landed.keys.add(
                            (record.get("input_uri") or "", record.get("raw_sha256") or "")
                        )
    return landed


class Spool:
    """Append-only, fsynced JSON Lines of the messages handed to Pub/Sub."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)

    def append(self, messages: Iterable[SpooledMessage]) -> None:
        lines = b"".join(m.to_line() for m in messages)
        if not lines:
            return
        with self._lock, open(self.path, "ab") as handle:
            handle.write(lines)
            handle.flush()
            os.fsync(handle.fileno())

    def read(self) -> list[SpooledMessage]:
        """Every complete line, first copy of each key kept."""
        if not os.path.exists(self.path):
            return []
        out: dict[str, SpooledMessage] = {}
        with open(self.path, "rb") as handle:
            for line in handle:
                message = _parse_line(line)
                if message is not None and message.key not in out:
                    out[message.key] = message
        return list(out.values())

    def rewrite(self, keep: list[SpooledMessage]) -> None:
        """Replace the spool by ``keep`` (atomically)."""
        folder = os.path.dirname(os.path.abspath(self.path))
        with self._lock:
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".spool-")
            with os.fdopen(fd, "wb") as handle:
                handle.write(b"".join(m.to_line() for m in keep))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)

    def pending(self, output: str, max_record_bytes: int) -> tuple[list[SpooledMessage], Landed]:
        """The spooled messages not (all) in closed files of ``output``; prunes the rest."""
        landed = landed_in(output)
        messages = self.read()
        keep = [m for m in messages if not landed.holds(m, max_record_bytes)]
        if len(keep) != len(messages):
            self.rewrite(keep)
        return keep, landed


def _parse_line(line: bytes) -> SpooledMessage | None:
    try:
        obj = json.loads(line)
        return SpooledMessage(
            str(obj["key"]),
            base64.b64decode(obj["data"]),
            {str(k): str(v) for k, v in obj["attributes"].items()},
            int(obj.get("records", 1)),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def iter_keys(messages: Iterable[SpooledMessage]) -> Iterator[str]:
    for message in messages:
        yield message.key
