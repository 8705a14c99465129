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
    .venv/bin/python -m khabar.pipeline.train.gazetteers --build \\
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

import argparse
import gettext
import json
import pickle
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

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
    from khabar.transforms.entities import DIGIT_FOLD

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


# --------------------------------------------------------------------------- building


def _sources(site_packages: Path, geonames_mo: Path) -> dict[str, list[tuple[str, str]]]:
    """Raw ``(type, text)`` entries per source, read from the installed packages."""
    if str(site_packages) not in sys.path:
        sys.path.append(str(site_packages))
    import csv

    import babel
    from faker.providers.address.fa_IR import Provider as Address
    from faker.providers.company.fa_IR import Provider as Company
    from faker.providers.person.fa_IR import Provider as Person

    out: dict[str, list[tuple[str, str]]] = {}
    csv_path = site_packages / "persian_gender_detection" / "gender" / "iranianNamesDataset.csv"
    with open(csv_path, encoding="utf-8") as fh:
        out["pgd"] = [("PERSON", row["Names"]) for row in csv.DictReader(fh)]
    with open(site_packages / "farsi_faker" / "data" / "names.pkl", "rb") as fh:
        names = pickle.load(fh)  # noqa: S301 (the package's own data file)
    out["farsi-faker"] = [
        ("PERSON", n) for key in ("male_names", "female_names", "last_names") for n in names[key]
    ]
    out["faker-person"] = [("PERSON", n) for n in (*Person.first_names, *Person.last_names)]
    out["faker-company"] = [("ORGANIZATION", n) for n in Company.company_names]
    out["faker-address"] = [("LOCATION", n) for n in (*Address.states, *Address.countries)]
    with open(geonames_mo, "rb") as fh:
        catalog = gettext.GNUTranslations(fh)._catalog  # type: ignore[attr-defined]
    out["geonames"] = [
        ("LOCATION", v.split("،")[0].split(",")[0])
        for k, v in catalog.items()
        if k and isinstance(v, str)
    ]
    out["babel"] = [("LOCATION", n) for n in babel.Locale("fa").territories.values()]
    return out


def key(text: str, norm: Any) -> tuple[str, ...]:
    """``text`` as a gazetteer key: normalized, tokenized and folded as ner.py does."""
    from khabar.transforms.entities import DIGIT_FOLD, tokenize

    return tuple(w.lower().translate(DIGIT_FOLD) for w, _, _ in tokenize(norm(text), "fa"))


def versions(site_packages: Path) -> dict[str, str]:
    """Installed versions of the source packages (from their dist-info folders)."""
    out = {}
    for d in site_packages.glob("*.dist-info"):
        name, _, version = d.name[: -len(".dist-info")].partition("-")
        out[name.lower().replace("_", "-")] = version
    return out


def build(site_packages: Path, geonames_mo: Path, news: Path) -> None:
    """Write ``external.tsv`` and ``common.txt`` (see the module docstring)."""
    from khabar.pipeline.train.ner import persian_normalizer
    from khabar.transforms.entities import DIGIT_FOLD, tokenize

    norm = persian_normalizer()
    rows: set[tuple[str, str, str]] = set()
    for source, items in _sources(site_packages, geonames_mo).items():
        for kind, text in items:
            text = " ".join(str(text).split())
            if not text:
                continue
            phrase = key(text, norm)
            if not phrase or len(phrase) > MAX_LEN:
                continue
            if all(not any(c.isalpha() for c in w) for w in phrase):
                continue
            rows.add((kind, source, " ".join(phrase)))
    SOURCES_DIR.mkdir(exist_ok=True)
    with open(EXTERNAL, "w", encoding="utf-8") as fh:
        for row in sorted(rows, key=lambda r: (r[1], r[0], r[2])):
            fh.write("\t".join(row) + "\n")
    counts: Counter = Counter()
    for name in ("farsnews.jsonl", "varzesh3.jsonl"):
        with open(news / name, encoding="utf-8") as fh:
            for line in fh:
                art = json.loads(line)
                for field in ("title", "lead", "body"):
                    if art.get(field):
                        for w, _, _ in tokenize(norm(art[field]), "fa"):
                            counts[w.lower().translate(DIGIT_FOLD)] += 1
    with open(COMMON, "w", encoding="utf-8") as fh:
        for w, c in counts.most_common(COMMON_TOP):
            fh.write(f"{w}\t{c}\n")
    print(f"{len(rows)} entries -> {EXTERNAL}; {COMMON_TOP} common words -> {COMMON}")


