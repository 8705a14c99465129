"""The oracle ceiling of ``khabar bench-normalize`` on hand-counted examples."""

from collections import Counter

from khabar.pipeline.bench.normalize import (
    NO_PAIR,
    ZWNJ,
    Ceiling,
    compare_zwnj,
    glued_sites,
    spaced_sites,
    training_support,
)

Z = ZWNJ


def spaced_ceiling(texts: list[str]) -> Ceiling:
    ceiling = Ceiling()
    for text in texts:
        ceiling.add_spaced(spaced_sites(text))
    return ceiling


def glued_ceiling(texts: list[str]) -> Ceiling:
    ceiling, words = Ceiling(), Counter()
    for text in texts:
        found, zwnjs = glued_sites(text)
        words.update(found)
        ceiling.add_glued(zwnjs)
    ceiling.finish_glued(words)
    return ceiling


def test_spaced_sites_are_gaps_between_letters_keyed_by_the_word_pair():
    sites = spaced_sites(f"«کتاب» ها، به{Z}عنوان Word{Z}s ۱۲{Z}تا")
    # letters: «کتاب» (0-5) ها، (6-8) به (9-10) عنوان (11-15) word (16-19) s (20) ۱۲ (21-22) تا
    assert sites[11] == (("به", "عنوان"), True)
    assert sites[16] == (("عنوان", "word"), False)
    assert sites[20] == (("word", "s"), True)
    assert 21 not in sites  # between a letter and a digit: no ZWNJ can go there
    assert sites[23] == (NO_PAIR, True)
    assert 6 not in sites  # «کتاب» ها: the gap is after a guillemet
    assert len(sites) == 4


def test_spaced_majority_and_threshold_by_hand():
    ceiling = spaced_ceiling([
        f"کتاب{Z}ها را دیدم",  # (کتاب, ها) with ZWNJ
        "کتاب ها",  # ... and apart: a tie, so the majority rule joins it
        f"به{Z}عنوان نمونه",  # (به, عنوان) once with ZWNJ
        "به عنوان",
        "به عنوان",  # ... twice apart: stays apart
    ])
    assert ceiling.positives == 2
    assert ceiling.zwnj[("به", "عنوان")] == 1 and ceiling.apart[("به", "عنوان")] == 2
    # majority: کتاب‌ها right once and wrong once; به‌عنوان missed
    assert ceiling.counts() == (1, 1, 1)
    assert ceiling.fixable(("کتاب", "ها")) and not ceiling.fixable(("به", "عنوان"))
    # everything with any ZWNJ: 2 right, 3 wrong
    assert ceiling.counts(0.3) == (2, 3, 0)
    # share 1/2 first (precision 1/2), then 1/3 (precision 2/5)
    assert ceiling.best_at_precision(0.5) == (0.5, 1, 1, 1)
    assert ceiling.best_at_precision(0.4) == (1 / 3, 2, 3, 0)
    assert ceiling.best_at_precision(0.9) == (1.0, 0, 0, 2)  # nothing reaches it


def test_glued_types_are_the_glued_word_and_the_place_in_it():
    ceiling = glued_ceiling([
        f"می{Z}شود",
        "میشود",
        f"می{Z}شود و گفت{Z}و{Z}گو",
        "گفتوگو",
    ])
    assert ceiling.positives == 4
    assert ceiling.zwnj[("میشود", 2)] == 2 and ceiling.apart[("میشود", 2)] == 1
    assert ceiling.zwnj[("گفتوگو", 3)] == 1 and ceiling.apart[("گفتوگو", 3)] == 1
    assert ceiling.zwnj[("گفتوگو", 4)] == 1
    # majority: both می‌شود (1 wrong: the glued one), both places of گفت‌و‌گو (ties:
    # 2 wrong in the glued گفتوگو)
    assert ceiling.counts() == (4, 3, 0)
    assert ceiling.counts(0.6) == (2, 1, 2)


def test_a_miss_maps_to_its_type():
    reference = f"به{Z}عنوان و کتاب{Z}ها"
    counts: Counter = Counter()
    missed = compare_zwnj(reference, f"به عنوان و کتاب{Z}ها", counts)
    assert counts == Counter({"tp": 1, "fn": 1})
    sites = spaced_sites(reference)
    assert [sites[i][0] for i in missed] == [("به", "عنوان")]


def test_misses_grouped_by_the_scored_and_the_training_counts():
    here = spaced_ceiling([f"به{Z}عنوان", "به عنوان", "به عنوان", f"زکی{Z}پور", f"تیم{Z}مان"])
    train = spaced_ceiling(["به عنوان", f"تیم{Z}مان", "تیم مان", f"به{Z}عنوان"])
    missed = Counter({("به", "عنوان"): 1, ("زکی", "پور"): 1, ("تیم", "مان"): 2})
    groups = training_support(missed, here, train)
    assert groups["unfixable"] == Counter({"ZWNJ at least as often": 1})  # به عنوان: 1/1
    assert groups["fixable"] == Counter({"never seen": 1, "ZWNJ at least as often": 2})


def test_minority_types():
    ceiling = spaced_ceiling([f"به{Z}عنوان", "به عنوان", "به عنوان", f"کتاب{Z}ها", "کتاب ها"])
    assert ceiling.minority() == [("به", "عنوان")]
