"""Progress of a local batch run, on a terminal or in a log::

    khabar run  0:42  read 1,234 (2.1 of 6.8 MB, 31%)  dead 3  29 rec/s  ETA 1:33
    khabar run  3:55  read 4,000 (100%)  written 3,931  duplicates 69  dead 0  1,210 rec/s

* on a terminal (stderr is a TTY): one line redrawn in place every half second;
* otherwise (a log file, cron, ``nohup``, ``| tee``): a plain line every
  ``log_seconds`` (default 10 s, ``--progress-seconds``), prefixed with the UTC time, or
  one JSON object a line with ``--log-format json``.

A batch job reads and processes every record (parse .. entities, fused with the read)
before deduplication can decide anything, so records are *written* and *duplicates* known
only in the last phase: the line counts records read (and their bytes against the input's
size, for the percentage and the ETA) while the stages run, then written records and
duplicates as the sinks receive them. The rate follows the phase (records read per second,
then records written per second). The ETA needs the input's size: it is left out when an
input is compressed.

Beam's metrics are only available when a job has finished, so the counts come from small
counting steps in the graph (:class:`CountProgress`, inserted next to each sink's input
and after the read step) that report to the :class:`Progress` of the run:

* in the same process (the FnApiRunner's default in-memory mode, and its
  ``multi_threading`` mode) they add to a shared, locked counter: live and exact;
* in worker processes on the same machine (``--direct_running_mode=multi_processing``)
  each counting step writes its running total to a small file in the run's spool
  directory (atomically, at most every ``flush_seconds`` and at the end of each bundle),
  and the progress thread adds the files up;
* anywhere else (Dataflow workers, where the spool directory does not exist) the counting
  steps do nothing and the line shows elapsed time only.

Off with ``quiet=True`` (``--quiet``); when off, :attr:`Progress.channel` is ``None`` and
the graph gets no counting steps at all. Usage::

    with Progress(quiet=args.quiet, input_files=files) as progress:
        build_batch(..., progress=progress.channel)   # count_progress(...) inside
        result = pipeline.run(); result.wait_until_finish()
    print(summary)                                      # the line is cleared by then
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import IO, Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

#: What the line counts; each counting step reports one of these.
KINDS = ("read", "written", "dead_letters", "duplicates")
#: Bytes of the records read (raw payloads), for the percentage of the input and the ETA.
READ_BYTES = "read_bytes"
_LABELS = {"read": "read", "written": "written", "dead_letters": "dead", "duplicates": "duplicates"}
#: Seconds of history behind the rate and the ETA.
RATE_WINDOW = 30.0
#: Compressed inputs: their size says nothing about the bytes read.
COMPRESSED = (".gz", ".bz2", ".zst", ".zstd", ".deflate", ".lzma", ".xz")


@dataclass(frozen=True)
class ProgressChannel:
    """What a counting step needs to reach its run's :class:`Progress` (picklable)."""

    token: str
    spool_dir: str


