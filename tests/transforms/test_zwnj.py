"""The ZWNJ restorer: every rule, the false-join guard, and ambiguity, with the shipped
lexicon and with a small hand-made one (so each rule is seen working on its own)."""

from __future__ import annotations

import gzip

import pytest

from khabar.transforms.zwnj import LEXICON_PATH, ZWNJ, Lexicon, ZwnjRestorer, load_lexicon

Z = ZWNJ


@pytest.fixture(scope="module")
def restorer() -> ZwnjRestorer:
    return ZwnjRestorer(load_lexicon())


def z(text: str) -> str:
    """Test strings write ZWNJ as '|' for legibility."""
    return text.replace("|", Z)


@pytest.mark.parametrize(
    ("glued", "restored"),
    [
        # lexicon words with ZWNJ, looked up by their glued spelling
        ("گفتوگو", "گفت|وگو"),
        ("پیشنویس", "پیش|نویس"),
        ("فوقالعاده", "فوق|العاده"),
        ("حملونقل", "حمل|ونقل"),
        ("بیثباتی", "بی|ثباتی"),
        ("نامهنگاری", "نامه|نگاری"),
        # می / نمی + verb form
        ("میگویند", "می|گویند"),
        ("نمیتوانستند", "نمی|توانستند"),
        # plurals by rule
        ("پروندههای", "پرونده|های"),
        ("کتابهایشان", "کتاب|هایشان"),
        ("خودروها", "خودرو|ها"),
        # clitics after final ه
        ("شدهاند", "شده|اند"),
        ("نوشتهایم", "نوشته|ایم"),
        ("رسانهای", "رسانه|ای"),
        ("همهاش", "همه|اش"),
        # تر / ترین after an adjective
        ("سنگینتر", "سنگین|تر"),
        ("کوچکترین", "کوچک|ترین"),
        # an inflected compound, spelled as the counts see it written
        ("گفتوگوهای", "گفت|وگوهای"),
        ("گفتوگوی", "گفت|وگوی"),
        # compound tails
        ("بمبگذاری", "بمب|گذاری"),
    ],
)
def test_glued_words_are_restored(restorer: ZwnjRestorer, glued: str, restored: str) -> None:
    assert restorer.restore(glued) == z(restored)


@pytest.mark.parametrize(
    "word",
    # known whole: never split (lexicalized comparatives, words ending in ها / تر / ی)
    ["پیشنهاد", "بیشتر", "بهتر", "کمتر", "بهترین", "تنها", "دفتر", "بستر", "میدان", "میز",
     "شاهی", "ماهی", "بیرون", "بیمار", "انتهای", "دختر", "کبوتر", "رها"],
)
def test_known_whole_words_are_never_split(restorer: ZwnjRestorer, word: str) -> None:
    assert restorer.restore(word) == word


@pytest.mark.parametrize(
    ("spaced", "joined"),
    [
        ("می گوید", "می|گوید"),
        ("نمی شود", "نمی|شود"),
        ("کتاب ها", "کتاب|ها"),
        ("مدرسه های", "مدرسه|های"),
        ("شده اند", "شده|اند"),
        ("خانه ای", "خانه|ای"),
        ("بزرگ تر", "بزرگ|تر"),
        ("بیش تر", "بیشتر"),  # lexicalized: glued whole, not ZWNJ
        ("گفت و گو", "گفت|وگو"),
        ("برنامه ریزی", "برنامه|ریزی"),
        ("سرمایه گذاری", "سرمایه|گذاری"),
        ("بین المللی", "بین|المللی"),
        ("رئیس جمهور", "رئیس|جمهور"),
        ("زمین لرزه ای", "زمین|لرزه|ای"),  # joins chain
    ],
)
def test_spaced_words_are_joined(restorer: ZwnjRestorer, spaced: str, joined: str) -> None:
    assert restorer.restore(spaced) == z(joined)


