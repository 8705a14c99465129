"""The poller against a real HTTP server on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from khabar.pipeline.commands.poller import FeedState, FetchError, Poller, check_url_allowed, fetch
from tests.feeds import FeedServer, atom, rss


class Collect:
    def __init__(self) -> None:
        self.messages: list[tuple[bytes, dict[str, str]]] = []

    def __call__(self, data: bytes, attributes: dict[str, str]) -> None:
        self.messages.append((data, attributes))


def test_conditional_get_new_items_and_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "state.json")
    with FeedServer() as server:
        server.routes["/a.rss"] = rss("A", [("g1", "One", "first"), ("g2", "Two", "second")])
        server.routes["/b.atom"] = atom("B", [("urn:1", "Alpha", "alpha text")])
        sink = Collect()
        feeds = [server.url("/a.rss"), server.url("/b.atom")]
        poller = Poller(sink, feeds=feeds, state_path=state)
        first = poller.poll_once()
        assert (first.fetched, first.published) == (2, 3)
        attrs = sink.messages[0][1]
        assert attrs["input_uri"] == server.url("/a.rss") and attrs["format"] == "rss"
        assert attrs["guid"] == "g1" and attrs["feed_title"] == "A" and attrs["fetched_at"]
        assert b'"id":"g1"' in sink.messages[0][0]  # the item's fields, as JSON
        # unchanged feeds: 304s, nothing published
        second = poller.poll_once()
        assert (second.not_modified, second.published) == (2, 0)
        assert server.requests["/a.rss"] == [200, 304]
        # a new item appears next to a repeated one
        server.routes["/a.rss"] = rss("A", [("g3", "Three", "third"), ("g1", "One", "first")])
        third = poller.poll_once()
        assert (third.published, third.skipped_seen) == (1, 1)
        # a restarted poller remembers what it published (and the ETags)
        restarted = Poller(sink, feeds=feeds, state_path=state)
        again = restarted.poll_once()
        assert again.published == 0 and again.not_modified == 2
        server.routes["/a.rss"] = rss("A", [("g1", "One", "first"), ("g4", "Four", "x")])
        assert restarted.poll_once().published == 1
    assert [m[1]["guid"] for m in sink.messages] == ["g1", "g2", "urn:1", "g3", "g4"]


def test_errors_back_off_and_do_not_stop_other_feeds(tmp_path: Path) -> None:
    clock = [1000.0]
    with FeedServer() as server:
        server.routes["/ok.rss"] = rss("OK", [("g1", "One", "x")])
        sink = Collect()
        poller = Poller(
            sink,
            feeds=[server.url("/missing.rss"), server.url("/ok.rss")],
            clock=lambda: clock[0],
        )
        stats = poller.poll_once()
        assert (stats.errors, stats.published) == (1, 1)
        assert "HTTP 404" in poller.state.feeds[server.url("/missing.rss")].last_error
        # inside the back-off window the failing feed is not requested again
        clock[0] += 10
        assert poller.poll_once().backoff == 1
        assert server.requests["/missing.rss"] == [404]
        clock[0] += 31
        poller.poll_once()
        assert server.requests["/missing.rss"] == [404, 404]
        assert poller.state.feeds[server.url("/missing.rss")].next_attempt == clock[0] + 60


def test_timeout_size_limit_and_gzip_bomb() -> None:
    with FeedServer() as server:
        server.routes["/slow.rss"] = rss("S", [("g", "t", "d")])
        server.slow["/slow.rss"] = 3.0
        with pytest.raises(FetchError, match="timeout"):
            fetch(server.url("/slow.rss"), FeedState(), timeout=0.5)
        server.routes["/big.rss"] = b"<rss>" + b"x" * 200_000 + b"</rss>"
        with pytest.raises(FetchError, match="above the limit"):
            fetch(server.url("/big.rss"), FeedState(), max_bytes=100_000)
        server.routes["/bomb.rss"] = b"<rss>" + b"\0" * 50_000_000 + b"</rss>"
        server.gzip_paths.add("/bomb.rss")
        with pytest.raises(FetchError, match="above the limit"):
            fetch(server.url("/bomb.rss"), FeedState(), max_bytes=1_000_000)


def test_redirects_to_other_schemes_or_metadata_are_refused() -> None:
    with FeedServer() as server:
        server.redirects["/to-file"] = "file:///etc/passwd"
        server.redirects["/to-metadata"] = "http://169.254.169.254/computeMetadata/v1/"
        server.redirects["/to-ok"] = "/ok.rss"
        server.routes["/ok.rss"] = rss("OK", [("g", "t", "d")])
        with pytest.raises(FetchError, match="scheme 'file'"):
            fetch(server.url("/to-file"), FeedState())
        with pytest.raises(FetchError, match="link-local/metadata"):
            fetch(server.url("/to-metadata"), FeedState(), timeout=2)
        assert fetch(server.url("/to-ok"), FeedState()).status == 200
    with pytest.raises(FetchError, match="metadata host"):
        check_url_allowed("http://metadata.google.internal/x")


def test_malformed_item_and_broken_feed_are_published_for_dead_letters() -> None:
    with FeedServer() as server:
        # an ill-formed feed: its item is recovered (as feedparser recovers it)
        server.routes["/broken.rss"] = b"<rss><channel><item><title>unclosed"
        server.routes["/notfeed.rss"] = b"<svg><circle/></svg>"
        # an item with nothing in it parses as XML but is not an article
        server.routes["/odd.rss"] = rss("O", [("g1", "fine", "ok")]).replace(
            b"</channel>", b"<item><guid>g9</guid></item></channel>"
        )
        sink = Collect()
        feeds = [server.url(p) for p in ("/broken.rss", "/notfeed.rss", "/odd.rss")]
        stats = Poller(sink, feeds=feeds).poll_once()
        assert stats.published == 4
        units = sorted(m[1]["unit"] for m in sink.messages)
        assert units == ["file", "record", "record", "record"]


def test_watch_folder_publishes_new_files_and_lines_once(tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "a.jsonl").write_text('{"title": "t1", "body": "b1"}\n')
    sink = Collect()
    poller = Poller(sink, watch=[str(folder)], state_path=str(tmp_path / "s.json"))
    assert poller.poll_once().published == 1
    assert poller.poll_once().published == 0
    with open(folder / "a.jsonl", "a") as handle:
        handle.write('{"title": "t2", "body": "b2"}\n')
    (folder / "b.txt").write_text("عنوان\n\nمتن خبر")
    stats = poller.poll_once()
    assert stats.published == 2 and stats.skipped_seen == 1
    assert {m[1]["format"] for m in sink.messages} == {"jsonl", "text"}