class _Counts:
    """Counts shared by the counting steps running in this process (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = dict.fromkeys((*KINDS, READ_BYTES), 0)

    def add(self, kind: str, n: int = 1, size: int = 0) -> None:
        with self._lock:
            self._values[kind] += n
            if size:
                self._values[READ_BYTES] += size

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)


#: token -> counts of the live Progress objects of this process
_LIVE: dict[str, _Counts] = {}


class CountProgress(beam.DoFn):
    """Pass elements through, counting them as ``kind`` for the run's progress line."""

    def __init__(self, channel: ProgressChannel | None, kind: str, flush_seconds: float = 0.5):
        if kind not in KINDS:
            raise ValueError(f"unknown progress kind {kind!r}; one of {', '.join(KINDS)}")
        self.channel = channel
        self.kind = kind
        self.flush_seconds = flush_seconds
        self._shared: _Counts | None = None
        self._path: str | None = None
        self._total = 0
        self._bytes = 0
        self._flushed = 0
        self._last_flush = 0.0

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        # per-instance runtime
        state.update(_shared=None, _path=None, _total=0, _bytes=0, _flushed=0)
        return state

    def setup(self) -> None:
        self._shared = None
        self._path = None
        self._total = self._bytes = self._flushed = 0
        self._last_flush = time.monotonic()
        if self.channel is None:
            return
        self._shared = _LIVE.get(self.channel.token)
        if self._shared is None and os.path.isdir(self.channel.spool_dir):
            name = f"{os.getpid()}-{uuid.uuid4().hex}.{self.kind}.json"
            self._path = os.path.join(self.channel.spool_dir, name)

    def process(self, element: Any):
        size = _payload_size(element) if self.kind == "read" else 0
        if self._shared is not None:
            self._shared.add(self.kind, 1, size)
        elif self._path is not None:
            self._total += 1
            self._bytes += size
            if time.monotonic() - self._last_flush >= self.flush_seconds:
                self._flush()
        yield element

    def finish_bundle(self) -> None:
        self._flush()

    def teardown(self) -> None:
        self._flush()

    def _flush(self) -> None:
        self._last_flush = time.monotonic()
        if self._path is None or self._total == self._flushed:
            return
        tmp = self._path + ".tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump({"kind": self.kind, "count": self._total, "bytes": self._bytes}, handle)
            os.replace(tmp, self._path)
            self._flushed = self._total
        except OSError:  # the run ended and removed its spool: progress is best effort
            self._path = None


def _payload_size(element: Any) -> int:
    """Bytes of a raw record (``payload``) or read dead letter (``raw_payload``), plus the
    line break a JSON line had in its file."""
    if not isinstance(element, dict):
        return 0
    payload = element.get("payload")
    if payload is None:
        payload = element.get("raw_payload")
    return len(payload) + 1 if isinstance(payload, (bytes, bytearray)) else 0


class ProgressCount(beam.PTransform):
    """``pcoll | "Label" >> ProgressCount(channel, "written")``: the same elements out."""

    def __init__(self, channel: ProgressChannel | None, kind: str) -> None:
        super().__init__()
        self.channel = channel
        self.kind = kind

    def expand(self, pcoll):
        return pcoll | beam.ParDo(CountProgress(self.channel, self.kind))


def count_progress(
    pcoll: beam.PCollection, label: str, channel: ProgressChannel | None, kind: str
) -> None:
    """Count ``pcoll`` as ``kind`` on a side branch; no step at all when ``channel`` is
    ``None`` (progress off), so a quiet run's graph is unchanged."""
    if channel is not None:
        _ = pcoll | label >> ProgressCount(channel, kind)


def _fmt_elapsed(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f}"


def _sizes(done: int, total: int) -> str:
    """``2.1 of 6.8 MB`` or, for small inputs, ``26 of 84 KB``."""
    if total >= 1_000_000:
        return f"{_mb(done)} of {_mb(total)} MB"
    return f"{done / 1000:,.0f} of {total / 1000:,.0f} KB"


def _size(n: int) -> str:
    return f"{_mb(n)} MB" if n >= 1_000_000 else f"{n / 1000:,.0f} KB"


def _rate(rate: float) -> str:
    return f"{rate:,.1f} rec/s" if rate < 10 else f"{rate:,.0f} rec/s"


def progress_fields(
    counts: dict[str, int] | None,
    rate: float | None,
    elapsed: float,
    total_bytes: int | None = None,
    eta: float | None = None,
) -> dict[str, Any]:
    """The figures of one progress report (what a JSON log line carries)."""
    fields: dict[str, Any] = {"elapsed_s": round(elapsed, 1)}
    if counts is None:
        return fields
    fields.update({k: counts.get(k, 0) for k in KINDS})
    fields["read_bytes"] = counts.get(READ_BYTES, 0)
    if total_bytes:
        fields["input_bytes"] = total_bytes
        fields["read_percent"] = round(min(100.0, 100.0 * fields["read_bytes"] / total_bytes), 1)
    if rate is not None:
        fields["rate_per_s"] = round(rate, 1)
    if eta is not None:
        fields["eta_s"] = round(eta)
    return fields


