"""``khabar poll``: the edge poller. Fetches RSS/Atom feeds and watches folders or
buckets, and publishes every new item to Pub/Sub, with provenance.

* HTTP(S) through ``pipeline.netguard``: every address a host resolves to is checked
  (IPv6 forms of IPv4 addresses normalized; loopback, private, link-local, CGNAT,
  metadata, multicast, reserved ... refused unless ``allow`` names them) and the
  connection goes to the checked address; one total deadline per request (connect +
  headers + body) enforced by a watchdog; conditional requests (ETag / Last-Modified ->
  304); a response size limit counted after decompression; redirects followed by hand
  (at most 5), each hop checked.
* Feeds are polled concurrently in a bounded pool, each on its own schedule, so a slow
  feed holds only itself. Per-feed exponential back-off on errors (30 s doubling, 1 h cap).
* Items are split with the same code as the batch reader (``transforms.parse``: feeds
  through feedparser) and
  identified by GUID, else link, else content hash. Items of one fetch sharing an id are
  counted (``same_guid``). An item is marked seen only once Pub/Sub acknowledged its
  publish, and a feed's ETag moves on only when all its new items were acknowledged.
  The memory of what was published is persisted (a local file written atomically, or a
  ``gs://`` object).
* New files in a watched folder or bucket are split into records and published. A file
  above the message limit is never cut: JSON Lines go as line-bounded chunks
  (``unit=file``, ``line_offset``), anything else as a reference (``unit=ref``: the
  message carries the path or URI, the pipeline reads the file). Non-regular files
  (FIFOs, sockets, devices) are skipped and counted.

Each message: data = the raw record bytes; attributes = input_uri, position, format,
unit, guid, feed_title, fetched_at, khabar_item (the item key, for redelivery checks).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import json
import logging
import os
import ssl
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

from apache_beam.io.filesystems import FileSystems

from khabar.pipeline.commands.netguard import (
    AddressRefused,
    DeadlineExceeded,
    Network,
    Resolver,
    Target,
    Watchdog,
    check_host,
    parse_allow,
    pinned_pool,
    system_resolver,
)
from khabar.pipeline.commands.spool import Spool, SpooledMessage
from khabar.pipeline.graph.streaming import message_records
from khabar.pipeline.stages.sources import escape_glob, expand_inputs
from khabar.transforms.parse import parse_feed_item
from khabar.transforms.split import UnsupportedFormat, detect_format, split_records

LOG = logging.getLogger("khabar.poll")

DEFAULT_TIMEOUT = 20.0
DEFAULT_MAX_FEED_BYTES = 10 * 1024 * 1024
DEFAULT_WORKERS = 8
STOP_GRACE = 2.0
MAX_REDIRECTS = 5
BACKOFF_START = 30.0
BACKOFF_MAX = 3600.0
SEEN_TTL_DAYS = 30
MAX_MESSAGE_BYTES = 9 * 1024 * 1024  # Pub/Sub allows 10 MB per message
USER_AGENT = "khabar-poller/0.1 (+https://github.com/khabar)"
#: Message attribute carrying the item key (deterministic: feed URL + GUID/link/hash).
ITEM_ATTRIBUTE = "khabar_item"


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
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".poller-state-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.replace(tmp, path)  # atomic: a killed poller never leaves half a state file


# --------------------------------------------------------------------------- fetching


def check_url_allowed(
    url: str,
    allow: Sequence[str | Network] = (),
    resolver: Resolver = system_resolver,
    timeout: float = DEFAULT_TIMEOUT,
) -> Target:
    """Refuse non-HTTP schemes and hosts any of whose addresses is refused (see
    ``pipeline.netguard``); return the checked address to connect to."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise FetchError(f"refused URL scheme {parts.scheme!r}: {url}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise FetchError(f"bad port in {url}") from None
    try:
        return check_host(parts.hostname or "", port, allow, resolver, timeout)
    except AddressRefused as exc:
        raise FetchError(str(exc)) from None
    except DeadlineExceeded:
        raise FetchError(f"timeout after {timeout:g} s resolving {parts.hostname}") from None


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
    allow: Sequence[str | Network] = (),
    resolver: Resolver = system_resolver,
    ssl_context: ssl.SSLContext | None = None,
) -> FetchResult:
    """Conditional GET with limits and one total deadline (``timeout``: DNS, connect,
    headers and body together, redirects included); follows redirects by hand,
    checking each hop's addresses and connecting to the address checked."""
    import urllib3

    watchdog = Watchdog(timeout)
    try:
        return _fetch(url, state, max_bytes, allow, resolver, ssl_context, watchdog)
    except DeadlineExceeded:
        raise FetchError(f"timeout after {timeout:g} s (total deadline)") from None
    except (urllib3.exceptions.HTTPError, OSError, http.client.HTTPException) as exc:
        if watchdog.expired:
            raise FetchError(f"timeout after {timeout:g} s (total deadline)") from None
        raise FetchError(f"{type(exc).__name__}: {exc}") from None
    finally:
        watchdog.cancel()


