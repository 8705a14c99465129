"""Outbound HTTP for the poller: addresses checked as connected, one total deadline.

* **Resolve once, check every address, connect to the checked one.** A host name is
  resolved once; every address it resolves to is normalized (IPv4-mapped ``::ffff:a.b.c.d``,
  IPv4-translated ``::ffff:0:a.b.c.d``, IPv4-compatible ``::a.b.c.d``, NAT64
  ``64:ff9b::/96`` and 6to4 ``2002::/16`` become the IPv4 address they carry) and checked;
  the connection then goes to that very address (no second lookup, so DNS rebinding has
  nothing to rebind), with the URL's host name kept in the ``Host`` header, in TLS SNI and
  in certificate verification.
* **Refused by default:** loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7),
  link-local (169.254/16 with the cloud metadata address, fe80::/10), CGNAT 100.64/10
  (Alibaba's metadata 100.100.100.200), 192.0.0/24 (Oracle's metadata 192.0.0.192),
  multicast, reserved, unspecified, documentation/benchmark ranges, Teredo, and anything
  else Python's ``ipaddress`` does not call global. ``allow`` (the CLI's
  ``--allow-address-range CIDR``) lets exactly the ranges it names through.
* **One deadline per request**, connect + headers + body, enforced by a watchdog timer
  that shuts the socket down when it expires, so a server trickling one byte at a time
  cannot hold a request past it (a per-read timeout would restart with every byte).
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]

METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # IPv4-translated (SIIT)

#: (network, reason) checked in order; the first match names the refusal.
REFUSED: tuple[tuple[Network, str], ...] = tuple(
    (ipaddress.ip_network(net), reason)
    for net, reason in (
        ("169.254.169.254/32", "cloud metadata"),
        ("100.100.100.200/32", "cloud metadata (Alibaba)"),
        ("192.0.0.192/32", "cloud metadata (Oracle)"),
        ("fd00:ec2::254/128", "cloud metadata (AWS IPv6)"),
        ("0.0.0.0/8", "unspecified ('this network')"),
        ("127.0.0.0/8", "loopback"),
        ("10.0.0.0/8", "private"),
        ("172.16.0.0/12", "private"),
        ("192.168.0.0/16", "private"),
        ("100.64.0.0/10", "carrier-grade NAT"),
        ("169.254.0.0/16", "link-local"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("198.18.0.0/15", "benchmarking"),
        ("224.0.0.0/4", "multicast"),
        ("255.255.255.255/32", "broadcast"),
        ("240.0.0.0/4", "reserved"),
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("fc00::/7", "private (unique local)"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local (deprecated)"),
        ("ff00::/8", "multicast"),
        ("2001::/32", "Teredo tunnel"),
        ("2001:db8::/32", "documentation"),
        ("64:ff9b:1::/48", "local-use NAT64"),
        ("100::/64", "discard-only"),
    )
)


class AddressRefused(Exception):
    """A URL whose host (or one of its addresses) is not allowed."""


class DeadlineExceeded(Exception):
    """The request's total deadline passed (connect + headers + body)."""


def parse_allow(ranges: Iterable[str | Network]) -> tuple[Network, ...]:
    """``--allow-address-range`` values -> networks (ValueError for a bad one)."""
    out = []
    for value in ranges:
        if isinstance(value, str):
            value = ipaddress.ip_network(value.strip(), strict=False)
        out.append(value)
    return tuple(out)