def format_line(
    label: str,
    counts: dict[str, int] | None,
    rate: float | None,
    elapsed: float,
    total_bytes: int | None = None,
    eta: float | None = None,
    limit: int | None = None,
) -> str:
    """One progress line (``counts`` None: no counts reach this process). Written records
    and duplicates show once the last phase has any. With ``limit`` (``--limit N``) the
    share is of N records, not of the input's bytes."""
    parts = [label, _fmt_elapsed(elapsed)]
    if counts is None:
        parts.append("waiting for counts")
        return "  ".join(parts)
    read = f"read {counts.get('read', 0):,}"
    done = counts.get(READ_BYTES, 0)
    if limit:
        read += f" of {limit:,} (--limit, {min(100.0, 100.0 * counts.get('read', 0) / limit):.0f}%)"
        total_bytes = None
    elif total_bytes:
        share = min(100.0, 100.0 * done / total_bytes)
        read += f" ({_sizes(done, total_bytes)}, {share:.0f}%)"
    parts.append(read)
    if counts.get("written") or counts.get("duplicates"):
        parts.append(f"written {counts.get('written', 0):,}")
        parts.append(f"duplicates {counts.get('duplicates', 0):,}")
    parts.append(f"dead {counts.get('dead_letters', 0):,}")
    if rate is not None:
        parts.append(_rate(rate))
    if eta is not None:
        parts.append(f"ETA {_fmt_elapsed(eta)}")
    elif total_bytes and done >= total_bytes and not counts.get("written"):
        parts.append("deduplicating")
    return "  ".join(parts)


def input_size(files: list[str]) -> int | None:
    """Total bytes of the input files, or None when unknown or compressed."""
    if not files or any(f.lower().endswith(COMPRESSED) for f in files):
        return None
    try:
        total = 0
        for result in FileSystems.match(list(files)):
            total += sum(int(m.size_in_bytes or 0) for m in result.metadata_list)
    except Exception:  # noqa: BLE001 - progress is best effort
        return None
    return total or None


