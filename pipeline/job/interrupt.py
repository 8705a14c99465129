"""Ctrl-C and SIGTERM during a run: one line, exit 130 or 143, no traceback.

Usage::

    with Interruptible() as guard:
        try:
            summary = run_batch(...)
        except BaseException:
            if guard.signum is None:
                raise
            ...  # clean up, mark the output interrupted
            return guard.exit_code

The first SIGINT or SIGTERM records the signal, silences logging (Beam logs the
interrupted bundle's traceback at ERROR level on its way out) and raises
``KeyboardInterrupt`` in the main thread, which unwinds the runner whatever it wraps the
exception in; the caller then tells by :attr:`Interruptible.signum` that the failure was
an interruption, and calls :meth:`Interruptible.unwound` first thing.

An exception raised by a signal handler can be swallowed where Python cannot propagate
it (a finalizer, a callback whose errors are ignored: seen once in three early tries on a
real run, which then went on to the end and exited 0), and a main thread blocked in C
code never sees an asynchronous exception. So until the caller says the run has unwound,
a watchdog raises ``KeyboardInterrupt`` in the main thread again every second, and after
``GIVE_UP_SECONDS`` runs the ``on_give_up`` cleanup itself and ends the process with the
signal's exit status (a safety net; not seen needed in the tests). A second signal ends
the process at once, with the same exit status.
"""

from __future__ import annotations

import ctypes
import faulthandler
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

#: Seconds the watchdog keeps re-raising before it cleans up and ends the process.
GIVE_UP_SECONDS = 8.0

#: Exit status for a signal, as shells report it (128 + signal number).
EXIT_SIGINT = 128 + signal.SIGINT  # 130
EXIT_SIGTERM = 128 + signal.SIGTERM  # 143


def exit_code(signum: int) -> int:
    return 128 + int(signum)


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class Interruptible:
    """Turns SIGINT and SIGTERM into ``KeyboardInterrupt`` for the duration of a ``with``
    block, remembering which signal came (:attr:`signum`)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, on_give_up: Callable[[], None] | None = None) -> None:
        self.on_give_up = on_give_up
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}
        self._active = False
        self._unwound = threading.Event()
        self._lock = threading.Lock()
        self._main_id = threading.main_thread().ident

    @property
    def exit_code(self) -> int:
        return exit_code(self.signum or signal.SIGINT)

    @property
    def name(self) -> str:
        return signal_name(self.signum or signal.SIGINT)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:  # a second signal: stop now
            os._exit(exit_code(self.signum))
        self.signum = signum
        logging.disable(logging.CRITICAL)
        threading.Thread(target=self._watchdog, name="khabar-interrupt", daemon=True).start()
        raise KeyboardInterrupt(signal_name(signum))

    def _watchdog(self) -> None:
        deadline = time.monotonic() + GIVE_UP_SECONDS
        while not self._unwound.wait(1.0):
            if time.monotonic() >= deadline:
                self._give_up()
            with self._lock:
                if not self._unwound.is_set():
                    _raise_in_thread(self._main_id, KeyboardInterrupt)

    def _give_up(self) -> None:
        if os.environ.get("KHABAR_DEBUG"):
            faulthandler.dump_traceback(all_threads=True)
        try:
            if self.on_give_up is not None:
                self.on_give_up()
        finally:
            os._exit(self.exit_code)

    def unwound(self) -> None:
        """The run has stopped (call first thing in the ``except`` block): no more
        re-raising. Safe to call again after a ``KeyboardInterrupt`` raced it."""
        with self._lock:
            self._unwound.set()
            _raise_in_thread(self._main_id, None)  # clears one still pending

    def __enter__(self) -> Interruptible:
        if threading.current_thread() is not threading.main_thread():
            return self  # signals reach the main thread only; nothing to install
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        self._active = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.restore()

    def restore(self) -> None:
        """Put the previous handlers back. Clean up after an interruption inside the
        ``with`` block: a second signal then ends the process at once."""
        if not self._active:
            return
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._active = False


def _raise_in_thread(thread_id: int | None, exc: type[BaseException] | None) -> None:
    """Raise ``exc`` asynchronously in a thread (``None`` clears a pending one)."""
    if thread_id is None:
        return
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc is not None else None
    )
