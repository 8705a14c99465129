"""``khabar poll``: the edge poller. Fetches RSS/Atom feeds and watches folders or
buckets, and publishes every new item to Pub/Sub exactly once, with provenance.

* HTTP(S) with conditional requests (ETag / Last-Modified -> 304), a per-request
  timeout, a response size limit (counted after decompression, so a gzip bomb stops at
  the limit), redirects followed by hand (at most 5) and refused when they lead to a
  non-HTTP scheme or to a link-local / cloud metadata address (unless allowed).
* Per-feed exponential back-off on errors (30 s doubling, capped at 1 h).
* Items are split with the same code as the batch reader (``khabar.transforms.parse``:
  feeds through feedparser) and identified by GUID, else link, else content hash; the memory
  of what was published is persisted (a local file, written atomically, or a ``gs://``
  object) so a restarted poller does not flood the topic.
* New files in a watched folder or bucket (any path FileSystems reads) are split into
  records the same way and published; a file that cannot be split is published whole
  (``unit=file``) so the pipeline dead-letters it with its bytes.

Each message: data = the raw record bytes; attributes = input_uri, position, format,
unit, guid, feed_title, fetched_at.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

from apache_beam.io.filesystems import FileSystems

from khabar.pipeline.stages.sources import expand_inputs
from khabar.transforms.common import StageError
from khabar.transforms.parse import detect_format, parse_feed_item, split_records

LOG = logging.getLogger("khabar.poll")

DEFAULT_TIMEOUT = 20.0
DEFAULT_MAX_FEED_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 5
BACKOFF_START = 30.0
BACKOFF_MAX = 3600.0
SEEN_TTL_DAYS = 30
MAX_MESSAGE_BYTES = 9 * 1024 * 1024  # Pub/Sub allows 10 MB per message
USER_AGENT = "khabar-poller/0.1 (+https://github.com/khabar)"
METADATA_HOSTS = {"metadata.google.internal", "metadata", "instance-data"}


class FetchError(Exception):
    """A feed fetch that failed (HTTP error, timeout, too large, refused redirect)."""


# --------------------------------------------------------------------------- state


@dataclass
class FeedState:
    etag: str | None = None
    last_modified: str | None = None
    failures: int = 0
    next_attempt: float = 0.0
    last_error: str | None = None


@dataclass
class PollerState:
    """What the poller remembers between polls and restarts."""

    feeds: dict[str, FeedState] = field(default_factory=dict)
    seen: dict[str, float] = field(default_factory=dict)  # item key -> first seen (epoch)
    files: dict[str, str] = field(default_factory=dict)  # path -> size/checksum marker

    @classmethod
    def load(cls, path: str | None) -> PollerState:
        if not path or not FileSystems.exists(path):
            return cls()
        with FileSystems.open(path) as handle:
            data = json.loads(handle.read().decode("utf-8"))
        return cls(
            feeds={url: FeedState(**fs) for url, fs in data.get("feeds", {}).items()},
            seen=dict(data.get("seen", {})),
            files=dict(data.get("files", {})),
        )

    def save(self, path: str | None) -> None:
        if not path:
            return
        cutoff = time.time() - SEEN_TTL_DAYS * 86400
        self.seen = {k: v for k, v in self.seen.items() if v >= cutoff}
        payload = json.dumps(
            {
                "feeds": {url: vars(fs) for url, fs in self.feeds.items()},
                "seen": self.seen,
                "files": self.files,
            },
            ensure_ascii=False,
        ).encode("utf-8")
        if "://" in path:
            with FileSystems.create(path) as handle:
                handle.write(payload)
            return
        import os
        import tempfile

        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".poller-state-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.replace(tmp, path)  # atomic: a killed poller never leaves half a state file


# --------------------------------------------------------------------------- fetching


def check_url_allowed(url: str, allow_private: bool = False) -> None:
    """Refuse non-HTTP schemes and link-local / metadata addresses (SSRF from a feed)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise FetchError(f"refused URL scheme {parts.scheme!r}: {url}")
    host = (parts.hostname or "").lower()
    if not host:
        raise FetchError(f"URL without host: {url}")
    if allow_private:
        return
    if host in METADATA_HOSTS:
        raise FetchError(f"refused metadata host {host}")
    try:
        infos = socket.getaddrinfo(host, parts.port or 80, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise FetchError(f"cannot resolve {host}: {exc}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if address.is_link_local or str(address) in ("169.254.169.254", "fd00:ec2::254"):
            raise FetchError(f"refused link-local/metadata address {address} for {host}")


@dataclass
class FetchResult:
    status: int
    body: bytes
    etag: str | None
    last_modified: str | None
    final_url: str


def fetch(
    url: str,
    state: FeedState,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_FEED_BYTES,
    allow_private: bool = False,
) -> FetchResult:
    """Conditional GET with limits; follows redirects by hand, checking each hop."""
    import requests

    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    current = url
    deadline = time.monotonic() + timeout
    for _ in range(MAX_REDIRECTS + 1):
        check_url_allowed(current, allow_private)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchError(f"timeout after {timeout:g} s")
        try:
            response = requests.get(
                current, headers=headers, timeout=remaining, stream=True, allow_redirects=False
            )
        except requests.Timeout:
            raise FetchError(f"timeout after {timeout:g} s") from None
        except requests.RequestException as exc:
            raise FetchError(f"{type(exc).__name__}: {exc}") from None
        with response:
            if response.is_redirect or response.status_code in (301, 302, 303, 307, 308):
                location = response.headers.get("Location")
                if not location:
                    raise FetchError(f"redirect without Location from {current}")
                current = urljoin(current, location)
                continue
            if response.status_code == 304:
                return FetchResult(304, b"", state.etag, state.last_modified, current)
            if response.status_code >= 400:
                raise FetchError(f"HTTP {response.status_code} from {current}")
            declared = response.headers.get("Content-Length")
            if (
                declared
                and declared.isdigit()
                and int(declared) > max_bytes
                and not (response.headers.get("Content-Encoding"))
            ):
                raise FetchError(f"feed of {declared} bytes is above the limit of {max_bytes}")
            chunks: list[bytes] = []
            size = 0
            try:
                for chunk in response.iter_content(chunk_size=65536):
                    size += len(chunk)
                    if size > max_bytes:
                        raise FetchError(f"feed above the limit of {max_bytes} bytes")
                    if time.monotonic() > deadline:
                        raise FetchError(f"timeout after {timeout:g} s")
                    chunks.append(chunk)
            except requests.RequestException as exc:
                raise FetchError(f"{type(exc).__name__}: {exc}") from None
            return FetchResult(
                response.status_code,
                b"".join(chunks),
                response.headers.get("ETag"),
                response.headers.get("Last-Modified"),
                current,
            )
    raise FetchError(f"more than {MAX_REDIRECTS} redirects from {url}")


# --------------------------------------------------------------------------- publishing

Publish = Callable[[bytes, dict[str, str]], None]


class PubSubPublisher:
    """Publishes to a Pub/Sub topic (the emulator when PUBSUB_EMULATOR_HOST is set)."""

    def __init__(self, topic: str) -> None:
        from google.cloud import pubsub_v1

        self.topic = topic
        self.client = pubsub_v1.PublisherClient()

    def __call__(self, data: bytes, attributes: dict[str, str]) -> None:
        self.client.publish(self.topic, data, **attributes).result(timeout=60)


def item_key(feed_url: str, guid: str | None, link: str | None, payload: bytes) -> str:
    ident = guid or link or hashlib.sha256(payload).hexdigest()
    return hashlib.sha256(f"{feed_url}\n{ident}".encode()).hexdigest()[:32]


@dataclass
class PollStats:
    fetched: int = 0
    not_modified: int = 0
    errors: int = 0
    published: int = 0
    skipped_seen: int = 0
    files: int = 0
    backoff: int = 0

    def add(self, other: PollStats) -> None:
        for key, value in vars(other).items():
            setattr(self, key, getattr(self, key) + value)


class Poller:
    def __init__(
        self,
        publish: Publish,
        feeds: list[str] | None = None,
        watch: list[str] | None = None,
        state_path: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_feed_bytes: int = DEFAULT_MAX_FEED_BYTES,
        allow_private: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.publish = publish
        self.feeds = list(feeds or [])
        self.watch = list(watch or [])
        self.state_path = state_path
        self.timeout = timeout
        self.max_feed_bytes = max_feed_bytes
        self.allow_private = allow_private
        self.clock = clock
        self.state = PollerState.load(state_path)

    # feeds
    def poll_feed(self, url: str) -> PollStats:
        stats = PollStats()
        fs = self.state.feeds.setdefault(url, FeedState())
        now = self.clock()
        if fs.next_attempt > now:
            stats.backoff += 1
            return stats
        try:
            result = fetch(url, fs, self.timeout, self.max_feed_bytes, self.allow_private)
        except FetchError as exc:
            fs.failures += 1
            fs.last_error = str(exc)
            fs.next_attempt = now + min(BACKOFF_START * 2 ** (fs.failures - 1), BACKOFF_MAX)
            stats.errors += 1
            LOG.warning("feed %s: %s (retry in %.0f s)", url, exc, fs.next_attempt - now)
            return stats
        fs.failures, fs.last_error, fs.next_attempt = 0, None, 0.0
        if result.status == 304:
            stats.not_modified += 1
            return stats
        stats.fetched += 1
        fs.etag, fs.last_modified = result.etag, result.last_modified
        fetched_at = dt.datetime.fromtimestamp(now, dt.UTC).isoformat()
        try:
            records = list(split_records(url, result.body, "feed", self.max_feed_bytes))
        except Exception as exc:  # noqa: BLE001 - one bad feed never stops the poller
            # the whole response is unusable: publish it once so it is dead-lettered
            key = item_key(url, None, None, result.body)
            if key not in self.state.seen:
                self._send(result.body[:MAX_MESSAGE_BYTES], url, 0, "feed", "file", fetched_at)
                self.state.seen[key] = now
                stats.published += 1
            LOG.warning("feed %s: %s", url, exc)
            return stats
        for record in records:
            guid = link = None
            try:
                item = parse_feed_item(record.payload, record.format)
                guid, link = item.get("guid"), item.get("url")
            except Exception:  # noqa: BLE001 - a malformed item is still published once
                pass
            key = item_key(url, guid, link, record.payload)
            if key in self.state.seen:
                stats.skipped_seen += 1
                continue
            extra = {"guid": guid or link or ""}
            if record.attributes.get("feed_title"):
                extra["feed_title"] = record.attributes["feed_title"]
            self._send(
                record.payload, url, record.position, record.format, "record", fetched_at, extra
            )
            self.state.seen[key] = now
            stats.published += 1
        return stats

    # watched folders / buckets
    def poll_watch(self, base: str) -> PollStats:
        stats = PollStats()
        try:
            paths = expand_inputs([base])
        except Exception:  # noqa: BLE001 - an empty or missing folder is not an error here
            return stats
        for path in paths:
            try:
                self._poll_file(path, stats)
            except Exception as exc:  # noqa: BLE001 - one bad file never stops the poller
                stats.errors += 1
                LOG.warning("watched file %s: %s: %s", path, type(exc).__name__, exc)
        return stats

    def _poll_file(self, path: str, stats: PollStats) -> None:
        from khabar.pipeline.stages.sources import escape_glob, open_input

        matched = FileSystems.match([escape_glob(path)])[0].metadata_list
        if not matched:
            return
        meta = matched[0]
        marker = f"{meta.size_in_bytes}:{getattr(meta, 'last_updated_in_seconds', 0)}"
        if self.state.files.get(path) == marker:
            return
        with open_input(path) as handle:  # a FIFO or device is refused, never opened
            data = handle.read(self.max_feed_bytes + 1)
        now = self.clock()
        fetched_at = dt.datetime.fromtimestamp(now, dt.UTC).isoformat()
        fmt = detect_format(path, data[:4096])
        try:
            if len(data) > self.max_feed_bytes:
                raise StageError("file above the size limit")
            records = list(split_records(path, data, fmt, self.max_feed_bytes))
        except Exception:  # noqa: BLE001 - the whole file goes on, to be dead-lettered
            self._send(data[:MAX_MESSAGE_BYTES], path, 0, fmt, "file", fetched_at)
            stats.published += 1
            records = []
        for record in records:
            key = item_key(path, None, None, record.payload + b"#%d" % record.position)
            if key in self.state.seen:
                stats.skipped_seen += 1
                continue
            self._send(
                record.payload[:MAX_MESSAGE_BYTES],
                path,
                record.position,
                record.format,
                "record",
                fetched_at,
                {k: v for k, v in record.attributes.items() if v},
            )
            self.state.seen[key] = now
            stats.published += 1
        self.state.files[path] = marker
        stats.files += 1

    def _send(
        self,
        payload: bytes,
        uri: str,
        position: int,
        fmt: str,
        unit: str,
        fetched_at: str,
        extra: dict[str, str] | None = None,
    ) -> None:
        attributes = {
            "input_uri": uri,
            "position": str(position),
            "format": fmt,
            "unit": unit,
            "fetched_at": fetched_at,
        }
        for key, value in (extra or {}).items():
            attributes[key] = str(value)[:1000]
        self.publish(payload, attributes)

    def poll_once(self) -> PollStats:
        stats = PollStats()
        for url in self.feeds:
            stats.add(self.poll_feed(url))
        for base in self.watch:
            stats.add(self.poll_watch(base))
        self.state.save(self.state_path)
        return stats

    def run(
        self,
        interval: float = 60.0,
        max_runtime: float | None = None,
        stop: threading.Event | None = None,
        on_poll: Callable[[PollStats], Any] | None = None,
    ) -> PollStats:
        """Poll every ``interval`` seconds until ``max_runtime`` or ``stop`` is set."""
        stop = stop or threading.Event()
        started = time.monotonic()
        total = PollStats()
        while not stop.is_set():
            stats = self.poll_once()
            total.add(stats)
            if on_poll:
                on_poll(stats)
            if max_runtime is not None and time.monotonic() - started >= max_runtime:
                break
            wait = interval
            if max_runtime is not None:
                wait = min(wait, max(0.0, max_runtime - (time.monotonic() - started)))
            stop.wait(wait)
        return total