@pytest.mark.parametrize(
    "text",
    [
        # compound verbs stay two words (the false-join guard)
        "انجام داده",
        "صورت گرفته",
        "کشته شدند",
        "اعلام کرد",
        "تصمیم گرفتند",
        "منتشر شده است",
        # phrases that are not compounds
        "ماه می",
        "تیم ملی",
        "که ای کاش",
        "به عنوان",
        "در حال",
    ],
)
def test_no_false_joins(restorer: ZwnjRestorer, text: str) -> None:
    assert restorer.restore(text) == text


def test_only_words_change_and_gaps_stay(restorer: ZwnjRestorer) -> None:
    text = "«کتاب ها»،  میشود\nشده اند.  ۱۲ ماه"
    assert restorer.restore(text) == z("«کتاب|ها»،  می|شود\nشده|اند.  ۱۲ ماه")
    assert restorer.restore("") == ""
    assert restorer.restore("Latin only, 12") == "Latin only, 12"


def test_rules_on_a_tiny_lexicon() -> None:
    """Each rule on a hand-made lexicon: the rules, not the shipped data, do the work."""
    lexicon = Lexicon.from_rows(
        [
            ("باغ", "W", 10),
            ("درخت", "W", 10),
            ("خانه", "W", 10),
            ("تند", "WA", 10),
            ("باغ" + Z + "وحش", "JS", 5),
            ("می" + Z + "رود", "JV", 0),
            ("رود", "WV", 3),
            ("کاشته", "WV", 3),
            ("نام", "W", 30),
            ("نامه", "W", 30),
            ("نامه" + Z + "ای", "", 9),
            ("نام" + Z + "های", "", 9),
        ]
    )
    r = ZwnjRestorer(lexicon)
    assert r.restore("باغوحش") == "باغ" + Z + "وحش"  # lexicon, glued
    assert r.restore("باغ وحش") == "باغ" + Z + "وحش"  # lexicon, spaced
    assert r.restore("باغوحشها") == "باغ" + Z + "وحش" + Z + "ها"  # inflected compound
    assert r.restore("میرود") == "می" + Z + "رود"
    assert r.restore("می رود") == "می" + Z + "رود"
    assert r.restore("درختها") == "درخت" + Z + "ها"
    assert r.restore("خانهای") == "خانه" + Z + "ای"
    assert r.restore("تندتر") == "تند" + Z + "تر"
    assert r.restore("درختتر") == "درختتر"  # not an adjective
    assert r.restore("باغ کاشته") == "باغ کاشته"  # verb form: never joined
    # نامهای: نامه‌ای and نام‌های seen equally often -> left alone, never guessed
    assert r.restore("نامهای") == "نامهای"


def test_ambiguity_follows_clear_counts() -> None:
    rows = [("نام", "W", 30), ("نامه", "W", 30), ("نامه" + Z + "ای", "", 40),
            ("نام" + Z + "های", "", 3)]
    assert ZwnjRestorer(Lexicon.from_rows(rows)).restore("نامهای") == "نامه" + Z + "ای"


def test_existing_zwnj_is_kept(restorer: ZwnjRestorer) -> None:
    for word in ("می" + Z + "شود", "رئیس" + Z + "جمهور", "بیش" + Z + "تر"):
        assert restorer.restore(word) == word


@pytest.mark.parametrize(
    ("spaced", "joined"),
    [
        # a pronoun clitic the writer kept apart, after a noun
        ("دوستان شان گفتند", "دوستان|شان گفتند"),
        ("تلاش مان را", "تلاش|مان را"),
        ("کشور تان", "کشور|تان"),
        ("پیام اش", "پیام|اش"),
        # a particle verb with می inside
        ("درمی آید", "درمی|آید"),
        ("فرومی ریزد", "فرومی|ریزد"),
        ("برمی گردند", "برمی|گردند"),
    ],
)
def test_spaced_clitics_and_particle_verbs(
    restorer: ZwnjRestorer, spaced: str, joined: str
) -> None:
    assert restorer.restore(spaced) == z(joined)