def _fetch(
    url: str,
    state: FeedState,
    max_bytes: int,
    allow: Sequence[Network],
    resolver: Resolver,
    ssl_context: ssl.SSLContext | None,
    watchdog: Watchdog,
) -> FetchResult:
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        target = check_url_allowed(current, allow, resolver, max(0.0, watchdog.remaining()))
        watchdog.check()
        parts = urlsplit(current)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        pool = pinned_pool(parts.scheme, target, watchdog, ssl_context)
        try:
            response = pool.urlopen(
                "GET",
                path,
                headers=headers,
                redirect=False,
                retries=False,
                preload_content=False,
                decode_content=True,
                assert_same_host=False,
            )
            try:
                status = response.status
                if status in (301, 302, 303, 307, 308):
                    location = response.headers.get("Location")
                    if not location:
                        raise FetchError(f"redirect without Location from {current}")
                    current = urljoin(current, location)
                    continue
                if status == 304:
                    return FetchResult(304, b"", state.etag, state.last_modified, current)
                if status >= 400:
                    raise FetchError(f"HTTP {status} from {current}")
                declared = response.headers.get("Content-Length")
                if (
                    declared
                    and declared.isdigit()
                    and int(declared) > max_bytes
                    and not response.headers.get("Content-Encoding")
                ):
                    raise FetchError(f"feed of {declared} bytes is above the limit of {max_bytes}")
                chunks: list[bytes] = []
                size = 0
                for chunk in response.stream(65536, decode_content=True):
                    watchdog.check()
                    size += len(chunk)
                    if size > max_bytes:
                        raise FetchError(f"feed above the limit of {max_bytes} bytes")
                    chunks.append(chunk)
                # a body ended by the watchdog's shutdown looks like a normal end: check
                watchdog.check()
                return FetchResult(
                    status,
                    b"".join(chunks),
                    response.headers.get("ETag"),
                    response.headers.get("Last-Modified"),
                    current,
                )
            finally:
                response.release_conn()
                response.close()
        finally:
            pool.close()
    raise FetchError(f"more than {MAX_REDIRECTS} redirects from {url}")


# --------------------------------------------------------------------------- publishing

#: publish(data, attributes) -> None (done) or a future whose ``result(timeout)`` is the ack
Publish = Callable[[bytes, dict[str, str]], Any]
PUBLISH_TIMEOUT = 60.0


class PubSubPublisher:
    """Publishes to a Pub/Sub topic (the emulator when PUBSUB_EMULATOR_HOST is set);
    returns the publish future (its result is the server's acknowledgement)."""

    def __init__(self, topic: str) -> None:
        from google.cloud import pubsub_v1

        self.topic = topic
        self.client = pubsub_v1.PublisherClient(
            batch_settings=pubsub_v1.types.BatchSettings(max_messages=100, max_latency=0.01)
        )

    def __call__(self, data: bytes, attributes: dict[str, str]) -> Any:
        return self.client.publish(self.topic, data, **attributes)


def item_key(feed_url: str, guid: str | None, link: str | None, payload: bytes) -> str:
    ident = guid or link or hashlib.sha256(payload).hexdigest()
    return hashlib.sha256(f"{feed_url}\n{ident}".encode()).hexdigest()[:32]


@dataclass
class PollStats:
    fetched: int = 0
    not_modified: int = 0
    errors: int = 0
    published: int = 0  # messages acknowledged by Pub/Sub
    records: int = 0  # records those messages carry (a JSON Lines chunk carries many)
    publish_errors: int = 0  # not acknowledged: not marked seen, tried again next poll
    skipped_seen: int = 0
    same_guid: int = 0  # a later item of the same fetch with an item key already there
    files: int = 0
    skipped_nonregular: int = 0  # FIFOs, sockets, devices in a watched folder
    references: int = 0  # big non-JSON-Lines files published by reference
    backoff: int = 0

    def add(self, other: PollStats) -> None:
        for key, value in vars(other).items():
            setattr(self, key, getattr(self, key) + value)


#: A message on its way to Pub/Sub is what the spool keeps of it (key, data, attributes,
#: records): one shape, so spooling it is no conversion.
Outgoing = SpooledMessage


