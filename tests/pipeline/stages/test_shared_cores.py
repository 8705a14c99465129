"""Stage cores shared by a process's threads (#23 item 3): the language detector and the
Persian normalizer are built once per process; they give the same answers from many
threads at once as from one."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from apache_beam.internal import pickler

from khabar.pipeline.stages.stage import StageFn
from khabar.transforms.language import detect_language_core
from khabar.transforms.persian import PersianNormalizer
from khabar.transforms.zwnj import ZwnjRestorer, load_lexicon

SEEDS = Path(__file__).resolve().parents[3] / "seeds"


def _cores_seen(fn: StageFn, threads: int) -> list[object]:
    seen: list[object] = []
    lock = threading.Lock()

    def work() -> None:
        copy = pickler.loads(pickler.dumps(fn))  # what a runner gives each thread
        copy.setup()
        with lock:
            seen.append(copy.core)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return seen


BUILT: list[int] = []


def _identity(article: dict) -> dict:
    return article


def _factory():
    BUILT.append(1)
    return _identity


def test_a_thread_safe_core_is_built_once_per_process_others_once_per_thread() -> None:
    BUILT.clear()
    shared = _cores_seen(StageFn("language", _factory, thread_safe=True), 4)
    assert len({id(c) for c in shared}) == 1 and len(BUILT) == 1
    BUILT.clear()
    own = _cores_seen(StageFn("entities", _factory), 4)
    assert len(own) == 4 and len(BUILT) == 4


def _persian_lines() -> list[str]:
    lines = []
    for path in sorted(SEEDS.rglob("*")):
        if path.is_file() and path.suffix in (".txt", ".jsonl", ".html"):
            lines += [x[:400] for x in path.read_text("utf-8", "replace").splitlines() if x.strip()]
    return lines[:80]


def test_the_normalizer_gives_the_same_text_from_many_threads() -> None:
    lines = _persian_lines() * 3
    alone = [PersianNormalizer().normalize(x) for x in lines]
    shared = PersianNormalizer()
    # a tiny cache, so threads clear it under each other's feet all the time
    shared.restorer = ZwnjRestorer(load_lexicon(), cache_size=4)
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(shared.normalize, lines))
    assert together == alone


def test_the_language_detector_gives_the_same_answer_from_many_threads() -> None:
    lines = _persian_lines()
    articles = [{"title": "", "lead": "", "body": x} for x in lines]
    shared = detect_language_core()
    alone = [shared(dict(a)) for a in articles]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda a: shared(dict(a)), articles))
    keys = ("language", "language_confidence", "script")
    assert [tuple(a[k] for k in keys) for a in together] == [
        tuple(a[k] for k in keys) for a in alone
    ]
