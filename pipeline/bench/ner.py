"""Benchmark the entity tagger (``khabar bench-ner``).

Strict entity-level scores (exact span and type, CoNLL style, per type and overall):

- PEYMA / NSURL-2019 official split: the tagger under test on ``nsurl_test`` (its PEYMA
  model is trained on ``peyma_300k`` + ``nsurl_600k`` only), tagged document by document
  (``manifest.tsv``; names propagate within a document, as in an article) and, for
  reference, sentence by sentence.
- ArmanPersoNER, each of the 3 folds and their mean: every fold has its own network,
  trained on PEYMA + NSURL train and that fold's training part only (``python -m
  khabar.pipeline.train.ner`` writes them; fold 1's is the shipped one), scored on the fold's
  test part.
- English: a model trained on BTC train+dev, scored on BTC test and on WikiGold (out of
  domain; MISC is not scored, the model has no MISC type).

Also: tokens/s and articles/s of the tagger under test on one core (Persian news articles
from ``../shared/data/news-fa``, English WikiGold sentences), model sizes and the peak
memory of tagging. Text is normalized exactly as the pipeline does, and scores are on
that normalized text, so tokenization differences are counted as errors.

LICENCE: the Persian models and corpora are for research use only (ArmanPersoNERCorpus,
PEYMA / NSURL-2019); the English data (WikiGold, BTC) is CC BY 4.0.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from khabar.pipeline.stages.entities import ENTITY_BATCH  # noqa: E402
from khabar.pipeline.train import ner as T  # noqa: E402
from khabar.transforms.entities import (  # noqa: E402
    MANIFEST,
    SHIPPED_MODEL_DIR,
    EntityTagger,
    FeatureExtractor,
    read_manifest,
    tokenize,
)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def cold(tagger: EntityTagger) -> None:
    """Empty the networks' per-word projection tables, so that each timed pass starts as
    a new worker does."""
    for model in tagger.languages.values():
        for stage in model.stages:
            if "net" in stage:
                stage["net"].reset_projections()


def throughput(tagger: EntityTagger, articles: list[dict[str, Any]], language: str) -> dict:
    tokens = sum(
        len(tokenize(a.get(k) or "", language)) for a in articles for k in ("title", "lead", "body")
    )
    cold(tagger)
    tagger.tag_article(articles[0])  # warm the feature cache like a running worker
    t0 = time.process_time()
    n_entities = 0
    for art in articles:
        n_entities += len(tagger.tag_article(art)["entities"])
    cpu = time.process_time() - t0
    # the same articles in groups, as the pipeline's entity stage hands them over
    cold(tagger)
    tagger.tag_article(articles[0])
    t0 = time.process_time()
    for i in range(0, len(articles), ENTITY_BATCH):
        tagger.tag_articles(articles[i : i + ENTITY_BATCH])
    grouped = time.process_time() - t0
    return {
        "articles": len(articles),
        "tokens": tokens,
        "entities": n_entities,
        "cpu_seconds": round(cpu, 2),
        "tokens_per_s": round(tokens / cpu),
        "articles_per_s": round(len(articles) / cpu, 1),
        "tokens_per_s_grouped": round(tokens / grouped),
    }


def persian_articles(limit: int, start: int = 0) -> list[dict[str, Any]]:
    """``limit`` news-fa articles, half from each file, from article ``start`` of each."""
    norm = T.persian_normalizer()
    out: list[dict[str, Any]] = []
    per_file = limit // 2
    for name in ("farsnews.jsonl", "varzesh3.jsonl"):
        with open(T.DATA / "news-fa" / name, encoding="utf-8") as fh:
            for i, line in enumerate(fh):
                if i < start:
                    continue
                if i >= start + per_file:
                    break
                art = json.loads(line)
                out.append(
                    {
                        "language": "fa",
                        **{k: norm(art[k]) if art.get(k) else None for k in ("title", "lead")},
                        "body": norm(art["body"]),
                    }
                )
    return out


# news-fa articles per file that the teacher labels for distillation (Makefile train-soft,
# teacher --news-articles): the news checks read the articles after them.
NEWS_LABELLED = 1000

# Names from issue #19's real errors: (phrase, the type it should get). بندر is a man's
# name as well as a common noun ("port"), so it has no single right type.
NEWS_CASES: list[tuple[str, str | None]] = [
    ("ترکیه", "LOCATION"),
    ("هاکان فیدان", "PERSON"),
    ("ایسنا", "ORGANIZATION"),
    ("بندر", None),
    ("شیعه", None),
    ("کومیته", None),
    ("کاتا", None),
]


def news_checks(
    tagger: EntityTagger, articles: list[dict[str, Any]], top: int = 5
) -> dict[str, Any]:
    """What the tagger makes of real articles: the most frequent entities of each type, and
    for each of :data:`NEWS_CASES` how its occurrences were tagged (``TYPE`` when an entity
    is exactly the phrase, ``in TYPE`` when the phrase is inside a longer entity, ``O`` when
    no entity covers it)."""
    by_type: dict[str, Counter] = {}
    cases: dict[str, Counter] = {phrase: Counter() for phrase, _ in NEWS_CASES}
    for art in articles:
        out = tagger.tag_article(art)
        spans: dict[str, list[tuple[int, int, str]]] = {}
        for e in out["entities"]:
            by_type.setdefault(e["type"], Counter())[e["text"]] += 1
            spans.setdefault(e["field"], []).append((e["start"], e["end"], e["type"]))
        for field in ("title", "lead", "body"):
            text = art.get(field) or ""
            if not text:
                continue
            words = tokenize(text, "fa")
            for phrase, _ in NEWS_CASES:
                parts = phrase.split(" ")
                n = len(parts)
                for i in range(len(words) - n + 1):
                    if [w for w, _, _ in words[i : i + n]] != parts:
                        continue
                    a, b = words[i][1], words[i + n - 1][2]
                    got = "O"
                    for s, e, t in spans.get(field, []):
                        if (s, e) == (a, b):
                            got = t
                            break
                        if s <= a and b <= e:
                            got = f"in {t}"
                    cases[phrase][got] += 1
    return {
        "articles": len(articles),
        "top": {t: c.most_common(top) for t, c in sorted(by_type.items())},
        "cases": {
            phrase: {"expected": want, "tagged": dict(cases[phrase].most_common())}
            for phrase, want in NEWS_CASES
        },
    }


def english_articles(limit: int) -> list[dict[str, Any]]:
    wiki = T.read_conll(T.DATA / "ner-en" / "wikigold.txt", "\t", T.en_tag)
    out = []
    chunk = 20  # about one short article: 20 sentences
    for i in range(0, min(len(wiki), limit * chunk), chunk):
        body = " ".join(" ".join(toks) for toks, _ in wiki[i : i + chunk])
        out.append(
            {"language": "en", "title": " ".join(wiki[i][0][:8]), "lead": None, "body": body}
        )
    return out


def arman_folds(folds_dir: Path, quick: bool, log) -> dict[str, Any]:
    """Score each Arman fold's network on that fold's test part.

    Training a network takes tens of minutes, so the benchmark does not retrain: it reads
    the fold model directories ``fa-fold1..3`` that ``python -m khabar.pipeline.train.ner``
    leaves in its work directory (each trained on PEYMA + NSURL train and that fold's
    training part only; fold 1's is the shipped model)."""
    norm = T.persian_normalizer()
    folds: dict[str, Any] = {}
    for k in (1, 2, 3):
        if quick and k > 1:
            break
        fdir = folds_dir / f"fa-fold{k}"
        if not (fdir / MANIFEST).is_file():
            raise SystemExit(
                f"no fold model in {fdir}: run `make train-ner` "
                "(python -m khabar.pipeline.train.ner) first, pass --folds-dir, or use --skip-folds"
            )
        test = T.load_examples(
            T.DATA / "ner-arman" / f"test_fold{k}.txt", None, "fa", normalize=norm
        )
        result = T.score(EntityTagger(str(fdir)), test, "fa", T.ARMAN_TYPES)
        manifest = read_manifest(fdir)
        spec = manifest["languages"]["fa"]
        with tempfile.TemporaryDirectory(prefix="khabar-ner-fold") as tmp:
            for name in manifest["sha256"]:
                shutil.copy(fdir / name, Path(tmp) / name)
            T.write_manifest(Path(tmp), {"fa": arman_convention(spec)}, "Arman head alone")
            own = T.score(EntityTagger(tmp), test, "fa", T.ARMAN_TYPES)
        result["arman_model_alone"] = {k: own[k] for k in ("p", "r", "f1")}
        folds[f"fold{k}"] = result
        log(f"arman fold {k}: F1 {result['f1']}")
    f1s = [v["f1"] for v in folds.values()]
    own = [v["arman_model_alone"]["f1"] for v in folds.values()]
    folds["mean_f1"] = round(sum(f1s) / len(f1s), 4)
    folds["mean_f1_arman_model_alone"] = round(sum(own) / len(own), 4)
    return folds


def arman_convention(spec: dict[str, Any]) -> dict[str, Any]:
    """The Persian spec with PERSON/ORGANIZATION/LOCATION from the Arman model only (its
    annotation conventions), to show what the merge costs on Arman's own test folds."""
    out = json.loads(json.dumps(spec))
    for t in ("PERSON", "ORGANIZATION", "LOCATION"):
        out["merge"]["owner"][t] = ["arman"]
    out["merge"]["priority"] = ["arman", "peyma"]
    return out


def peyma_alone(model_dir: Path, spec: dict[str, Any], examples: list) -> dict[str, Any]:
    """Score the PEYMA model alone (no Arman model, no merge) on NSURL documents."""
    with tempfile.TemporaryDirectory(prefix="khabar-ner-peyma") as tmp:
        d = Path(tmp)
        one = {**spec, "models": spec["models"][:1]}
        for key in ("file", "gazetteer"):
            if one["models"][0].get(key):
                shutil.copy(model_dir / one["models"][0][key], d / one["models"][0][key])
        T.write_manifest(d, {"fa": one}, "PEYMA model alone")
        s = T.score(EntityTagger(str(d)), examples, "fa", T.PEYMA_TYPES)
    return {k: s[k] for k in ("p", "r", "f1")}


def english_eval(log) -> dict[str, Any]:
    d = T.DATA / "ner-en"
    train = T.load_examples(d / "btc_train.txt", "\t", "en", keep=T.en_tag)
    train += T.load_examples(d / "btc_dev.txt", "\t", "en", keep=T.en_tag)
    btc_test = T.load_examples(d / "btc_test.txt", "\t", "en", keep=T.en_tag)
    wiki = T.load_examples(d / "wikigold.txt", "\t", "en", keep=T.en_tag)
    with tempfile.TemporaryDirectory(prefix="khabar-ner-en") as tmp:
        edir = Path(tmp)
        T.write_gazetteer(T.mine_gazetteer(train), edir / "en-gaz.tsv")
        T.train_crf(train, FeatureExtractor(), edir / "en.crfsuite", [T.gazetteer_features(train)])
        T.write_manifest(edir, {"en": T.en_spec()}, T.EN_NAME)
        tagger = EntityTagger(str(edir))
        out = {
            "btc_test": T.score(tagger, btc_test, "en", T.EN_TYPES),
            "wikigold_out_of_domain": T.score(tagger, wiki, "en", T.EN_TYPES),
        }
    wiki_f1 = out["wikigold_out_of_domain"]["f1"]
    log(f"english: BTC test F1 {out['btc_test']['f1']}, WikiGold {wiki_f1}")
    return out


def print_scores(title: str, s: dict[str, Any]) -> None:
    print(f"\n{title}: P {s['p']:.4f}  R {s['r']:.4f}  F1 {s['f1']:.4f}  (gold {s['gold']})")
    for t, row in s["per_type"].items():
        print(
            f"  {t:<13} P {row['p']:.4f}  R {row['r']:.4f}  F1 {row['f1']:.4f}  gold {row['gold']}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="khabar bench-ner",
        description=(
            "Benchmark khabar's entity tagger: strict CoNLL entity P/R/F1 on PEYMA/NSURL-2019, "
            "ArmanPersoNER's 3 folds, BTC and WikiGold; speed on one core; model size; memory. "
            "LICENCE: the Persian models (and corpora) are for research use only "
            "(ArmanPersoNERCorpus, PEYMA/NSURL-2019); English data is CC BY 4.0."
        ),
    )
    parser.add_argument(
        "--entities-model",
        dest="model_dir",
        default=None,
        help="model directory to benchmark (default: the shipped models; same format)",
    )
    parser.add_argument("--quick", action="store_true", help="Arman fold 1 only, fewer articles")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument(
        "--folds-dir",
        default=str(T.WORK),
        help="where python -m khabar.pipeline.train.ner left the Arman fold networks fa-fold1..3 "
        "(default %(default)s)",
    )
    parser.add_argument("--skip-folds", action="store_true", help="skip the Arman fold evaluation")
    parser.add_argument(
        "--skip-news", action="store_true", help="skip the news-fa checks (issue #19's cases)"
    )
    parser.add_argument(
        "--skip-english", action="store_true", help="skip the English evaluation (trains a CRF)"
    )
    args = parser.parse_args(argv)
    model_dir = Path(args.model_dir) if args.model_dir else SHIPPED_MODEL_DIR
    started = time.time()

    def log(msg: str) -> None:
        print(f"[{time.time() - started:6.1f}s] {msg}", file=sys.stderr, flush=True)

    results: dict[str, Any] = {"model_dir": str(model_dir)}
    base_rss = rss_mb()
    t0 = time.time()
    tagger = EntityTagger(str(model_dir))
    results["load_seconds"] = round(time.time() - t0, 2)
    results["model_name"] = tagger.model_name
    results["licence"] = tagger.licence
    manifest = read_manifest(model_dir)
    sizes = {name: (model_dir / name).stat().st_size for name in manifest["sha256"]}
    sizes[MANIFEST] = (model_dir / MANIFEST).stat().st_size
    results["model_bytes"] = sizes
    results["model_total_mb"] = round(sum(sizes.values()) / 1e6, 2)

    n_articles = 200 if args.quick else 1000
    speed: dict[str, Any] = {}
    if "fa" in tagger.languages:
        speed["fa"] = throughput(tagger, persian_articles(n_articles), "fa")
        log(f"fa speed {speed['fa']}")
    if "en" in tagger.languages:
        speed["en"] = throughput(tagger, english_articles(n_articles // 10), "en")
        log(f"en speed {speed['en']}")
    results["speed_one_core"] = speed
    if "fa" in tagger.languages and not args.skip_news:
        # articles the distillation did not label (make train-soft labels the first 1,000)
        held_out = persian_articles(n_articles, start=NEWS_LABELLED)
        results["news_fa"] = news_checks(tagger, held_out)
        results["news_fa"]["first_article_of_each_file"] = NEWS_LABELLED
        log("news-fa checks done")
    results["peak_rss_mb_tagging"] = round(rss_mb(), 1)
    results["rss_mb_before_loading"] = round(base_rss, 1)

    if "fa" in tagger.languages:
        test = T.load_examples(T.DATA / "ner-peyma" / "nsurl_test.txt", "\t", "fa")
        docs = T.documents(test, "nsurl_test.txt")
        results["nsurl_test"] = T.score(tagger, docs, "fa", T.PEYMA_TYPES)
        results["nsurl_test"]["tokenization"] = T.tokenization_stats(test)
        results["nsurl_test_sentences"] = T.score(tagger, test, "fa", T.PEYMA_TYPES)
        results["nsurl_test_peyma_model_alone"] = peyma_alone(
            model_dir, manifest["languages"]["fa"], docs
        )
        log(
            f"nsurl_test F1 {results['nsurl_test']['f1']} (documents), "
            f"{results['nsurl_test_sentences']['f1']} (sentences alone)"
        )
        if not args.skip_folds:
            results["arman"] = arman_folds(Path(args.folds_dir), args.quick, log)
    if not args.skip_english:
        results["english"] = english_eval(log)
    results["peak_rss_mb_total"] = round(rss_mb(), 1)

    print(f"model: {results['model_name']}")
    print(f"licence: {results['licence']}")
    print(f"models: {results['model_total_mb']} MB total; loaded in {results['load_seconds']} s")
    for name, size in sizes.items():
        print(f"  {name:<22} {size / 1e6:8.2f} MB")
    for lang, s in speed.items():
        print(
            f"speed ({lang}, one core): {s['tokens_per_s']} tokens/s, {s['articles_per_s']} "
            f"articles/s ({s['articles']} articles, {s['tokens']} tokens); in groups of "
            f"{ENTITY_BATCH} articles as the pipeline tags them: {s['tokens_per_s_grouped']} "
            "tokens/s"
        )
    print(f"peak memory while tagging: {results['peak_rss_mb_tagging']} MB RSS")
    if "news_fa" in results:
        news = results["news_fa"]
        print(
            f"\nnews-fa, {news['articles']} articles (from article {NEWS_LABELLED} of each file, "
            "not labelled for distillation): the most frequent entities of each type"
        )
        for t, rows in news["top"].items():
            print(f"  {t:<13} " + ", ".join(f"{text} {n}" for text, n in rows))
        print("  known cases (how each occurrence was tagged):")
        for phrase, row in news["cases"].items():
            want = f" (should be {row['expected']})" if row["expected"] else ""
            tagged = ", ".join(f"{k} {n}" for k, n in row["tagged"].items()) or "not in the text"
            print(f"    {phrase}{want}: {tagged}")
    if "nsurl_test" in results:
        print_scores("PEYMA / NSURL-2019 test, tagged as documents (strict)", results["nsurl_test"])
        print_scores(
            "PEYMA / NSURL-2019 test, each sentence alone (strict)", results["nsurl_test_sentences"]
        )
    for fold, s in results.get("arman", {}).items():
        if fold.startswith("fold"):
            print_scores(f"ArmanPersoNER {fold} (strict)", s)
    if "nsurl_test_peyma_model_alone" in results:
        s = results["nsurl_test_peyma_model_alone"]
        print(f"\nNSURL test, PEYMA model alone (documents): P {s['p']} R {s['r']} F1 {s['f1']}")
    if "arman" in results:
        a = results["arman"]
        print(f"\nArmanPersoNER mean F1 over folds: {a['mean_f1']:.4f}")
        print(f"ArmanPersoNER mean F1, Arman model alone: {a['mean_f1_arman_model_alone']:.4f}")
    for name, s in results.get("english", {}).items():
        print_scores(f"English {name} (strict)", s)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, ensure_ascii=False, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
