"""Feed reading measured against feedparser on feedparser's own test corpus.

    python -m khabar.pipeline.bench.feeds [CORPUS_DIR] [--differences N]

For every file whose ``Expect:`` line holds for feedparser (evaluated on feedparser's
result for the file's bytes, the way khabar gets them: no HTTP headers), each item
feedparser finds is compared with the article khabar makes of it (parse + clean), field
by field: title, link, published time (to the second) and text (content, else summary).
A field counts where feedparser has a value; texts are compared after khabar's own
cleaning of feedparser's value (markup, entities, whitespace), so only real differences
count. Prints the agreement per field and the differences, grouped by reason.

It uses only the split, parse and clean cores' public names (``split_records``,
``parse_record``, ``clean_article``), so the same script measures an older checkout
(``PYTHONPATH=/path/to/old python feeds.py``: it falls back to the old module names).
"""

from __future__ import annotations

import argparse
import calendar
import collections
import datetime as dt
import importlib
import io
import re
import sys
import time
from pathlib import Path
from typing import Any

import feedparser


def _core(name: str) -> Any:
    """A core module by its name now (``khabar.transforms.X``) or before (``transforms.X``)."""
    try:
        return importlib.import_module("khabar.transforms." + name)
    except ImportError:
        return importlib.import_module("transforms." + name)

def _optional_core(name: str) -> Any:
    """:func:`_core`, or None where the checkout has no such module."""
    try:
        return _core(name)
    except ImportError:
        return None


FIELDS = ("title", "link", "published", "text")
REPORTED = (*FIELDS, "date core")
_EXPECT = re.compile(rb"Expect:\s*(.*)")


def default_corpus() -> Path:
    return Path(__file__).resolve().parents[3] / "shared" / "data" / "feeds-feedparser"


def _norm(text: str | None) -> str:
    return " ".join((text or "").split())


def expectation_holds(data: bytes, result: Any) -> bool | None:
    """None when the file has no ``Expect:`` line."""
    m = _EXPECT.search(data[:4096])
    if not m:
        return None
    expr = m.group(1).decode("utf-8", "replace").strip()
    try:
        return bool(eval(expr, {"__builtins__": __builtins__}, dict(result)))  # noqa: S307
    except Exception:  # noqa: BLE001 - an expectation that errors does not hold
        return False


def feedparser_fields(entry: Any) -> dict[str, Any]:
    clean_text = _core("clean").clean_text

    def text_of(detail: Any, value: str | None) -> str:
        if value is None:
            return ""
        if detail and detail.get("type") == "text/plain":
            return _norm(value)
        return _norm(clean_text(value))

    title = text_of(entry.get("title_detail"), entry.get("title"))
    contents = [c for c in entry.get("content") or [] if (c.get("value") or "").strip()]
    if contents:
        text = text_of(contents[0], contents[0].get("value"))
    else:
        text = text_of(entry.get("summary_detail"), entry.get("summary"))
    parsed = (
        entry.get("published_parsed") or entry.get("updated_parsed") or entry.get("created_parsed")
    )
    published = None
    if parsed:
        published = dt.datetime.fromtimestamp(calendar.timegm(parsed), dt.UTC)  # whole seconds
    return {"title": title, "link": entry.get("link") or "", "published": published, "text": text}


def khabar_items(uri: str, data: bytes) -> tuple[list[dict[str, Any] | None], str | None]:
    """khabar's articles for a feed's items, in item order (None: a dead-lettered item)."""
    clean_article = _core("clean").clean_article
    parse = _core("parse")
    parse_record = parse.parse_record
    # splitting has its own core since the read/parse split; older checkouts had it in parse
    split_records = (_optional_core("split") or parse).split_records

    try:
        records = list(split_records(uri, data, "feed"))
    except Exception as exc:  # noqa: BLE001 - the whole feed is a dead letter
        return [], type(exc).__name__
    out: list[dict[str, Any] | None] = []
    for record in records:
        try:
            out.append(clean_article(parse_record(record.to_dict())))
        except Exception:  # noqa: BLE001 - this item is a dead letter
            out.append(None)
    return out, None


