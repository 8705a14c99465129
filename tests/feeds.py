"""A real HTTP server on loopback serving feeds whose items change between polls."""

from __future__ import annotations

import gzip
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def rss(title: str, items: list[tuple[str, str, str]]) -> bytes:
    """items: (guid, title, description)."""
    body = "".join(
        f"<item><title>{t}</title><link>https://news.example/{g}</link><guid>{g}</guid>"
        f"<pubDate>Sat, 28 Nov 2026 07:00:00 GMT</pubDate><description>{d}</description></item>"
        for g, t, d in items
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>{title}</title>{body}</channel></rss>"
    ).encode()


def atom(title: str, entries: list[tuple[str, str, str]]) -> bytes:
    body = "".join(
        f'<entry><id>{i}</id><title>{t}</title><link rel="alternate" href="https://atom.example/{i}"/>'
        f"<updated>2026-11-28T07:00:00Z</updated><summary>{s}</summary></entry>"
        for i, t, s in entries
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>{title}</title>{body}</feed>"
    ).encode()


class FeedServer:
    """Routes: path -> (bytes, etag) or a special behaviour. Counts requests per path."""

    def __init__(self) -> None:
        self.routes: dict[str, bytes] = {}
        self.redirects: dict[str, str] = {}
        self.slow: dict[str, float] = {}
        self.gzip_paths: set[str] = set()
        self.requests: dict[str, list[int]] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                path = self.path
                if path in server.slow:
                    time.sleep(server.slow[path])
                if path in server.redirects:
                    self._reply(path, 302, b"", {"Location": server.redirects[path]})
                    return
                if path not in server.routes:
                    self._reply(path, 404, b"not found")
                    return
                body = server.routes[path]
                etag = '"%x"' % (hash(body) & 0xFFFFFFFF)
                if self.headers.get("If-None-Match") == etag:
                    self._reply(path, 304, b"")
                    return
                headers = {"ETag": etag, "Content-Type": "application/rss+xml"}
                if path in server.gzip_paths:
                    body = gzip.compress(body)
                    headers["Content-Encoding"] = "gzip"
                self._reply(path, 200, body, headers)

            def _reply(self, path: str, status: int, body: bytes, headers=None) -> None:
                server.requests.setdefault(path, []).append(status)
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> FeedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