# --------------------------------------------------------------------------- measuring

CASES = ("ترکیه", "هاکان فیدان", "هاکان", "فیدان", "بندر", "ایسنا", "شیراز", "اهواز")


def load_corpora(data: Path, cache: Path | None = None) -> tuple[list[Any], list[Any]]:
    """Training examples (PEYMA 300k + NSURL 600k + Arman train_fold1) and NSURL test, loaded
    and normalized as ``ner.train_fa`` does (``cache``: a pickle reused when present)."""
    if cache is not None and cache.exists():
        with open(cache, "rb") as fh:
            return pickle.load(fh)  # noqa: S301 (our own cache)
    from khabar.pipeline.train.ner import load_examples, persian_normalizer

    norm = persian_normalizer()
    train = load_examples(data / "ner-peyma" / "peyma_300k.txt", "\t", "fa", normalize=norm)
    train += load_examples(data / "ner-peyma" / "nsurl_600k.txt", "\t", "fa", normalize=norm)
    train += load_examples(data / "ner-arman" / "train_fold1.txt", None, "fa", normalize=norm)
    test = load_examples(data / "ner-peyma" / "nsurl_test.txt", "\t", "fa", normalize=norm)
    if cache is not None:
        with open(cache, "wb") as fh:
            pickle.dump((train, test), fh, protocol=4)
    return train, test


def score_on(phrases: dict[tuple[str, ...], str], test: Sequence[Any]) -> dict[str, Any]:
    """Gold PERSON/LOCATION/ORGANIZATION entities of ``test`` that are exact phrases of that
    type (recall), and the phrases' longest-first matches in ``test`` (as
    ``Gazetteer.features`` finds them) that are not a gold entity of that type."""
    from khabar.transforms.entities import DIGIT_FOLD, Gazetteer, iob_spans

    gaz = Gazetteer(phrases)
    gold_n = found = matches = wrong = outside = 0
    for ex in test:
        lows = [w.lower().translate(DIGIT_FOLD) for w in ex.words]
        spans = list(iob_spans(ex.labels))
        gold = {(a, b, k) for a, b, k in spans if k in ENTITY_TYPES}
        gold_n += len(gold)
        found += sum(phrases.get(tuple(lows[a:b])) == k for a, b, k in gold)
        feats = gaz.features(lows, "gz")
        for i, f in enumerate(feats):
            for tag in f:
                if tag.startswith("gz=B-") and tag[5:] in ENTITY_TYPES:
                    kind = tag[5:]
                    j = i + 1
                    while j < len(feats) and f"gz=I-{kind}" in feats[j]:
                        j += 1
                    matches += 1
                    wrong += (i, j, kind) not in gold
                    outside += not any(a <= i and j <= b and k == kind for a, b, k in gold)
    return {
        "gold": gold_n,
        "recall": found / max(gold_n, 1),
        "matches": matches,
        "precision": 1 - wrong / max(matches, 1),
        "inside": 1 - outside / max(matches, 1),
    }


NOTES = """## Notes (hand-written on the numbers above; re-check them after a rebuild)

- «ترکیه» is LOCATION in babel, Faker and GeoNames and PERSON in both name lists (they hold
  place names); the corpora annotate it LOCATION (268 of 317 occurrences), so it is
  LOCATION, as it was already in the mined gazetteer.
- «هاکان فیدان»: no source has the full name or the surname «فیدان» (the name lists are
  Iranian names); «هاکان» alone is a pgd first name the corpora never see, so it is kept as
  PERSON: the feature fires on «هاکان» (B-PERSON) only, which the network may extend.
- «بندر» is only in the two name lists (as a man's name), never in a place list; the corpora
  have it 42 times, 29 inside a LOCATION («بندر عباس»), 8 inside an ORGANIZATION, once
  inside a PERSON, so the PERSON entries are dropped by the evidence rule and neither the
  external nor the mined gazetteer has it: no gz feature at all, so not LOCATION-only.
- «ایسنا» (a news agency): no external source has news agencies (the Faker company list is
  stock-exchange companies). It is ORGANIZATION in the mined gazetteer (271 of 273
  occurrences); nothing was hand-added.
- «شیراز» and «اهواز» are in no external source: GeoNames via Debian lacks them (its fa
  catalogue is a subset of cities), babel has countries only, Faker has provinces (استان
  names such as «فارس», «خوزستان») and no cities. «اهواز» is LOCATION in the mined
  gazetteer; «شیراز» is in neither (mine_gazetteer wants the exact phrase as that type in
  half its occurrences: it is exactly a LOCATION 33 times of 68, 42 inside one, and
  the rest inside names such as «دانشگاه علوم پزشکی شیراز» or «ورزشگاه حافظیه شیراز»).
- The evidence rule does the work: it drops 2,579 entries, nearly all ordinary words in the
  name lists (کرد، کشور، اما، دولت، روز، داد) and GeoNames (آن، اگر), and the PERSON
  readings of place names (ایران، تهران). The common-word rule adds 19 PERSON/ORGANIZATION
  entries that pass rule 1 with 30-50% support (امام، حضرت، بهمن، کریم، گلستان as a
  company).
- Conflicts: 188 phrases have more than one type across lists; the corpora decide where
  they annotate the phrase, the place lists win otherwise.
"""