@pytest.mark.parametrize(
    "text",
    [
        "در شان ملت",  # شان is the noun شأن after a preposition
        "دون شان",
        "رفتیم مان",  # after a verb form: not a possessive
        "باز می",  # می at the end: nothing to join
    ],
)
def test_spaced_clitic_guards(restorer: ZwnjRestorer, text: str) -> None:
    assert restorer.restore(text) == text


@pytest.mark.parametrize(
    ("glued", "restored"),
    [
        # ezafe / indefinite ی after a silent ه: the counts write it apart, never glued
        ("جلسهی", "جلسه|ی"),
        ("پروژهی", "پروژه|ی"),
        # a sounded ه takes a glued ی: words the dictionary or the counts know stay
        ("راهی", "راهی"),
        ("دستگاهی", "دستگاهی"),
        ("توجهی", "توجهی"),
        ("دانشگاهی", "دانشگاهی"),
    ],
)
def test_yeh_after_silent_heh(restorer: ZwnjRestorer, glued: str, restored: str) -> None:
    assert restorer.restore(glued) == z(restored)


def test_ambiguity_by_spelling_counts() -> None:
    """A plural against ای after ه, both spellings counted: a ratio of 3 decides, by the
    spellings' own counts (not their stems'); under it the word is left alone."""

    def restore(heh_count: int, plural_count: int) -> str:
        rows = [("سرم", "W", 500), ("سرمه", "W", 20), ("سرمه" + Z + "ای", "", heh_count),
                ("سرم" + Z + "های", "", plural_count)]
        return ZwnjRestorer(Lexicon.from_rows(rows)).restore("سرمهای")

    assert restore(40, 12) == "سرمه" + Z + "ای"  # 40 >= 3 x 12, though سرم is commoner
    assert restore(5, 40) == "سرم" + Z + "های"
    assert restore(30, 12) == "سرمهای"  # 2.5 x: not clear enough, left alone


@pytest.mark.parametrize(
    ("glued", "restored"),
    [
        # the counts see these written apart at least twice as often as glued
        ("حریفمان", "حریف|مان"),
        ("فوتبالمان", "فوتبال|مان"),
        # the usual spelling: clitics joined (and words that merely end like one)
        ("دستشان", "دستشان"),
        ("کتابشان", "کتابشان"),
        ("خودشان", "خودشان"),
        ("سازمان", "سازمان"),
        ("درمان", "درمان"),
    ],
)
def test_glued_pronoun_clitics_follow_clear_counts(
    restorer: ZwnjRestorer, glued: str, restored: str
) -> None:
    assert restorer.restore(glued) == z(restored)


def test_fast_lexicon_load_is_the_plain_parse(tmp_path) -> None:
    """``load_lexicon`` (the file split into columns at once) gives what parsing it line by
    line gives, for the shipped file and for files with comments, blank lines and a
    malformed line."""
    def plain(path):
        rows = []
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("#") or not line.strip("\n"):
                    continue
                word, flags, count = line.rstrip("\n").split("\t")
                rows.append((word, flags, int(count)))
        return Lexicon.from_rows(rows)

    shipped = load_lexicon(LEXICON_PATH)
    reference = plain(LEXICON_PATH)
    assert shipped == reference
    assert list(shipped.joins.items()) == list(reference.joins.items())
    assert list(shipped.counts.items()) == list(reference.counts.items())
    body = "# header\nکتاب\tK\t12\nکتاب‌ها\tJS\t0\nمی‌رود\tJV\t3\n"
    for name, text in [("plain", body), ("comment", body + "# note\nرفت\tV\t1\n"),
                       ("blank", body + "\nرفت\tV\t1\n")]:
        path = tmp_path / f"{name}.tsv.gz"
        path.write_bytes(gzip.compress(text.encode()))
        assert load_lexicon(path) == plain(path)
    bad = tmp_path / "bad.tsv.gz"
    bad.write_bytes(gzip.compress((body + "رفت\tV\n").encode()))
    with pytest.raises(ValueError):
        load_lexicon(bad)