def _compare_date_core(
    entry: Any,
    want: dt.datetime | None,
    where: str,
    agree: collections.Counter,
    total: collections.Counter,
    reasons: dict[str, list[str]],
) -> None:
    """khabar's date parser alone on every item's raw date (items without text too)."""
    parse_date = _core("dates").parse_date

    raw = entry.get("published") or entry.get("updated") or entry.get("created")
    if not want or not raw:
        return
    total["date core"] += 1
    try:
        got = parse_date(raw).replace(microsecond=0)
    except Exception as exc:  # noqa: BLE001 - left empty
        got = f"empty ({str(exc)[:120]})"
    if got == want:
        agree["date core"] += 1
    else:
        reasons["date core"].append(f"{where}: {raw!r}: feedparser {want} / khabar {got}")


def compare(corpus: Path) -> dict[str, Any]:
    agree = collections.Counter()
    total = collections.Counter()
    reasons: dict[str, list[str]] = collections.defaultdict(list)
    files = sorted(corpus.rglob("*.xml"))
    eligible = items = without_text = 0
    for path in files:
        data = path.read_bytes()
        result = feedparser.parse(io.BytesIO(data))
        if not expectation_holds(data, result):
            continue
        eligible += 1
        if not result.entries:
            continue
        ours, feed_error = khabar_items(str(path), data)
        rel = str(path.relative_to(corpus))
        for index, entry in enumerate(result.entries):
            items += 1
            theirs = feedparser_fields(entry)
            _compare_date_core(entry, theirs["published"], f"{rel}#{index}", agree, total, reasons)
            if not theirs["title"] and not theirs["text"]:
                # no title and no text: not an article; khabar dead-letters it by design
                without_text += 1
                continue
            article = ours[index] if index < len(ours) else None
            for name in FIELDS:
                want = theirs[name]
                if not want:
                    continue
                total[name] += 1
                if article is None:
                    why = feed_error or "item dead-lettered"
                    reasons[name].append(f"{rel}#{index}: {why}")
                    continue
                if name == "title":
                    got: Any = _norm(article.get("title"))
                elif name == "link":
                    got = article.get("url") or ""
                elif name == "published":
                    got = article.get("published_at")
                    got = got.replace(microsecond=0) if got else got
                else:
                    body, lead = _norm(article.get("body")), _norm(article.get("lead"))
                    # khabar keeps a summary that opens the content as the lead
                    got = want if lead and want == _norm(lead + " " + body) else body
                if got == want:
                    agree[name] += 1
                else:
                    reasons[name].append(f"{rel}#{index}: feedparser {want!r} / khabar {got!r}")
    return {
        "files": len(files),
        "eligible_files": eligible,
        "items": items,
        "without_text": without_text,
        "agree": dict(agree),
        "total": dict(total),
        "differences": dict(reasons),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m khabar.pipeline.bench.feeds")
    parser.add_argument("corpus", nargs="?", type=Path, default=default_corpus())
    parser.add_argument("--differences", type=int, default=0, help="print N per field")
    args = parser.parse_args(argv)
    if not args.corpus.is_dir():
        print(f"bench_feeds: no corpus at {args.corpus}", file=sys.stderr)
        return 2
    started = time.time()
    report = compare(args.corpus)
    print(
        f"feedparser corpus: {report['files']} files, {report['eligible_files']} where "
        f"feedparser's Expect holds, {report['items']} items there ({time.time() - started:.1f} s)"
    )
    print(
        f"  ({report['without_text']} items have neither title nor text: not articles, "
        "dead-lettered by design and left out below)"
    )
    for name in REPORTED:
        n, ok = report["total"].get(name, 0), report["agree"].get(name, 0)
        print(f"  {name:<10} {ok:>5} / {n:<5} agree with feedparser  {100 * ok / max(n, 1):6.2f}%")
    print("  (date core: the date parser alone on every item's raw date, with or without text)")
    if args.differences:
        for name in REPORTED:
            diffs = report["differences"].get(name, [])
            if diffs:
                print(f"\n{name}: {len(diffs)} difference(s)")
                for line in diffs[: args.differences]:
                    print("  " + line[:300])
    return 0


if __name__ == "__main__":
    sys.exit(main())