def entries_of(entries: Sequence[Entry], phrase: tuple[str, ...]) -> list[Entry]:
    """The entries of ``phrase`` (an index built once per ``entries`` list)."""
    index = _INDEX.get(id(entries))
    if index is None:
        index = defaultdict(list)
        for e in entries:
            index[e.phrase].append(e)
        _INDEX.clear()
        _INDEX[id(entries)] = index
    return index.get(phrase, [])


_INDEX: dict[int, dict[tuple[str, ...], list[Entry]]] = {}


def report(data: Path, cache: Path | None = None) -> str:
    """Measure every source (rules, NSURL test) and the real cases; write ``REPORT.md``."""
    from khabar.pipeline.train.ner import mine_gazetteer, persian_normalizer

    train, test = load_corpora(data, cache)
    entries = read_external()
    stats: dict[str, Counter] = {}
    kept = filter_external(entries, train, stats=stats)
    mined = mine_gazetteer(train).phrases
    merged = {**kept, **mined}
    by_source: dict[str, list[Entry]] = defaultdict(list)
    for e in entries:
        by_source[e.source].append(e)
    lines = [
        "| source | type(s) | raw | -evidence | -common | -conflict | kept "
        "| test recall raw | precision raw / inside (matches) | recall kept "
        "| precision kept / inside (matches) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for source in PRIORITY:
        rows = by_source.get(source, [])
        if not rows:
            continue
        raw = {e.phrase: e.kind for e in rows}
        mine = {e.phrase: e.kind for e in rows if kept.get(e.phrase) == e.kind}
        a, b = score_on(raw, test), score_on(mine, test)
        st = stats[source]
        kinds = "/".join(sorted({e.kind for e in rows}))
        lines.append(
            f"| {source} | {kinds} | {st['raw']} | {st['evidence']} | {st['common']} "
            f"| {st['conflict']} | {st['kept']} | {a['recall']:.3f} "
            f"| {a['precision']:.3f} / {a['inside']:.3f} ({a['matches']}) | {b['recall']:.3f} "
            f"| {b['precision']:.3f} / {b['inside']:.3f} ({b['matches']}) |"
        )
    for name, phrases in (
        ("all external, filtered", kept),
        ("mined (training corpora)", mined),
        ("mined + external (mined wins)", merged),
    ):
        r = score_on(phrases, test)
        lines.append(
            f"| {name} | | {len(phrases)} | | | | | | | {r['recall']:.3f} "
            f"| {r['precision']:.3f} / {r['inside']:.3f} ({r['matches']}) |"
        )
    table = "\n".join(lines)
    grid = [
        "| min ratio | common ratio | phrases kept | test recall | precision / inside (matches) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for min_ratio in (0.1, 0.2, 0.3, 0.5):
        for common_ratio in (0.3, 0.5):
            tuned = filter_external(entries, train, min_ratio=min_ratio, common_ratio=common_ratio)
            r = score_on(tuned, test)
            grid.append(
                f"| {min_ratio} | {common_ratio} | {len(tuned)} | {r['recall']:.3f} "
                f"| {r['precision']:.3f} / {r['inside']:.3f} ({r['matches']}) |"
            )
    norm = persian_normalizer()
    case_keys = {text: key(text, norm) for text in CASES}
    occurrences, inside = corpus_counts(
        {e.phrase for e in entries} | set(case_keys.values()), train
    )
    common = read_common()
    samples = []
    for rule in ("evidence", "common"):
        hits = [e for e in entries if drop_rule(e, occurrences, inside, common) == rule]
        hits.sort(key=lambda e: -occurrences[e.phrase])
        shown = ", ".join(
            f"{' '.join(e.phrase)} ({e.kind[:3]} {e.source}: "
            f"{inside[e.phrase][e.kind]}/{occurrences[e.phrase]})"
            for e in hits[:25]
        )
        samples.append(f"- {rule} ({len(hits)} entries), most frequent first: {shown}")
    conflicts = sorted(
        (
            p
            for p in {e.phrase for e in entries}
            if len({e.kind for e in entries_of(entries, p)}) > 1
        ),
        key=lambda p: -occurrences[p],
    )
    cases = []
    for text, p in case_keys.items():
        raw = sorted({(e.kind, e.source) for e in entries_of(entries, p)})
        cases.append(
            f"- «{text}»: raw {raw or 'in no source'}; training corpora: "
            f"{occurrences[p]} occurrences, inside entities {dict(inside.get(p, {}))}; "
            f"external after filter: {kept.get(p)}; mined: {mined.get(p)}; "
            f"merged (shipped fa-gaz.tsv): {merged.get(p)}"
        )
    text = (
        "# External gazetteers: measurements\n\n"
        "Written by `python -m khabar.pipeline.train.gazetteers --report` (no training). "
        "Training corpora: PEYMA 300k + NSURL 600k + Arman train_fold1 "
        f"({sum(len(e.words) for e in train)} tokens); test: NSURL test "
        f"({sum(len(e.words) for e in test)} tokens). Rules: evidence (>= {MIN_COUNT} "
        f"occurrences, < {MIN_RATIO:.0%} inside an entity of the type), common (one of the "
        f"{COMMON_TOP} most frequent news-fa tokens, < {COMMON_RATIO:.0%} inside), conflict "
        "(the phrase took another type). Test recall: share of gold PERSON/LOCATION/"
        "ORGANIZATION entities that are an exact phrase of that type in the list; precision: "
        "share of the list's longest-first PERSON/LOCATION/ORGANIZATION matches in the test "
        "text that are a gold entity of that type (exact span) / that lie inside one (a first "
        "name matching inside a full name counts there); each source scored alone.\n\n"
        f"{table}\n\n## Tuning (all external lists, filtered)\n\n" + "\n".join(grid) + "\n\n"
        "## Real cases\n\n" + "\n".join(cases) + "\n\n"
        "## What the rules drop\n\n" + "\n".join(samples) + "\n\n"
        f"## Cross-list type conflicts ({len(conflicts)} phrases), most frequent first\n\n"
        + "\n".join(
            f"- {' '.join(p)}: {sorted({(e.kind, e.source) for e in entries_of(entries, p)})}"
            f" -> {kept.get(p)}"
            for p in conflicts[:30]
        )
        + "\n\n"
        + NOTES
    )
    REPORT.write_text(text, encoding="utf-8")
    print(text)
    return text


def main(argv: list[str] | None = None) -> int:
    from khabar.pipeline.train.ner import DATA

    parser = argparse.ArgumentParser(
        prog="python -m khabar.pipeline.train.gazetteers",
        description="Build (--build) or measure (--report) the external Persian gazetteers.",
    )
    parser.add_argument("--build", action="store_true", help="write external.tsv, common.txt")
    parser.add_argument("--report", action="store_true", help="measure; write REPORT.md")
    parser.add_argument("--site-packages", default="/tmp/gazvenv/lib/python3.12/site-packages")
    parser.add_argument(
        "--geonames-mo", default="/tmp/geo/usr/share/locale/fa/LC_MESSAGES/geonames.mo"
    )
    parser.add_argument("--data", default=str(DATA), help="the shared data directory")
    parser.add_argument("--cache", help="pickle of the loaded corpora (reused if present)")
    args = parser.parse_args(argv)
    if args.build:
        build(Path(args.site_packages), Path(args.geonames_mo), Path(args.data) / "news-fa")
    if args.report:
        report(Path(args.data), Path(args.cache) if args.cache else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
