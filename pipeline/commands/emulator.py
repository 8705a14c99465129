"""Local Pub/Sub: start the Pub/Sub emulator and create topics and subscriptions.

The emulator ships with the Google Cloud CLI (Debian package
``google-cloud-cli-pubsub-emulator``, Java 17). Beam's ``ReadFromPubSub`` on the
DirectRunner against it is real streaming (see BEAM-NOTES.md).
"""

from __future__ import annotations

import ctypes
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

EMULATOR_ENV = "PUBSUB_EMULATOR_HOST"
STOP_WAIT = 1.0  # the emulator holds nothing khabar needs (the spool does)
KNOWN_PATHS = (
    "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator",
    "/usr/share/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator",
    "/opt/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator",
)


class EmulatorError(Exception):
    pass


PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> Callable[[], None]:
    """preexec_fn: the child gets SIGKILL when the thread that started it dies, even if
    khabar itself is SIGKILLed (Linux ``prctl(PR_SET_PDEATHSIG)``; the emulator's
    launcher script ``exec``s java, which keeps the setting). Elsewhere a no-op."""

    def setup() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            return
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return setup


def find_emulator() -> str | None:
    explicit = os.environ.get("KHABAR_PUBSUB_EMULATOR")
    if explicit:
        return explicit
    found = shutil.which("cloud-pubsub-emulator")
    if found:
        return found
    for path in KNOWN_PATHS:
        if os.path.exists(path):
            return path
    matches = glob.glob("/**/pubsub-emulator/bin/cloud-pubsub-emulator", recursive=False)
    return matches[0] if matches else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PubSubEmulator:
    """Context manager: a Pub/Sub emulator on loopback, ``PUBSUB_EMULATOR_HOST`` set
    for this process (and inherited by children) while it runs."""

    def __init__(self, port: int | None = None, startup_timeout: float = 60.0) -> None:
        self.port = port or _free_port()
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None
        self._old_env: str | None = None
        self._data_dir: str | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> PubSubEmulator:
        exe = find_emulator()
        if not exe:
            raise EmulatorError(
                "the Pub/Sub emulator is not installed (Debian package "
                "google-cloud-cli-pubsub-emulator; or set PUBSUB_EMULATOR_HOST to a running one)"
            )
        self._data_dir = tempfile.mkdtemp(prefix="khabar-pubsub-")
        self.proc = subprocess.Popen(
            [exe, "--host=127.0.0.1", f"--port={self.port}", f"--data-dir={self._data_dir}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stop() ends all of it
            preexec_fn=_die_with_parent(os.getpid()) if sys.platform == "linux" else None,
        )
        deadline = time.time() + self.startup_timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise EmulatorError(f"the Pub/Sub emulator exited with {self.proc.returncode}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            time.sleep(0.2)
        else:
            self.stop()
            raise EmulatorError("the Pub/Sub emulator did not start in time")
        self._old_env = os.environ.get(EMULATOR_ENV)
        os.environ[EMULATOR_ENV] = self.host
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=STOP_WAIT)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(timeout=STOP_WAIT)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    pass
            except ProcessLookupError:
                pass
        if self._old_env is None:
            os.environ.pop(EMULATOR_ENV, None)
        else:
            os.environ[EMULATOR_ENV] = self._old_env
        if self._data_dir:
            shutil.rmtree(self._data_dir, ignore_errors=True)

    def __enter__(self) -> PubSubEmulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def ensure_topic_and_subscription(topic: str, subscription: str) -> None:
    """Create ``projects/P/topics/T`` and ``projects/P/subscriptions/S`` if missing."""
    from google.api_core.exceptions import AlreadyExists
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient()
    try:
        publisher.create_topic(name=topic)
    except AlreadyExists:
        pass
    subscriber = pubsub_v1.SubscriberClient()
    try:
        subscriber.create_subscription(name=subscription, topic=topic, ack_deadline_seconds=60)
    except AlreadyExists:
        pass
    finally:
        subscriber.close()
