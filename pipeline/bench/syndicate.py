"""Syndication benchmark generator: real Persian news, rewritten the way outlets do.

From the news corpus in ``../shared/data/news-fa`` (Fars News and Varzesh3, Apache-2.0),
with a fixed seed:

* the corpus's own repeats (same URL or same folded body) and real near-duplicates
  (found by an exact inverted-index scan, independent of MinHash) are reduced to one
  article each, so the base articles are distinct stories;
* ``originals`` sampled articles get 1-3 syndicated variants each, every variant at one
  edit level:

  - ``light``: new headline, dateline swap, and surface variation: Arabic ``ي``/``ك``,
    ZWNJ/space/no-space spelling, digits in Persian, Arabic-Indic or Latin form;
  - ``medium``: light, plus one structural edit: first or last paragraph dropped, a
    paragraph added, or sentences reordered;
  - ``heavy``: medium, plus two more structural edits and about a fifth of the
    sentences dropped;

* the rest of the corpus as unrelated articles (many on the same topics: the same
  clubs, players, ministries), plus ``hard_negatives`` synthetic same-topic
  different-story articles: another story from the same source under the original's
  headline, lead and first sentence (same entities, different story: must NOT merge).

Each generated article has ``story`` (ground truth) and ``level`` (``original``,
``light``, ``medium``, ``heavy``, ``unrelated`` or ``hard_negative``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from khabar.transforms.dedup import fold_text
from khabar.transforms.neardup import fold_tokens, overlap, shingles_from_tokens

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "news-fa"
DEFAULT_SEED = 1404
LEVELS = ("light", "medium", "heavy")

OUTLETS = (
    "ایسنا",
    "ایرنا",
    "مهر",
    "تسنیم",
    "خبرآنلاین",
    "همشهری آنلاین",
    "عصر ایران",
    "انتخاب",
    "فرارو",
    "باشگاه خبرنگاران جوان",
)
HEADLINE_PREFIXES = ("فوری:", "ویدیو |", "گزارش |", "", "خبر ویژه:")
_DATELINE = re.compile(r"^(به گزارش\s+[^،,:]{1,40}[،,:]|خبرگزار[يی] فارس\s*:|[^\s]{2,20}\s+-\s+)")
_SENTENCE_END = re.compile(r"(?<=[.!؟?])\s+")
_FA_DIGITS = "۰۱۲۳۴۵۶۷۸۹"
_AR_DIGITS = "٠١٢٣٤٥٦٧٨٩"


def load_corpus(data_dir: Path = DEFAULT_DATA_DIR) -> list[dict[str, Any]]:
    articles: list[dict[str, Any]] = []
    for path in sorted(Path(data_dir).glob("*.jsonl")):
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh):
                if line.strip():
                    record = json.loads(line)
                    record["_src"] = f"{path.stem}:{n}"
                    articles.append(record)
    return articles


def _paragraphs(body: str) -> list[str]:
    return [p.strip() for p in body.split("\n\n") if p.strip()]


def _sentences(paragraph: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(paragraph) if s]


def distinct_stories(
    corpus: Sequence[dict[str, Any]], ngram: int = 3, jaccard: float = 0.3, contain: float = 0.5
) -> tuple[list[dict[str, Any]], int]:
    """Drop repeats: same URL, same folded body, or a real near-duplicate (Jaccard >=
    ``jaccard`` or containment >= ``contain`` on word ``ngram`` shingles, checked exactly
    for every pair sharing at least 5 uncommon shingles). Returns (kept, dropped)."""
    seen_url: set[str] = set()
    seen_body: set[str] = set()
    unique: list[dict[str, Any]] = []
    for a in corpus:
        body_key = fold_text(a.get("body") or "")
        if a.get("url") in seen_url or body_key in seen_body or len(body_key.split()) < 10:
            continue
        seen_url.add(a.get("url") or "")
        seen_body.add(body_key)
        unique.append(a)
    sets = [shingles_from_tokens(fold_tokens(a["body"]), ngram) for a in unique]
    postings: dict[int, list[int]] = defaultdict(list)
    for i, s in enumerate(sets):
        for h in s.tolist():
            postings[h].append(i)
    shared: dict[tuple[int, int], int] = defaultdict(int)
    for docs in postings.values():
        if 1 < len(docs) <= 30:
            for x in range(len(docs)):
                for y in range(x + 1, len(docs)):
                    shared[(docs[x], docs[y])] += 1
    drop: set[int] = set()
    for (i, j), count in sorted(shared.items()):
        if count < 5 or i in drop or j in drop:
            continue
        jac, cont = overlap(sets[i], sets[j])
        if jac >= jaccard or cont >= contain:
            drop.add(j)
    kept = [a for i, a in enumerate(unique) if i not in drop]
    return kept, len(corpus) - len(kept)


class Syndicator:
    """Makes outlet variants of an article (deterministic for a given ``random.Random``)."""

    def __init__(self, rng: random.Random, donors: Sequence[dict[str, Any]]) -> None:
        self.rng = rng
        self.donors = donors

    # -- surface edits (folded away by a good normalizer) --------------------------
    def arabic_letters(self, text: str) -> str:
        return text.replace("ی", "ي").replace("ک", "ك")

    def zwnj_variant(self, text: str) -> str:
        mode = self.rng.choice(("space", "none", "zwnj"))
        if mode == "space":
            return text.replace("\u200c", " ")
        if mode == "none":
            return text.replace("\u200c", "")
        text = re.sub(r"(?<!\S)(ن?می) ", "\\1\u200c", text)
        return re.sub(r" (ها|های|هایی|ترین)(?!\S)", "\u200c\\1", text)

    def digits_variant(self, text: str) -> str:
        table = self.rng.choice((_FA_DIGITS, _AR_DIGITS, "0123456789"))
        every = "0123456789" + _FA_DIGITS + _AR_DIGITS
        return text.translate(str.maketrans(every, table * 3))

    def surface(self, text: str) -> str:
        ops = [self.arabic_letters, self.zwnj_variant, self.digits_variant]
        for op in self.rng.sample(ops, self.rng.randint(1, 3)):
            text = op(text)
        return text

    # -- outlet edits --------------------------------------------------------------
    def headline(self, title: str) -> str:
        words = title.split()
        if len(words) > 4 and self.rng.random() < 0.5:
            cut = self.rng.randint(0, len(words) // 3)
            words = words[cut:] + words[:cut]
        return " ".join([self.rng.choice(HEADLINE_PREFIXES), *words]).strip()

    def dateline(self, paragraphs: list[str]) -> list[str]:
        outlet = self.rng.choice(OUTLETS)
        first = paragraphs[0]
        if _DATELINE.match(first):
            first = _DATELINE.sub(f"به گزارش {outlet}،", first, count=1)
        else:
            first = f"به گزارش {outlet}، {first}"
        return [first, *paragraphs[1:]]

    def drop_edge(self, paragraphs: list[str]) -> list[str]:
        first = self.rng.random() < 0.5
        if len(paragraphs) >= 3:
            return paragraphs[1:] if first else paragraphs[:-1]
        sentences = [s for p in paragraphs for s in _sentences(p)]
        if len(sentences) >= 3:
            sentences = sentences[1:] if first else sentences[:-1]
        return [" ".join(sentences)]

    def add_paragraph(self, paragraphs: list[str]) -> list[str]:
        donor = self.rng.choice(self.donors)
        extra = self.rng.choice(_paragraphs(donor["body"]))
        extra = " ".join(_sentences(extra)[:2])
        at = self.rng.choice((len(paragraphs), len(paragraphs), 1))
        return paragraphs[:at] + [extra] + paragraphs[at:]

    def reorder(self, paragraphs: list[str]) -> list[str]:
        out = list(paragraphs)
        longest = max(range(len(out)), key=lambda i: len(_sentences(out[i])))
        sentences = _sentences(out[longest])
        if len(sentences) >= 2:
            i = self.rng.randrange(len(sentences) - 1)
            sentences[i], sentences[i + 1] = sentences[i + 1], sentences[i]
            out[longest] = " ".join(sentences)
        elif len(out) >= 3:
            i = self.rng.randrange(1, len(out) - 1)
            out[i], out[i + 1] = out[i + 1], out[i]
        return out

    def drop_sentences(self, paragraphs: list[str], share: float) -> list[str]:
        out = []
        for p in paragraphs:
            kept = [s for s in _sentences(p) if self.rng.random() >= share]
            if kept:
                out.append(" ".join(kept))
        return out or paragraphs[:1]

    def variant(self, article: dict[str, Any], level: str) -> dict[str, Any]:
        paragraphs = self.dateline(_paragraphs(article["body"]))
        structural = [self.drop_edge, self.add_paragraph, self.reorder]
        if level in ("medium", "heavy"):
            paragraphs = self.rng.choice(structural)(paragraphs)
        if level == "heavy":
            for op in self.rng.sample(structural, 2):
                paragraphs = op(paragraphs)
            paragraphs = self.drop_sentences(paragraphs, 0.2)
        title = self.headline(article["title"])
        lead = article.get("lead") or ""
        if self.rng.random() < 0.5:
            lead = " ".join(_sentences(lead)[:1])
        return {
            "title": self.surface(title),
            "lead": self.surface(lead) if lead else None,
            "body": self.surface("\n\n".join(paragraphs)),
        }

    def hard_negative(self, article: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
        """Another story told under this article's headline, lead and opening sentence."""
        opening = _sentences(_paragraphs(article["body"])[0])[0]
        body = "\n\n".join([opening, *_paragraphs(other["body"])])
        return {"title": article["title"], "lead": article.get("lead"), "body": body}


