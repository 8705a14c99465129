"""Addresses checked as connected, and one total deadline per request: real servers on
loopback (a trickle server, a TLS server, a rebinding resolver), no mocks of the socket."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from khabar.pipeline.commands.netguard import AddressRefused, check_host, normalize, verdict
from khabar.pipeline.commands.poller import FeedState, FetchError, Poller, fetch
from tests.feeds import FeedServer, rss

LOOP = ("127.0.0.0/8",)

# (address as written in a URL host, verdict with the default policy: None = allowed)
FORMS = [
    ("169.254.169.254", "cloud metadata"),
    ("::ffff:169.254.169.254", "cloud metadata"),  # IPv4-mapped, dotted
    ("::ffff:a9fe:a9fe", "cloud metadata"),  # IPv4-mapped, hex
    ("64:ff9b::a9fe:a9fe", "cloud metadata"),  # NAT64
    ("::169.254.169.254", "cloud metadata"),  # IPv4-compatible
    ("::ffff:0:a9fe:a9fe", "cloud metadata"),  # IPv4-translated (SIIT)
    ("2002:a9fe:a9fe::1", "cloud metadata"),  # 6to4
    ("100.100.100.200", "cloud metadata (Alibaba)"),
    ("192.0.0.192", "cloud metadata (Oracle)"),
    ("fd00:ec2::254", "cloud metadata (AWS IPv6)"),
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("::ffff:127.0.0.1", "loopback"),
    ("::127.0.0.1", "loopback"),
    ("64:ff9b::7f00:1", "loopback"),
    ("::1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.1", "private"),
    ("::ffff:10.0.0.1", "private"),
    ("fc00::1", "private (unique local)"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("169.254.1.1", "link-local"),
    ("fe80::1", "link-local"),
    ("192.0.0.8", "IETF protocol assignments"),
    ("192.0.0.10", "IETF protocol assignments"),
    ("0.0.0.0", "unspecified ('this network')"),
    ("::", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("198.18.0.1", "benchmarking"),
    ("2001:db8::1", "documentation"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo tunnel"),
    ("93.184.216.34", None),
    ("2606:4700:4700::1111", None),
    ("64:ff9b::5db8:d822", None),  # NAT64 of a public address
    ("::ffff:93.184.216.34", None),
    ("172.32.0.1", None),  # just outside 172.16/12
    ("100.128.0.1", None),  # just outside 100.64/10
]


@pytest.mark.parametrize(("address", "reason"), FORMS)
def test_address_forms_verdicts(address: str, reason: str | None) -> None:
    assert verdict(address) == reason
    host = f"[{address}]" if ":" in address else address
    if reason is None:
        checked = check_host(address, 80).address
        assert ipaddress.ip_address(checked) == ipaddress.ip_address(address)
    else:
        with pytest.raises(AddressRefused, match="refused"):
            check_host(address, 80)
        # and through a fetch of a URL spelling it, before any connection is tried
        with pytest.raises(FetchError, match="refused"):
            fetch(f"http://{host}:9/feed", FeedState(), timeout=2)


def test_normalize_forms_to_ipv4() -> None:
    for form in ("::ffff:169.254.169.254", "::ffff:a9fe:a9fe", "64:ff9b::a9fe:a9fe"):
        assert str(normalize(ipaddress.ip_address(form))) == "169.254.169.254"
    assert str(normalize(ipaddress.ip_address("::169.254.169.254"))) == "169.254.169.254"
    assert str(normalize(ipaddress.ip_address("::1"))) == "::1"  # not ::0.0.0.1


def test_other_spellings_and_names_resolve_then_are_checked() -> None:
    # inet_aton spellings reach the resolver; what they resolve to is what is checked
    for spelling in ("127.1", "2130706433", "0x7f000001", "0177.0.0.1", "localhost"):
        with pytest.raises(AddressRefused, match="loopback"):
            check_host(spelling, 80)
    with pytest.raises(AddressRefused, match="metadata host"):
        check_host("metadata.google.internal", 80)

    # a name with one good and one bad address is refused as a whole
    def mixed(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "10.0.0.5"]

    with pytest.raises(AddressRefused, match="private address 10.0.0.5"):
        check_host("news.example", 80, resolver=mixed)


def test_loopback_needs_the_opt_in_and_ipv4_mapped_does_not_sneak_in() -> None:
    with FeedServer() as server:  # listens on IPv4 loopback only
        server.routes["/a.rss"] = rss("A", [("g1", "t", "d")])
        for url in (
            server.url("/a.rss"),
            f"http://[::ffff:127.0.0.1]:{server.port}/a.rss",
            f"http://[::127.0.0.1]:{server.port}/a.rss",
            f"http://[64:ff9b::7f00:1]:{server.port}/a.rss",
            f"http://localhost:{server.port}/a.rss",
        ):
            with pytest.raises(FetchError, match="refused loopback"):
                fetch(url, FeedState(), timeout=3)
        assert server.requests == {}  # nothing reached the server
        assert fetch(server.url("/a.rss"), FeedState(), allow=LOOP).status == 200
        # the opt-in names exactly what it allows: 127.0.0.1/32 does not allow 10/8
        with pytest.raises(FetchError, match="private"):
            fetch("http://10.0.0.1/", FeedState(), allow=("127.0.0.1/32",))


class _Named(ThreadingHTTPServer):
    daemon_threads = True


def _server(address: str, body: bytes, seen: list[str]) -> _Named:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.headers.get("Host", ""))
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return _Named((address, 0), Handler)


def test_dns_rebinding_is_defeated_by_resolving_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The name answers 127.0.0.1 (allowed here) first and 127.0.0.2 (not allowed)
    after: the check and the connection use the first answer; nothing looks again."""
    good_hosts: list[str] = []
    secret_hosts: list[str] = []
    good = _server("127.0.0.1", rss("Good", [("g", "good", "x")]), good_hosts)
    port = good.server_address[1]
    try:
        secret = _Named(("127.0.0.2", port), good.RequestHandlerClass)
    except OSError:
        pytest.skip("cannot bind 127.0.0.2 on this machine")
    secret.RequestHandlerClass = _server("127.0.0.2", b"SECRET", secret_hosts).RequestHandlerClass
    for srv in (good, secret):
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    calls: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.1"] if len(calls) == 1 else ["127.0.0.2"]

    real = socket.getaddrinfo

    def patched(host, *args, **kwargs):  # any second lookup by a library gets the rebind
        if host == "rebind.test":
            calls.append(host)
            return real("127.0.0.2", *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", patched)
    try:
        result = fetch(
            f"http://rebind.test:{port}/feed",
            FeedState(),
            timeout=5,
            allow=("127.0.0.1/32",),
            resolver=rebinding,
        )
        assert b"good" in result.body and len(calls) == 1
        assert good_hosts == [f"rebind.test:{port}"] and secret_hosts == []  # Host kept
        # the next fetch resolves again: now the answer is refused before connecting
        with pytest.raises(FetchError, match="refused loopback address 127.0.0.2"):
            fetch(
                f"http://rebind.test:{port}/feed",
                FeedState(),
                timeout=5,
                allow=("127.0.0.1/32",),
                resolver=rebinding,
            )
        assert secret_hosts == []
    finally:
        for srv in (good, secret):
            srv.shutdown()
            srv.server_close()


def test_tls_keeps_host_name_for_sni_and_certificate(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("feeds.test")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    sni: list[str | None] = []
    server_ctx.sni_callback = lambda sock, name, ctx: sni.append(name)
    hosts: list[str] = []
    httpd = _server("127.0.0.1", rss("TLS", [("g", "tls item", "x")]), hosts)
    httpd.socket = server_ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    port = httpd.server_address[1]
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    try:
        result = fetch(
            f"https://feeds.test:{port}/feed",
            FeedState(),
            timeout=5,
            allow=LOOP,
            resolver=lambda host, port: ["127.0.0.1"],
            ssl_context=client_ctx,
        )
        assert b"tls item" in result.body
        assert sni == ["feeds.test"] and hosts == [f"feeds.test:{port}"]
        # the certificate is checked against the name, not the address connected to
        with pytest.raises(FetchError, match="(?i)certificate|hostname"):
            fetch(
                f"https://other.test:{port}/feed",
                FeedState(),
                timeout=5,
                allow=LOOP,
                resolver=lambda host, port: ["127.0.0.1"],
                ssl_context=client_ctx,
            )
    finally:
        httpd.shutdown()
        httpd.server_close()


class Trickle:
    """A server sending one byte every ``gap`` seconds: in the headers or in the body."""

    def __init__(self, where: str, gap: float = 0.5) -> None:
        self.where = where
        self.gap = gap
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slow.rss"

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                if self.where == "body":
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n<rss>")
                    filler = b"x"
                else:
                    conn.sendall(b"HTTP/1.1 200 OK\r\n")
                    filler = b"X"
                while not self.stop.is_set():
                    conn.sendall(filler)
                    time.sleep(self.gap)
            except OSError:
                return

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.mark.parametrize("where", ["headers", "body"])
def test_trickle_server_is_cut_at_the_total_deadline(where: str) -> None:
    trickle = Trickle(where)
    try:
        started = time.monotonic()
        with pytest.raises(FetchError, match="timeout after 2 s"):
            fetch(trickle.url(), FeedState(), timeout=2, allow=LOOP)
        elapsed = time.monotonic() - started
        assert 1.9 <= elapsed < 3.5, elapsed
    finally:
        trickle.close()


def test_slow_feeds_do_not_hold_up_healthy_ones() -> None:
    """Two trickle servers beside three healthy feeds, polled by Poller.run: the healthy
    feeds' items are published at once, and again on the next change, while the slow
    ones are still hanging (they end at their own deadline)."""
    slow = [Trickle("headers"), Trickle("body")]
    published: list[tuple[float, str]] = []
    started = time.monotonic()

    def sink(data: bytes, attributes: dict[str, str]) -> None:
        published.append((time.monotonic() - started, attributes["guid"]))

    try:
        with FeedServer() as server:
            healthy = [server.url(f"/h{i}.rss") for i in range(3)]
            for i in range(3):
                server.routes[f"/h{i}.rss"] = rss("H", [(f"h{i}-1", "t", "d")])
            poller = Poller(
                sink, feeds=[s.url() for s in slow] + healthy, timeout=6, allow=LOOP, workers=4
            )
            stop = threading.Event()
            runner = threading.Thread(
                target=poller.run, kwargs={"interval": 1.0, "max_runtime": 8, "stop": stop}
            )
            runner.start()
            time.sleep(2.5)
            changed = time.monotonic() - started
            for i in range(3):
                server.routes[f"/h{i}.rss"] = rss(
                    "H", [(f"h{i}-2", "t", "d"), (f"h{i}-1", "t", "d")]
                )
            runner.join(timeout=20)
    finally:
        for s in slow:
            s.close()
    first = [t for t, g in published if g.endswith("-1")]
    second = [t - changed for t, g in published if g.endswith("-2")]
    print(
        f"healthy publish delay: first round max {max(first):.2f} s, "
        f"after a change max {max(second):.2f} s (slow feeds' deadline 6 s)"
    )
    assert len(first) == 3 and max(first) < 1.5, published
    # polled every second on their own schedule although the slow feeds still hang
    assert len(second) == 3 and max(second) < 2.5, published