def normalize(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 form carries (mapped, translated, compatible, NAT64,
    6to4); any other address unchanged."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    value = int(address)
    if address in _TRANSLATED or address in _NAT64:
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if value >> 32 == 0 and value > 1:  # IPv4-compatible ::a.b.c.d (not :: or ::1)
        return ipaddress.IPv4Address(value)
    if address in _SIX_TO_FOUR:
        return ipaddress.IPv4Address((value >> 80) & 0xFFFFFFFF)
    return address


def verdict(address: str | IPAddress, allow: Sequence[str | Network] = ()) -> str | None:
    """None when the address may be connected to, else the reason it is refused."""
    allow = parse_allow(allow)
    raw = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(raw, ipaddress.IPv6Address) and raw.scope_id:
        raw = ipaddress.IPv6Address(str(raw).split("%", 1)[0])
    plain = normalize(raw)
    for candidate in {raw, plain}:
        if any(candidate.version == net.version and candidate in net for net in allow):
            return None
    for net, reason in REFUSED:
        if plain.version == net.version and plain in net:
            return reason
    if plain.is_multicast:
        return "multicast"
    if plain.is_reserved:
        return "reserved"
    if not plain.is_global:
        return "not globally routable"
    return None


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def resolve(host: str, port: int, resolver: Resolver, timeout: float) -> list[str]:
    """All addresses of ``host``, within ``timeout`` (a hung lookup is abandoned)."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["ok"] = resolver(host, port)
        except Exception as exc:  # noqa: BLE001 - reported to the caller
            box["error"] = exc

    worker = threading.Thread(target=run, daemon=True, name="khabar-resolve")
    worker.start()
    worker.join(max(0.0, timeout))
    if worker.is_alive():
        raise DeadlineExceeded(f"resolving {host} took longer than the deadline")
    if "error" in box:
        raise AddressRefused(f"cannot resolve {host}: {box['error']}")
    return list(box.get("ok") or [])


@dataclass(frozen=True)
class Target:
    """A checked destination: the host name as written and the address to connect to."""

    host: str
    port: int
    address: str


def check_host(
    host: str,
    port: int,
    allow: Sequence[str | Network] = (),
    resolver: Resolver = system_resolver,
    timeout: float = 10.0,
) -> Target:
    """Resolve once and check every address; the first one is the one to connect to."""
    allow = parse_allow(allow)
    name = host.lower().rstrip(".")
    if not name:
        raise AddressRefused("URL without host")
    literal: IPAddress | None
    try:
        literal = ipaddress.ip_address(name)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [str(literal)]
    else:
        if name in METADATA_HOSTS and not allow:
            raise AddressRefused(f"refused metadata host {name}")
        addresses = resolve(name, port, resolver, timeout)
        if not addresses:
            raise AddressRefused(f"{name} resolves to no address")
    for address in addresses:
        reason = verdict(address, allow)
        if reason is not None:
            shown = address if literal is None else str(literal)
            raise AddressRefused(f"refused {reason} address {shown} for {name}")
    # connect to the address as resolved (a NAT64 address must go through the NAT64)
    return Target(name, port, str(ipaddress.ip_address(addresses[0].split("%", 1)[0])))


class Watchdog:
    """A total deadline: when it passes, every socket attached is shut down, which ends
    any blocked connect, send or receive at once."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expires = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, seconds), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        return self.expires - time.monotonic()

    def check(self) -> None:
        if self.expired or self.remaining() <= 0:
            self.expired = True
            raise DeadlineExceeded(f"timeout after {self.seconds:g} s (total deadline)")

    def attach(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def _fire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)

    def cancel(self) -> None:
        self._timer.cancel()


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def pinned_pool(
    scheme: str,
    target: Target,
    watchdog: Watchdog,
    ssl_context: ssl.SSLContext | None = None,
):
    """A one-connection urllib3 pool for ``target.host`` whose socket goes to
    ``target.address`` (checked) and is watched by ``watchdog``. urllib3 keeps the
    host name for the Host header, SNI and certificate checks."""
    import urllib3
    from urllib3.connection import HTTPConnection, HTTPSConnection

    def new_conn(self) -> socket.socket:  # replaces urllib3's resolve-and-connect
        family = socket.AF_INET6 if ":" in target.address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        watchdog.attach(sock)
        try:
            sock.settimeout(max(0.001, watchdog.remaining()))
            sock.connect((target.address, target.port))
        except OSError as exc:
            sock.close()
            watchdog.check()
            raise urllib3.exceptions.NewConnectionError(self, f"connect failed: {exc}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    base = HTTPSConnection if scheme == "https" else HTTPConnection
    conn_cls = type("PinnedConnection", (base,), {"_new_conn": new_conn})
    left = max(0.001, watchdog.remaining())
    timeout = urllib3.Timeout(connect=left, read=left)
    if scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            target.host,
            target.port,
            timeout=timeout,
            maxsize=1,
            retries=False,
            ssl_context=ssl_context,
            cert_reqs="CERT_REQUIRED",
        )
    else:
        pool = urllib3.HTTPConnectionPool(
            target.host, target.port, timeout=timeout, maxsize=1, retries=False
        )
    pool.ConnectionCls = conn_cls
    return pool