def _id(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


def build_benchmark(
    corpus: Sequence[dict[str, Any]],
    *,
    seed: int = DEFAULT_SEED,
    originals: int = 500,
    hard_negatives: int = 200,
    unrelated: int | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The benchmark set (shuffled) and a summary of how it was made."""
    rng = random.Random(seed)
    stories, dropped = distinct_stories(corpus)
    rng.shuffle(stories)
    chosen = stories[:originals]
    # Bodies for the hard negatives: kept out of the set, or a hard negative would
    # really contain an unrelated article.
    negative_bodies = stories[originals : originals + hard_negatives]
    rest = stories[originals + hard_negatives :]
    if unrelated is not None:
        rest = rest[:unrelated]
    syndicator = Syndicator(rng, rest or chosen)
    base_time = dt.datetime(2024, 3, 20, tzinfo=dt.UTC)
    out: list[dict[str, Any]] = []

    def add(record: dict[str, Any], story: str, level: str, key: str) -> None:
        published = None
        if rng.random() > 0.05:
            published = base_time + dt.timedelta(minutes=rng.randrange(0, 60 * 24 * 30))
        out.append(
            {
                "id": _id(str(seed), key),
                "title": record["title"],
                "lead": record.get("lead"),
                "body": record["body"],
                "published_at": published,
                "language": "fa",
                "source": record.get("source"),
                "story": story,
                "level": level,
            }
        )

    by_source: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for a in negative_bodies:
        by_source[a.get("source") or ""].append(a)
    counts: dict[str, int] = defaultdict(int)
    for n, article in enumerate(chosen):
        story = article["_src"]
        add(article, story, "original", story)
        for k in range(rng.choice((1, 2, 2, 3))):
            level = LEVELS[(n + k) % 3] if rng.random() < 0.7 else rng.choice(LEVELS)
            variant = syndicator.variant(article, level)
            variant["source"] = rng.choice(OUTLETS)
            add(variant, story, level, f"{story}#{k}")
            counts[level] += 1
    for article in rest:
        add(article, article["_src"], "unrelated", article["_src"])
    for n in range(min(hard_negatives, len(chosen), len(negative_bodies))):
        article = chosen[n]
        # Each body is used once (two negatives sharing one would be real copies).
        pool = by_source.get(article.get("source") or "") or next(
            p for p in by_source.values() if p
        )
        other = pool.pop(rng.randrange(len(pool)))
        fake = syndicator.hard_negative(article, other)
        fake["source"] = article.get("source")
        key = f"neg:{article['_src']}:{other['_src']}"
        add(fake, key, "hard_negative", key)
    rng.shuffle(out)
    summary = {
        "seed": seed,
        "corpus": len(corpus),
        "dropped_repeats": dropped,
        "originals": len(chosen),
        "variants": dict(counts),
        "unrelated": len(rest),
        "hard_negatives": min(hard_negatives, len(chosen), len(negative_bodies)),
        "total": len(out),
    }
    return out, summary