class Progress:
    """Reports a run's progress from a background thread while in ``with``.

    ``enabled``: None decides by itself (on unless ``quiet``; a redrawn line when
    ``stream`` is a terminal, else a log line every ``log_seconds``, none when that is
    0); True or False force it (tests, or a caller that knows better). ``log_format``:
    ``text`` or ``json`` (log lines only). ``input_files``: their total size gives the
    percentage and the ETA.
    """

    def __init__(
        self,
        enabled: bool | None = None,
        *,
        quiet: bool = False,
        stream: IO[str] | None = None,
        interval: float = 0.5,
        label: str = "khabar run",
        log_seconds: float = 10.0,
        log_format: str = "text",
        input_files: list[str] | None = None,
        terminal: bool | None = None,
        limit: int | None = None,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        # its cursor controls are its own: past the CLI's control-character escaping
        self.stream = getattr(self.stream, "trusted", self.stream)
        self.terminal = _isatty(self.stream) if terminal is None else terminal
        if enabled is None:
            enabled = not quiet and (self.terminal or log_seconds > 0)
        self.enabled = bool(enabled) and not quiet
        self.interval = interval if self.terminal else log_seconds
        self.label = label
        self.log_format = log_format
        self.input_files = list(input_files or [])
        self.limit = limit
        self.total_bytes: int | None = None
        self.channel: ProgressChannel | None = None
        self._counts = _Counts()
        self._spool: str | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._started = 0.0
        self._history: deque[tuple[float, int, int]] = deque()
        self._drawn = False

    # ---- lifecycle

    def __enter__(self) -> Progress:
        if not self.enabled:
            return self
        self._started = time.monotonic()
        self.total_bytes = input_size(self.input_files)
        self._spool = tempfile.mkdtemp(prefix="khabar-progress-")
        token = uuid.uuid4().hex
        _LIVE[token] = self._counts
        self.channel = ProgressChannel(token, self._spool)
        if not self.terminal:
            files = len(self.input_files)
            size = f", {_size(self.total_bytes)}" if self.total_bytes else ""
            self.log(
                f"started: {files} input file(s){size}; progress every {self.interval:g} s",
                {"event": "started", "files": files, "input_bytes": self.total_bytes},
            )
        self._thread = threading.Thread(target=self._loop, name="khabar-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop reporting and clean up (idempotent: also called after an interruption,
        which may have cut ``__exit__`` short)."""
        if not self.enabled:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.clear()
        if self.channel is not None:
            _LIVE.pop(self.channel.token, None)
        if self._spool is not None:
            shutil.rmtree(self._spool, ignore_errors=True)

    # ---- reading the counts

    def counts(self) -> dict[str, int]:
        """Counts so far: this process's counting steps plus the spool files of others."""
        total = self._counts.snapshot()
        if self._spool is None:
            return total
        try:
            names = os.listdir(self._spool)
        except OSError:
            return total
        for name in names:
            if not name.endswith(".json"):
                continue
            try:
                with open(os.path.join(self._spool, name), encoding="utf-8") as handle:
                    data = json.load(handle)
                total[data["kind"]] += int(data["count"])
                total[READ_BYTES] += int(data.get("bytes", 0))
            except (OSError, ValueError, KeyError):
                continue  # being replaced right now: read it next time
        return total

    def rate(self, read: int, now: float, written: int = 0, read_bytes: int = 0):
        """(records per second, bytes read per second) over the last ``RATE_WINDOW``
        seconds: records read while reading, records written once writing started."""
        self._history.append((now, read + written, read_bytes))
        while len(self._history) > 2 and now - self._history[0][0] > RATE_WINDOW:
            self._history.popleft()
        t0, n0, b0 = self._history[0]
        if now - t0 < 0.2:
            return None, None
        return (read + written - n0) / (now - t0), (read_bytes - b0) / (now - t0)

    def snapshot(self) -> tuple[dict[str, int] | None, float | None, float, float | None]:
        now = time.monotonic()
        counts = self.counts()
        seen = any(counts.values())
        rate = byte_rate = eta = None
        if seen:
            rate, byte_rate = self.rate(
                counts["read"], now, counts["written"], counts.get(READ_BYTES, 0)
            )
            if self.limit:  # --limit N: N records, whatever the input's size
                left = self.limit - counts["read"]
                if left > 0 and rate and not counts["written"]:
                    eta = left / rate
            else:
                left = (self.total_bytes or 0) - counts.get(READ_BYTES, 0)
                if self.total_bytes and left > 0 and byte_rate:
                    eta = left / byte_rate
        return (counts if seen else None), rate, now - self._started, eta

    def line(self) -> str:
        counts, rate, elapsed, eta = self.snapshot()
        return format_line(self.label, counts, rate, elapsed, self.total_bytes, eta, self.limit)

    # ---- drawing

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            if self.terminal:
                self.draw()
            else:
                counts, rate, elapsed, eta = self.snapshot()
                text = format_line(
                    self.label, counts, rate, elapsed, self.total_bytes, eta, self.limit
                )
                fields = progress_fields(counts, rate, elapsed, self.total_bytes, eta)
                self.log(text.removeprefix(self.label).strip(), {"event": "progress", **fields})

    def log(self, text: str, fields: dict[str, Any]) -> None:
        """One log line: ``2026-12-02T14:00:00Z khabar run: ...`` or a JSON object."""
        stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        if self.log_format == "json":
            out = json.dumps({"ts": stamp, "logger": self.label, **fields}, ensure_ascii=False)
        else:
            out = f"{stamp} {self.label}: {text}"
        try:
            self.stream.write(out + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # closed log: stop reporting
            self._stop.set()

    def draw(self) -> None:
        width = shutil.get_terminal_size((100, 20)).columns
        text = self.line()[: max(width - 1, 20)]
        try:
            self.stream.write("\r" + text + "\x1b[K")
            self.stream.flush()
            self._drawn = True
        except (OSError, ValueError):  # closed terminal: stop drawing
            self._stop.set()

    def clear(self) -> None:
        if not self._drawn:
            return
        try:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
        except (OSError, ValueError):
            pass
        self._drawn = False


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False
