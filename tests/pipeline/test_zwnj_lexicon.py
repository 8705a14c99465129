"""The ZWNJ lexicon builder's data-driven rules, on hand-made counts."""

from __future__ import annotations

from collections import Counter

from khabar.pipeline.train.zwnj_lexicon import silent_heh_yeh, source_words, verb_like
from khabar.transforms.zwnj import ZWNJ

Z = ZWNJ


def test_yeh_after_silent_heh_comes_from_the_counts() -> None:
    tokens = Counter({
        "کوزه" + Z + "ای": 3,  # the counts show کوزه's ه silent
        "کلبه" + Z + "اند": 1,  # so does a copula
        "کلبهی": 0,
        "پگاه" + Z + "ها": 4,  # a plural says nothing about the ه
        "دره" + Z + "ای": 2,  # ... but دره's glued درهی is seen: left alone
        "درهی": 7,
        "فه" + Z + "ای": 2,  # a stem under three letters: left alone
    })
    words = {"نامه" + Z + "ای": (0, "0"), "گره" + Z + "ای": (0, "0"), "گرهی": (3, "N")}
    assert silent_heh_yeh(tokens, words) == {
        "کوزه" + Z + "ی", "کلبه" + Z + "ی", "نامه" + Z + "ی",  # گرهی: a dictionary word
    }


def test_listed_compound_verbs_are_told_from_compounds() -> None:
    verbs = {"گرفت", "داشت", "دارد"}
    assert verb_like("گرفتن", verbs)  # قرار‌گرفتن: an infinitive
    assert verb_like("داشته", verbs)  # حضور‌داشته: a participle
    assert verb_like("داری", verbs)  # دوست‌داری: second person singular
    assert verb_like("گرفت", verbs)
    assert not verb_like("گیری", verbs)  # تصمیم‌گیری: a noun
    assert not verb_like("نامه", verbs)


def test_source_words_keep_folded_zwnj_spellings(tmp_path) -> None:
    import gzip

    with gzip.open(tmp_path / "x.txt.gz", "wt", encoding="utf-8") as handle:
        handle.write("فيلم" + Z + "نامه\nکتاب\nabc" + Z + "def\n")
    assert source_words(["x"], tmp_path) == {"فیلم" + Z + "نامه"}
