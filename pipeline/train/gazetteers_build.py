"""Build and measure the external Persian gazetteers (``khabar.pipeline.train.gazetteers``):
``python -m khabar.pipeline.train.gazetteers_build --build ...`` writes
``gazetteer_sources/external.tsv`` and ``common.txt``; ``--report`` writes ``REPORT.md``.
The sources, licences, filter rules and figures are in ``gazetteers``' docstring."""

from __future__ import annotations

import argparse
import csv
import gettext
import json
import pickle
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from khabar.pipeline.train.gazetteers import (
    COMMON,
    COMMON_RATIO,
    COMMON_TOP,
    ENTITY_TYPES,
    EXTERNAL,
    MAX_LEN,
    MIN_COUNT,
    MIN_RATIO,
    PRIORITY,
    REPORT,
    SOURCES_DIR,
    Entry,
    corpus_counts,
    drop_rule,
    filter_external,
    read_common,
    read_external,
)
from khabar.pipeline.train.ner import DATA, load_examples, mine_gazetteer, persian_normalizer
from khabar.transforms.entities import DIGIT_FOLD, Gazetteer, iob_spans, tokenize

# --------------------------------------------------------------------------- building


def _sources(site_packages: Path, geonames_mo: Path) -> dict[str, list[tuple[str, str]]]:
    """Raw ``(type, text)`` entries per source, read from the installed packages."""
    if str(site_packages) not in sys.path:
        sys.path.append(str(site_packages))
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
        "Written by `python -m khabar.pipeline.train.gazetteers_build --report` (no training). "
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

    parser = argparse.ArgumentParser(
        prog="python -m khabar.pipeline.train.gazetteers_build",
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
