"""A live progress line for long local runs::

    khabar run  read 12,408  written 9,913  dead 41  duplicates 1,187  2,310 rec/s  0:05

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

Quiet unless both stdout and the stream it draws on (stderr) are terminals, and with
``quiet=True`` (``--quiet``); when quiet, :attr:`Progress.channel` is ``None`` and the graph
gets no counting steps at all. Usage::

    with Progress(quiet=args.quiet) as progress:
        build_batch(..., progress=progress.channel)   # count_progress(...) inside
        result = pipeline.run(); result.wait_until_finish()
    print(summary)                                      # the line is cleared by then
"""

from __future__ import annotations

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

#: What the line counts; each counting step reports one of these.
KINDS = ("read", "written", "dead_letters", "duplicates")
_LABELS = {"read": "read", "written": "written", "dead_letters": "dead", "duplicates": "duplicates"}
#: Seconds of history behind the rate.
RATE_WINDOW = 5.0


@dataclass(frozen=True)
class ProgressChannel:
    """What a counting step needs to reach its run's :class:`Progress` (picklable)."""

    token: str
    spool_dir: str


class _Counts:
    """Counts shared by the counting steps running in this process (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = dict.fromkeys(KINDS, 0)

    def add(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self._values[kind] += n

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
        self._flushed = 0
        self._last_flush = 0.0

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_shared=None, _path=None, _total=0, _flushed=0)  # per-instance runtime
        return state

    def setup(self) -> None:
        self._shared = None
        self._path = None
        self._total = self._flushed = 0
        self._last_flush = time.monotonic()
        if self.channel is None:
            return
        self._shared = _LIVE.get(self.channel.token)
        if self._shared is None and os.path.isdir(self.channel.spool_dir):
            name = f"{os.getpid()}-{uuid.uuid4().hex}.{self.kind}.json"
            self._path = os.path.join(self.channel.spool_dir, name)

    def process(self, element: Any):
        if self._shared is not None:
            self._shared.add(self.kind)
        elif self._path is not None:
            self._total += 1
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
                json.dump({"kind": self.kind, "count": self._total}, handle)
            os.replace(tmp, self._path)
            self._flushed = self._total
        except OSError:  # the run ended and removed its spool: progress is best effort
            self._path = None


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


def format_line(label: str, counts: dict[str, int] | None, rate: float | None, elapsed: float):
    """One progress line (``counts`` None: no counts reach this process)."""
    parts = [label]
    if counts is None:
        parts.append("waiting for counts")
    else:
        parts += [f"{_LABELS[k]} {counts.get(k, 0):,}" for k in KINDS]
        if rate is not None:
            parts.append(f"{rate:,.0f} rec/s")
    parts.append(_fmt_elapsed(elapsed))
    return "  ".join(parts)


class Progress:
    """Draws the progress line on ``stream`` from a background thread while in ``with``.

    ``enabled``: None decides by the terminal (on when stdout and ``stream`` are TTYs and
    not ``quiet``); True or False force it (tests, or a caller that knows better).
    """

    def __init__(
        self,
        enabled: bool | None = None,
        *,
        quiet: bool = False,
        stream: IO[str] | None = None,
        interval: float = 0.5,
        label: str = "khabar run",
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        # its cursor controls are its own: past the CLI's control-character escaping
        self.stream = getattr(self.stream, "trusted", self.stream)
        if enabled is None:
            enabled = not quiet and _isatty(self.stream) and _isatty(sys.stdout)
        self.enabled = bool(enabled) and not quiet
        self.interval = interval
        self.label = label
        self.channel: ProgressChannel | None = None
        self._counts = _Counts()
        self._spool: str | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._started = 0.0
        self._history: deque[tuple[float, int]] = deque()
        self._drawn = False

    # ---- lifecycle

    def __enter__(self) -> Progress:
        if not self.enabled:
            return self
        self._started = time.monotonic()
        self._spool = tempfile.mkdtemp(prefix="khabar-progress-")
        token = uuid.uuid4().hex
        _LIVE[token] = self._counts
        self.channel = ProgressChannel(token, self._spool)
        self._thread = threading.Thread(target=self._loop, name="khabar-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
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
            except (OSError, ValueError, KeyError):
                continue  # being replaced right now: read it next time
        return total

    def rate(self, read: int, now: float) -> float | None:
        """Records read per second over the last few seconds."""
        self._history.append((now, read))
        while len(self._history) > 2 and now - self._history[0][0] > RATE_WINDOW:
            self._history.popleft()
        t0, r0 = self._history[0]
        if now - t0 < 0.2:
            return None
        return (read - r0) / (now - t0)

    def line(self) -> str:
        now = time.monotonic()
        counts = self.counts()
        seen = any(counts.values())
        rate = self.rate(counts["read"], now) if seen else None
        return format_line(self.label, counts if seen else None, rate, now - self._started)

    # ---- drawing

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.draw()

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
