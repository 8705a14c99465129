"""External gazetteers for the Persian entity tagger (issue #19: gazetteer features, licences).

The Persian network's gazetteer input (``gz=B-TYPE``/``gz=I-TYPE``, see
``transforms.entities.Gazetteer``) was mined from the training corpora only
(``ner.mine_gazetteer``). This module adds typed phrases from openly licensed lists, so
that names the corpora never annotate (a new foreign minister, a small town) can still
light up the feature. The phrases are merged into ``fa-gaz.tsv`` at training time
(``ner.mine_gazetteer(..., external=True)``); mined phrases win where both have one.
Nothing is downloaded at run time and tagging needs nothing new.

Sources (all in ``gazetteer_sources/LICENCES.md`` with versions, URLs and what was taken):

- ``pgd``: ``persian-gender-detection==1.4.0`` (PyPI, MIT): Iranian first names -> PERSON.
- ``farsi-faker``: ``farsi-faker==1.9.0`` (PyPI, MIT): first names and surnames -> PERSON.
- ``faker-person`` / ``faker-company`` / ``faker-address``: Faker's ``fa_IR`` providers
  (PyPI ``faker``, MIT): names -> PERSON, companies -> ORGANIZATION, provinces and
  countries -> LOCATION (Faker has no fa_IR city list, only ``city_prefix + first_name``).
- ``geonames``: Debian's ``libgeonames-common`` (GeoNames data, CC BY 4.0): the Persian
  names of the cities in its ``fa`` catalogue -> LOCATION ("city، region" entries keep the
  city only).
- ``babel``: ``babel`` (BSD-3; the data is Unicode CLDR, Unicode License v3):
  ``Locale('fa').territories`` (countries and regions) -> LOCATION.

Build (needs the packages importable; they are NOT project dependencies)::

    python3.12 -m venv /tmp/gazvenv
    /tmp/gazvenv/bin/pip install persian-gender-detection==1.4.0 farsi-faker==1.9.0 \\
        faker==40.63.0 babel==2.19.0
    apt-get download libgeonames-common && dpkg -x libgeonames-common_*.deb /tmp/geo
    .venv/bin/python -m khabar.pipeline.train.gazetteers_build --build \\
        --site-packages /tmp/gazvenv/lib/python3.12/site-packages \\
        --geonames-mo /tmp/geo/usr/share/locale/fa/LC_MESSAGES/geonames.mo

It runs in the project's interpreter (for khabar's normalizer) with the throwaway venv's
site-packages appended to ``sys.path``, and writes ``gazetteer_sources/external.tsv``
(``TYPE\\tSOURCE\\tphrase tokens``: every entry normalized with ``ner.persian_normalizer``,
tokenized with the tagger's ``tokenize`` and keyed ``w.lower().translate(DIGIT_FOLD)``,
exactly as ``ner.mine_gazetteer`` keys phrases) and ``gazetteer_sources/common.txt`` (the
most frequent tokens of ``../shared/data/news-fa``, Apache-2.0). ``--report`` measures the
sources on the training corpora and NSURL test and writes ``gazetteer_sources/REPORT.md``.

Filtering (``filter_external``; the lists are noisy: name lists hold place names and
ordinary words, the company list holds «من», «کف», «گلستان»):

1. evidence: where the training corpora (PEYMA 300k + NSURL 600k + the Arman training
   part) have the phrase at least ``MIN_COUNT`` (3) times and fewer than ``MIN_RATIO``
   (30%) of those occurrences lie inside a gold entity of the entry's type, the entry is
   dropped. "Inside" (every token tagged B-/I-TYPE), not "exactly the span": a first name
   is mostly annotated as part of a full name, which is exactly where the feature fires.
2. common words: a one-token PERSON or ORGANIZATION entry (the name and company lists
   are where ordinary words hide) among the ``COMMON_TOP`` (2000) most frequent news-fa
   tokens is kept only when the corpora annotate it as that type in at least half its
   occurrences: «بهمن» (a month), «حضرت», «امام», «گلستان» as a company go. Rule 1
   already removes nearly every function word (کرد، آن، اما، اگر، من، ...), so this is a
   second net; it is not applied to the place lists because it would drop «فرانسه» and
   «یزد» (a country and a city annotated LOCATION in 40-45% of occurrences, the rest
   mostly inside ORGANIZATION names such as national teams).
3. conflicts: a phrase left with more than one type takes the type the corpora annotate
   it with most often (inside-entity count); without corpus evidence, the type of the
   highest-priority source (``PRIORITY``: the place lists, then companies, then names), so
   LOCATION beats PERSON for GeoNames/babel/Faker places.

The measured effect of each rule per source is in ``gazetteer_sources/REPORT.md`` (and
summarised below).

Measured (``--report``; NSURL test, no training; "precision" = exact-span matches that are a
gold entity of the type / matches lying inside one):

==============  =====  =====  ======  ======  =====  ============  ===================
source            raw  -evid  -commn  -confl   kept  recall        precision kept
                                                     raw -> kept   exact / inside (n)
==============  =====  =====  ======  ======  =====  ============  ===================
babel             295      7       0       0    288  .185 -> .176  .774 / .826 (2274)
geonames         7916    184       0      13   7719  .210 -> .209  .684 / .818 (3052)
faker-address     230      5       0       0    225  .190 -> .189  .720 / .827 (2626)
faker-company    1065      8       1       2   1054  .002 -> .002  .688 / .969 (32)
faker-person      210     25       1       0    184  .010 -> .010  .172 / .915 (576)
pgd             19714   1176       9      80  18449  .032 -> .028  .124 / .806 (2227)
farsi-faker     15827   1174       8      53  14592  .051 -> .045  .170 / .830 (2628)
external, kept  32053 phrases                         .288          .449 / .816 (6401)
mined only      15455 phrases                         .477          .803 / .915 (5916)
mined+external  46663 phrases                         .531          .626 / .869 (8457)
==============  =====  =====  ======  ======  =====  ============  ===================

Raw, the name lists match 15k times in the test text at 2-3% exact precision (they hold
ordinary words); filtered, 2.2-2.6k matches, 81-83% of them inside a gold PERSON. The
external lists lift exact-phrase recall of the gazetteer from .477 to .531 and cost
exact-span precision (.803 -> .626; first names inside full names count as wrong there).
Whether the network gains from that is for a training run with and without
``--no-external-gazetteers`` to tell (not measured yet).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from khabar.transforms.entities import DIGIT_FOLD

HERE = Path(__file__).resolve().parent
SOURCES_DIR = HERE / "gazetteer_sources"
EXTERNAL = SOURCES_DIR / "external.tsv"
COMMON = SOURCES_DIR / "common.txt"
REPORT = SOURCES_DIR / "REPORT.md"
ENTITY_TYPES = ("PERSON", "LOCATION", "ORGANIZATION")
MIN_COUNT = 3
MIN_RATIO = 0.3
COMMON_TOP = 2000
COMMON_RATIO = 0.5
COMMON_TYPES = ("PERSON", "ORGANIZATION")  # the lists that hold ordinary words
MAX_LEN = 6  # ner.GAZ_MAX_LEN: longer phrases are never matched anyway
# conflict resolution without corpus evidence: earlier sources win
PRIORITY = (
    "babel",
    "geonames",
    "faker-address",
    "faker-company",
    "faker-person",
    "pgd",
    "farsi-faker",
)


class Entry(NamedTuple):
    """One line of ``external.tsv``."""

    kind: str
    source: str
    phrase: tuple[str, ...]


# --------------------------------------------------------------------------- reading


def read_external(path: Path = EXTERNAL) -> list[Entry]:
    """The entries of ``external.tsv`` (``TYPE\\tSOURCE\\tphrase tokens``)."""
    entries: list[Entry] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            kind, source, phrase = line.rstrip("\n").split("\t")
            entries.append(Entry(kind, source, tuple(phrase.split(" "))))
    return entries


@lru_cache(maxsize=1)
def _cached_external() -> tuple[Entry, ...]:
    return tuple(read_external())


def read_common(path: Path = COMMON, top: int = COMMON_TOP) -> set[str]:
    """The ``top`` most frequent news-fa tokens (keys as in the gazetteer)."""
    with open(path, encoding="utf-8") as fh:
        return {line.split("\t")[0] for _, line in zip(range(top), fh, strict=False)}


# --------------------------------------------------------------------------- filtering


def corpus_counts(
    phrases: Iterable[tuple[str, ...]], examples: Sequence[Any]
) -> tuple[Counter, dict[tuple[str, ...], Counter]]:
    """For each phrase: how often its tokens occur in ``examples`` and, per type, how often
    such an occurrence lies inside one gold entity of that type (every token B-/I-TYPE of
    the same span)."""
    wanted = set(phrases)
    lengths: dict[str, set[int]] = defaultdict(set)
    for p in wanted:
        lengths[p[0]].add(len(p))
    occurrences: Counter = Counter()
    inside: dict[tuple[str, ...], Counter] = defaultdict(Counter)
    for ex in examples:
        lows = [w.lower().translate(DIGIT_FOLD) for w in ex.words]
        labels = ex.labels
        n = len(lows)
        for i, w in enumerate(lows):
            lens = lengths.get(w)
            if not lens:
                continue
            for length in lens:
                if i + length > n:
                    continue
                p = tuple(lows[i : i + length])
                if p not in wanted:
                    continue
                occurrences[p] += 1
                first = labels[i]
                if first == "O":
                    continue
                kind = first[2:]
                if all(labels[j] == "I-" + kind for j in range(i + 1, i + length)):
                    inside[p][kind] += 1
    return occurrences, inside


def drop_rule(
    e: Entry,
    occurrences: Counter,
    inside: Mapping[tuple[str, ...], Counter],
    common: set[str],
    min_count: int = MIN_COUNT,
    min_ratio: float = MIN_RATIO,
    common_ratio: float = COMMON_RATIO,
) -> str | None:
    """The rule (``evidence``/``common``) that drops ``e``, or None."""
    occ = occurrences[e.phrase]
    ratio = inside[e.phrase][e.kind] / occ if occ and e.phrase in inside else 0.0
    if occ >= min_count and ratio < min_ratio:
        return "evidence"
    if (
        e.kind in COMMON_TYPES
        and len(e.phrase) == 1
        and e.phrase[0] in common
        and ratio < common_ratio
    ):
        return "common"
    return None


def filter_external(
    phrases: Iterable[Entry],
    examples: Sequence[Any],
    common: set[str] | None = None,
    min_count: int = MIN_COUNT,
    min_ratio: float = MIN_RATIO,
    common_ratio: float = COMMON_RATIO,
    stats: dict[str, Counter] | None = None,
) -> dict[tuple[str, ...], str]:
    """Phrase -> type of the external entries that the training ``examples`` do not
    contradict (rules 1-3 of the module docstring). ``stats``, when given, counts per
    source the entries ``raw``, dropped by ``evidence``/``common``, lost in a ``conflict``,
    and ``kept``."""
    entries = list(phrases)
    common = read_common() if common is None else common
    occurrences, inside = corpus_counts({e.phrase for e in entries}, examples)
    stats = stats if stats is not None else {}
    survivors: dict[tuple[str, ...], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for e in entries:
        count = stats.setdefault(e.source, Counter())
        count["raw"] += 1
        rule = drop_rule(e, occurrences, inside, common, min_count, min_ratio, common_ratio)
        if rule:
            count[rule] += 1
            continue
        survivors[e.phrase][e.kind].add(e.source)
    rank = {s: i for i, s in enumerate(PRIORITY)}
    out: dict[tuple[str, ...], str] = {}
    for p, kinds in survivors.items():
        if len(kinds) == 1:
            kind = next(iter(kinds))
        else:
            seen = inside.get(p, Counter())
            kind = min(
                kinds,
                key=lambda k: (-seen[k], min(rank.get(s, len(rank)) for s in kinds[k]), k),
            )
        out[p] = kind
        for k, sources in kinds.items():
            for s in sources:
                stats.setdefault(s, Counter())["kept" if k == kind else "conflict"] += 1
    return out


def external_gazetteer(
    examples: Sequence[Any], stats: dict[str, Counter] | None = None
) -> dict[tuple[str, ...], str]:
    """The filtered external phrases (``external.tsv``) for training on ``examples``."""
    return filter_external(_cached_external(), examples, stats=stats)