class Poller:
    """Polls feeds concurrently (a bounded pool; each request has its own total
    deadline, so a slow feed holds only itself) and watched folders; publishes new
    items and marks them seen only once Pub/Sub acknowledged them. With a ``spool``
    every message is appended there (fsynced) before it is published."""

    def __init__(
        self,
        publish: Publish,
        feeds: list[str] | None = None,
        watch: list[str] | None = None,
        state_path: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_feed_bytes: int = DEFAULT_MAX_FEED_BYTES,
        allow: Sequence[str | Network] = (),
        clock: Callable[[], float] = time.time,
        workers: int = DEFAULT_WORKERS,
        resolver: Resolver = system_resolver,
        ssl_context: ssl.SSLContext | None = None,
        spool: Spool | None = None,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self.publish = publish
        self.feeds = list(dict.fromkeys(feeds or []))
        self.watch = list(watch or [])
        self.state_path = state_path
        self.timeout = timeout
        self.max_feed_bytes = max_feed_bytes
        self.allow = parse_allow(allow)
        self.clock = clock
        self.workers = max(1, workers)
        self.resolver = resolver
        self.ssl_context = ssl_context
        self.spool = spool
        self.max_message_bytes = max_message_bytes
        self.state = PollerState.load(state_path)
        self._lock = threading.Lock()
        self._warned: set[str] = set()
        if spool is not None:
            # a spooled message is published (or replayed on start): never again
            now = self.clock()
            for message in spool.read():
                self.state.seen.setdefault(message.key, now)

    # publishing
    def _deliver(self, items: list[Outgoing], stats: PollStats) -> bool:
        """Spool, publish, wait for every ack; mark seen only what was acknowledged.
        True when all were acknowledged."""
        if not items:
            return True
        if self.spool is not None:
            self.spool.append(items)
        sent = []
        for item in items:
            try:
                sent.append((item, self.publish(item.data, item.attributes)))
            except Exception as exc:  # noqa: BLE001 - counted; tried again next poll
                sent.append((item, exc))
        ok = True
        for item, future in sent:
            try:
                if isinstance(future, BaseException):
                    raise future
                if future is not None and hasattr(future, "result"):
                    future.result(timeout=PUBLISH_TIMEOUT)
            except Exception as exc:  # noqa: BLE001 - not acknowledged: not seen
                ok = False
                stats.publish_errors += 1
                LOG.warning("publish of %s failed: %s", item.attributes.get("input_uri"), exc)
                continue
            with self._lock:
                self.state.seen[item.key] = self.clock()
            stats.published += 1
            stats.records += item.records
        return ok

    def _message(
        self,
        key: str,
        payload: bytes,
        uri: str,
        position: int,
        fmt: str,
        unit: str,
        fetched_at: str,
        extra: dict[str, str] | None = None,
        records: int = 1,
    ) -> Outgoing:
        attributes = {
            "input_uri": uri,
            "position": str(position),
            "format": fmt,
            "unit": unit,
            "fetched_at": fetched_at,
            ITEM_ATTRIBUTE: key,
        }
        for name, value in (extra or {}).items():
            attributes[name] = str(value)[:1000]
        return Outgoing(key, payload, attributes, records)

    # feeds
    def poll_feed(self, url: str) -> PollStats:
        stats = PollStats()
        with self._lock:
            fs = self.state.feeds.setdefault(url, FeedState())
        now = self.clock()
        if fs.next_attempt > now:
            stats.backoff += 1
            return stats
        try:
            result = fetch(
                url,
                fs,
                self.timeout,
                self.max_feed_bytes,
                self.allow,
                self.resolver,
                self.ssl_context,
            )
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
        fetched_at = dt.datetime.fromtimestamp(now, dt.UTC).isoformat()
        try:
            records = list(split_records(url, result.body, "feed", self.max_feed_bytes))
        except Exception as exc:  # noqa: BLE001 - one bad feed never stops the poller
            # the whole response is unusable: publish it once so it is dead-lettered
            key = item_key(url, None, None, result.body)
            if key not in self.state.seen:
                message = self._message(
                    key, result.body[: self.max_message_bytes], url, 0, "feed", "file", fetched_at
                )
                self._deliver([message], stats)
            LOG.warning("feed %s: %s", url, exc)
            return stats
        batch: list[Outgoing] = []
        keys: set[str] = set()
        for record in records:
            guid = link = None
            try:
                item = parse_feed_item(record.payload, record.format)
                guid, link = item.get("guid"), item.get("url")
            except Exception:  # noqa: BLE001 - a malformed item is still published once
                pass
            key = item_key(url, guid, link, record.payload)
            if key in keys:
                stats.same_guid += 1
                LOG.warning(
                    "feed %s: item %d repeats the id %r of an earlier item",
                    url,
                    record.position,
                    guid or link,
                )
                continue
            keys.add(key)
            if key in self.state.seen:
                stats.skipped_seen += 1
                continue
            extra = {"guid": guid or link or ""}
            if record.attributes.get("feed_title"):
                extra["feed_title"] = record.attributes["feed_title"]
            batch.append(
                self._message(
                    key,
                    record.payload,
                    url,
                    record.position,
                    record.format,
                    "record",
                    fetched_at,
                    extra,
                )
            )
        if self._deliver(batch, stats):
            # the validators move on only once every new item was acknowledged: a
            # failed publish is fetched (and tried) again instead of getting a 304
            fs.etag, fs.last_modified = result.etag, result.last_modified
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

        if "://" not in path:
            try:
                mode = os.stat(path).st_mode
            except OSError:
                return
            if not stat.S_ISREG(mode):  # a FIFO would block the poller: never opened
                stats.skipped_nonregular += 1
                if path not in self._warned:
                    self._warned.add(path)
                    LOG.warning("watch: %s is not a regular file: skipped", path)
                return
        matched = FileSystems.match([escape_glob(path)])[0].metadata_list
        if not matched:
            return
        meta = matched[0]
        marker = f"{meta.size_in_bytes}:{getattr(meta, 'last_updated_in_seconds', 0)}"
        if self.state.files.get(path) == marker:
            return
        if self._publish_file(path, meta.size_in_bytes, marker, stats):
            self.state.files[path] = marker
        stats.files += 1

    def _publish_file(self, path: str, size: int, marker: str, stats: PollStats) -> bool:
        fetched_at = dt.datetime.fromtimestamp(self.clock(), dt.UTC).isoformat()
        with FileSystems.open(path, compression_type="uncompressed") as handle:
            head = handle.read(4096)
        try:
            fmt = detect_format(path, head)
        except UnsupportedFormat:  # a type khabar does not read: the pipeline dead-letters it
            fmt = ""
        if size > self.max_message_bytes:
            if fmt == "jsonl":
                return self._publish_jsonl_chunks(path, fetched_at, stats)
            return self._publish_reference(path, marker, fmt, fetched_at, stats)
        with FileSystems.open(path, compression_type="uncompressed") as handle:
            data = handle.read(self.max_message_bytes + 1)
        if len(data) > self.max_message_bytes:  # grew since it was listed
            return self._publish_reference(path, marker, fmt, fetched_at, stats)
        try:
            records = list(split_records(path, data, fmt, self.max_feed_bytes))
        except Exception:  # noqa: BLE001 - the whole file goes on, to be dead-lettered
            key = item_key(path, None, None, data)
            if key in self.state.seen:
                return True
            return self._deliver(
                [self._message(key, data, path, 0, fmt, "file", fetched_at)], stats
            )
        batch = []
        for record in records:
            key = item_key(path, None, None, record.payload + b"#%d" % record.position)
            if key in self.state.seen:
                stats.skipped_seen += 1
                continue
            extra = {k: v for k, v in record.attributes.items() if v}
            batch.append(
                self._message(
                    key,
                    record.payload,
                    path,
                    record.position,
                    record.format,
                    "record",
                    fetched_at,
                    extra,
                )
            )
        return self._deliver(batch, stats)

    def _publish_jsonl_chunks(self, path: str, fetched_at: str, stats: PollStats) -> bool:
        """A big JSON Lines file: line-bounded messages, each under the message limit
        (``line_offset`` keeps the line numbers); a single line above the limit makes
        the file go by reference instead."""
        budget = self.max_message_bytes
        ok = True
        chunk: list[bytes] = []
        size = first_line = lineno = 0

        def flush() -> bool:
            data = b"".join(chunk)
            key = item_key(path, None, None, hashlib.sha256(data).digest() + b"#%d" % first_line)
            if key in self.state.seen:
                stats.skipped_seen += 1
                return True
            lines = sum(1 for line in chunk if line.strip()) or 1  # all blank: 1 dead letter
            extra = {"line_offset": str(first_line)}
            message = self._message(
                key, data, path, first_line, "jsonl", "file", fetched_at, extra, records=lines
            )
            return self._deliver([message], stats)

        with FileSystems.open(path, compression_type="uncompressed") as handle:
            while True:
                line = handle.readline(budget + 1)
                if not line:
                    break
                if len(line) > budget:
                    marker = self.state.files.get(path) or path
                    return ok and self._publish_reference(path, marker, "jsonl", fetched_at, stats)
                if size + len(line) > budget and chunk:
                    ok = flush() and ok
                    chunk, size, first_line = [], 0, lineno
                chunk.append(line)
                size += len(line)
                lineno += 1
        if chunk:
            ok = flush() and ok
        return ok

    def _publish_reference(
        self, path: str, marker: str, fmt: str, fetched_at: str, stats: PollStats
    ) -> bool:
        """A big file the pipeline reads itself: the message carries its path or URI."""

        key = item_key(path, None, None, marker.encode())
        if key in self.state.seen:
            return True
        attrs = {"input_uri": path, "unit": "ref", "format": fmt}
        found, error = message_records(path.encode(), attrs, self.max_feed_bytes)
        records = len(found) + (error is not None)  # a failure is one dead letter
        stats.references += 1
        LOG.warning("watch: %s is above the message limit: published by reference", path)
        message = self._message(
            key, path.encode("utf-8"), path, 0, fmt, "ref", fetched_at, records=records
        )
        return self._deliver([message], stats)

    def poll_watched(self) -> PollStats:
        stats = PollStats()
        for base in self.watch:
            stats.add(self.poll_watch(base))
        return stats

    def replay(self, messages: list[SpooledMessage]) -> PollStats:
        """Publish spooled messages again (after a restart), waiting for the acks."""
        stats = PollStats()
        futures = [(m, self.publish(m.data, m.attributes)) for m in messages]
        for message, future in futures:
            try:
                if future is not None and hasattr(future, "result"):
                    future.result(timeout=PUBLISH_TIMEOUT)
                stats.published += 1
                stats.records += message.records
            except Exception as exc:  # noqa: BLE001 - stays in the spool for the next start
                stats.publish_errors += 1
                LOG.warning("replay failed: %s", exc)
        return stats

    def save(self) -> None:
        with self._lock:
            self.state.save(self.state_path)

    def poll_once(self) -> PollStats:
        """Every feed (concurrently, bounded pool), then the watched folders."""
        stats = PollStats()
        with ThreadPoolExecutor(self.workers, thread_name_prefix="khabar-poll") as pool:
            for result in pool.map(self.poll_feed, self.feeds):
                stats.add(result)
        stats.add(self.poll_watched())
        self.save()
        return stats

    def run(
        self,
        interval: float = 60.0,
        max_runtime: float | None = None,
        stop: threading.Event | None = None,
        on_poll: Callable[[PollStats], Any] | None = None,
    ) -> PollStats:
        """Poll each feed every ``interval`` seconds, each on its own schedule in a
        bounded pool (a feed still in flight is not started again, and never delays
        the others), until ``max_runtime`` or ``stop``. In-flight requests are given
        ``STOP_GRACE`` seconds at the end, then left to their deadline."""
        stop = stop or threading.Event()
        started = time.monotonic()
        total = PollStats()
        due = dict.fromkeys(self.feeds, 0.0)
        inflight: dict[Future, str] = {}
        next_watch = 0.0
        last_save = time.monotonic()
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="khabar-poll")

        def collect(done: Iterable[Future]) -> None:
            for future in done:
                inflight.pop(future, None)
                try:
                    stats = future.result()
                except Exception as exc:  # noqa: BLE001 - one feed's bug never stops the rest
                    LOG.warning("poll failed: %s", exc)
                    stats = PollStats(errors=1)
                total.add(stats)
                if on_poll:
                    on_poll(stats)

        try:
            while not stop.is_set():
                now = time.monotonic()
                if max_runtime is not None and now - started >= max_runtime:
                    break
                busy = set(inflight.values())
                for url in self.feeds:
                    if url not in busy and due[url] <= now:
                        inflight[pool.submit(self.poll_feed, url)] = url
                        due[url] = now + interval
                if self.watch and next_watch <= now:
                    stats = self.poll_watched()
                    total.add(stats)
                    if on_poll:
                        on_poll(stats)
                    next_watch = time.monotonic() + interval
                if inflight:
                    done, _ = wait(list(inflight), timeout=0.2, return_when=FIRST_COMPLETED)
                    collect(done)
                else:
                    stop.wait(0.2)
                if time.monotonic() - last_save >= 1.0:
                    self.save()
                    last_save = time.monotonic()
            if inflight:
                done, _ = wait(list(inflight), timeout=STOP_GRACE)
                collect(done)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            self.save()
        return total
