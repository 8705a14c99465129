"""The reader contract: one way in for every input unit.

A unit is whatever arrives: a file (batch), a Pub/Sub message (streaming), a dead letter
being replayed. A *reader* turns one unit into raw records (``RawRecord``: bytes plus their
provenance) or into a :class:`ReadFailure` for what cannot be split. :class:`ExpandUnits`
runs a reader and is the only place that counts ``records_in`` (the left-hand side of the
conservation check: each record, and each failure as one) and turns failures into dead
letters at stage ``read``. Readers stay free to count their own details (files read,
messages, retries, what a replay rebuilt).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.pvalue import TaggedOutput

from khabar.transforms import metrics as M
from khabar.transforms.common import DEAD_LETTER, make_dead_letter
from khabar.transforms.split import RawRecord


@dataclass
class ReadFailure:
    """A unit (or part of one) that could not be split into records: one dead letter."""

    error: BaseException
    raw_payload: bytes
    input_uri: str
    position: int | None = None
    attributes: dict[str, str] = field(default_factory=dict)

    def dead_letter(self) -> dict[str, Any]:
        return make_dead_letter(
            M.READ,
            self.error,
            raw_payload=self.raw_payload,
            input_uri=self.input_uri,
            position=self.position,
            attributes=self.attributes,
        )


Reader = Callable[[Any], Iterable[RawRecord | ReadFailure]]


class ExpandUnits(beam.DoFn):
    """Unit -> raw records (main output, ``RawRecord.to_dict()``) and read dead letters
    (``dead_letter``), through ``reader``; counts both in ``records_in``."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.records_in = Metrics.counter(M.RUN, M.RECORDS_IN)
        self.failed = Metrics.counter(M.stage(M.READ), M.DEAD_LETTER)

    def process(self, unit: Any):
        try:
            for item in self.reader(unit):
                self.records_in.inc()
                if isinstance(item, ReadFailure):
                    self.failed.inc()
                    yield TaggedOutput(DEAD_LETTER, item.dead_letter())
                else:
                    yield item.to_dict()
        except Exception as exc:  # noqa: BLE001 - a reader's own bug never stops the job
            self.records_in.inc()
            self.failed.inc()
            failure = ReadFailure(exc, _unit_bytes(unit), _unit_uri(unit))
            yield TaggedOutput(DEAD_LETTER, failure.dead_letter())


def _unit_uri(unit: Any) -> str:
    if isinstance(unit, str):
        return unit
    path = getattr(getattr(unit, "metadata", None), "path", None) or getattr(unit, "path", None)
    if path:
        return str(path)
    attributes = getattr(unit, "attributes", None) or (
        unit if isinstance(unit, dict) else {}
    )
    return str(attributes.get("input_uri") or "")


def _unit_bytes(unit: Any) -> bytes:
    data = getattr(unit, "data", None)
    if data is None and isinstance(unit, dict):
        data = unit.get("raw_payload")
    return bytes(data) if isinstance(data, (bytes, bytearray)) else b""
