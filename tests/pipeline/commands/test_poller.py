"""The poller against a real HTTP server on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from khabar.pipeline.commands.poller import FeedState, FetchError, Poller, check_url_allowed, fetch
from tests.feeds import FeedServer, atom, rss

#: the feed servers of these tests listen on loopback, refused unless allowed
LOOP = ("127.0.0.0/8",)


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
        poller = Poller(sink, feeds=feeds, state_path=state, allow=LOOP)
        first = poller.poll_once()
        assert (first.fetched, first.published) == (2, 3)
        # feeds are fetched concurrently: the order across feeds is not fixed
        (data, attrs), _ = [m for m in sink.messages if m[1]["input_uri"] == feeds[0]]
        assert attrs["format"] == "rss" and attrs["khabar_item"]
        assert attrs["guid"] == "g1" and attrs["feed_title"] == "A" and attrs["fetched_at"]
        assert b'"id":"g1"' in data  # the item's fields, as JSON
        # unchanged feeds: 304s, nothing published
        second = poller.poll_once()
        assert (second.not_modified, second.published) == (2, 0)
        assert server.requests["/a.rss"] == [200, 304]
        # a new item appears next to a repeated one
        server.routes["/a.rss"] = rss("A", [("g3", "Three", "third"), ("g1", "One", "first")])
        third = poller.poll_once()
        assert (third.published, third.skipped_seen) == (1, 1)
        # a restarted poller remembers what it published (and the ETags)
        restarted = Poller(sink, feeds=feeds, state_path=state, allow=LOOP)
        again = restarted.poll_once()
        assert again.published == 0 and again.not_modified == 2
        server.routes["/a.rss"] = rss("A", [("g1", "One", "first"), ("g4", "Four", "x")])
        assert restarted.poll_once().published == 1
    assert sorted(m[1]["guid"] for m in sink.messages) == ["g1", "g2", "g3", "g4", "urn:1"]


def test_errors_back_off_and_do_not_stop_other_feeds(tmp_path: Path) -> None:
    clock = [1000.0]
    with FeedServer() as server:
        server.routes["/ok.rss"] = rss("OK", [("g1", "One", "x")])
        sink = Collect()
        poller = Poller(
            sink,
            feeds=[server.url("/missing.rss"), server.url("/ok.rss")],
            clock=lambda: clock[0],
            allow=LOOP,
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
            fetch(server.url("/slow.rss"), FeedState(), timeout=0.5, allow=LOOP)
        server.routes["/big.rss"] = b"<rss>" + b"x" * 200_000 + b"</rss>"
        with pytest.raises(FetchError, match="above the limit"):
            fetch(server.url("/big.rss"), FeedState(), max_bytes=100_000, allow=LOOP)
        server.routes["/bomb.rss"] = b"<rss>" + b"\0" * 50_000_000 + b"</rss>"
        server.gzip_paths.add("/bomb.rss")
        with pytest.raises(FetchError, match="above the limit"):
            fetch(server.url("/bomb.rss"), FeedState(), max_bytes=1_000_000, allow=LOOP)


def test_redirects_to_other_schemes_or_metadata_are_refused() -> None:
    with FeedServer() as server:
        server.redirects["/to-file"] = "file:///etc/passwd"
        server.redirects["/to-metadata"] = "http://169.254.169.254/computeMetadata/v1/"
        server.redirects["/to-ok"] = "/ok.rss"
        server.routes["/ok.rss"] = rss("OK", [("g", "t", "d")])
        with pytest.raises(FetchError, match="scheme 'file'"):
            fetch(server.url("/to-file"), FeedState(), allow=LOOP)
        with pytest.raises(FetchError, match="cloud metadata"):
            fetch(server.url("/to-metadata"), FeedState(), timeout=2, allow=LOOP)
        assert fetch(server.url("/to-ok"), FeedState(), allow=LOOP).status == 200
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
        stats = Poller(sink, feeds=feeds, allow=LOOP).poll_once()
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


def test_same_guid_items_are_counted_not_silently_dropped() -> None:
    with FeedServer() as server:
        items = [("same", f"Title {i}", f"text {i}") for i in range(5)]
        server.routes["/dup.rss"] = rss("D", items)
        sink = Collect()
        stats = Poller(sink, feeds=[server.url("/dup.rss")], allow=LOOP).poll_once()
    assert (stats.published, stats.same_guid) == (1, 4)


class FailingPublisher(Collect):
    """Acknowledges nothing while ``down`` is set (the publish future fails)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = True

    def __call__(self, data: bytes, attributes: dict[str, str]):
        from concurrent.futures import Future

        future: Future = Future()
        if self.down:
            future.set_exception(RuntimeError("Pub/Sub unavailable"))
        else:
            self.messages.append((data, attributes))
            future.set_result("message-id")
        return future


def test_items_are_seen_only_after_the_publish_is_acknowledged(tmp_path: Path) -> None:
    state = str(tmp_path / "state.json")
    with FeedServer() as server:
        server.routes["/a.rss"] = rss("A", [("g1", "One", "x"), ("g2", "Two", "y")])
        publisher = FailingPublisher()
        poller = Poller(publisher, feeds=[server.url("/a.rss")], state_path=state, allow=LOOP)
        stats = poller.poll_once()
        assert (stats.published, stats.publish_errors) == (0, 2)
        assert not poller.state.seen
        # the ETag did not move on: the feed is fetched in full again, not a 304
        publisher.down = False
        restarted = Poller(publisher, feeds=[server.url("/a.rss")], state_path=state, allow=LOOP)
        stats = restarted.poll_once()
        assert stats.published == 2 and server.requests["/a.rss"] == [200, 200]
    assert sorted(m[1]["guid"] for m in publisher.messages) == ["g1", "g2"]


def test_big_watched_files_are_never_cut_and_fifos_are_skipped(tmp_path: Path) -> None:
    import json
    import os

    from khabar.pipeline.graph.streaming import message_records

    folder = tmp_path / "drop"
    folder.mkdir()
    lines = [json.dumps({"title": f"t{i}", "body": "متن " * 40 + str(i)}) for i in range(3000)]
    (folder / "big.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    big_text = "عنوان\n\n" + "کلمه " * 60_000
    (folder / "big.txt").write_text(big_text, encoding="utf-8")
    os.mkfifo(folder / "pipe.jsonl")
    sink = Collect()
    limit = 100_000  # message limit scaled down (Pub/Sub's is 10 MB)
    poller = Poller(sink, watch=[str(folder)], max_message_bytes=limit)
    stats = poller.poll_once()
    assert stats.skipped_nonregular == 1 and stats.references == 1
    chunks = [m for m in sink.messages if m[1]["format"] == "jsonl"]
    assert len(chunks) > 5 and all(len(data) <= limit for data, _ in chunks)
    assert all(data.endswith(b"\n") for data, _ in chunks)  # line-bounded
    # every line comes back, once, with its line number in the file
    records = [r for data, attrs in chunks for r in message_records(data, attrs, 10**6)[0]]
    assert [r.position for r in records] == list(range(1, 3001))
    assert [json.loads(r.payload)["title"] for r in records] == [f"t{i}" for i in range(3000)]
    assert stats.records == 3000 + 1
    (ref,) = [m for m in sink.messages if m[1]["unit"] == "ref"]
    assert ref[0].decode() == str(folder / "big.txt")
    (record,), error = message_records(ref[0], ref[1], 10**7)  # the pipeline reads it itself
    assert error is None
    assert record.payload.decode("utf-8") == big_text
    assert poller.poll_once().published == 0  # nothing twice
