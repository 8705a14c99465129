"""The masking step: every protected class, restored as it should be."""

from __future__ import annotations

import time

import pytest

from khabar.transforms.protect import EMAIL, HANDLE, HASHTAG, LATIN, NUMBER, PLACEHOLDER, URL, mask


def kinds(text: str) -> list[tuple[str, str]]:
    return mask(text).spans


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("نرخ تورم ۳۸.۷ درصد شد", [(NUMBER, "۳۸.۷")]),
        ("جمعیت 83,500,000 نفر", [(NUMBER, "83,500,000")]),
        ("تاریخ ۱۴۰۲/۰۷/۱۵ بود", [(NUMBER, "۱۴۰۲/۰۷/۱۵")]),
        ("ساعت 21:45 شروع شد", [(NUMBER, "21:45")]),
        ("بازی ۳-۱ تمام شد", [(NUMBER, "۳-۱")]),
        ("رشد ۷٪ و 12% بود", [(NUMBER, "۷٪"), (NUMBER, "12%")]),
        ("تماس: ۰۲۱-۸۸۷۷۶۶۵۵", [(NUMBER, "۰۲۱-۸۸۷۷۶۶۵۵")]),
        ("سن ۲۰ تا ۲۵ سال", [(NUMBER, "۲۰"), (NUMBER, "۲۵")]),
        ("نشانی https://news.example.org/a/b?id=7 را ببینید.", [(URL, "https://news.example.org/a/b?id=7")]),
        ("سایت www.irna.ir.", [(URL, "www.irna.ir")]),
        ("نامه به info@example.co.ir بفرستید", [(EMAIL, "info@example.co.ir")]),
        ("کانال @khabar_fa را", [(HANDLE, "@khabar_fa")]),
        ("با برچسب #انتخابات_۱۴۰۳ منتشر شد", [(HASHTAG, "#انتخابات_۱۴۰۳")]),
        ("گوشی Galaxy S24 Ultra عرضه شد", [(LATIN, "Galaxy S24 Ultra")]),
        ("تبلت Archos 10 رسید", [(LATIN, "Archos 10")]),
        ("ویروس COVID-19 و H1N1", [(LATIN, "COVID-19"), (LATIN, "H1N1")]),
        ("سایت digikala.com گفت", [(LATIN, "digikala.com")]),
    ],
)
def test_protected_classes(text: str, expected: list[tuple[str, str]]) -> None:
    assert kinds(text) == expected


def test_restore_puts_everything_back_and_numbers_get_persian_digits() -> None:
    text = "در 2 GB و ۴۲.۵ درصد و 12.75 و http://a.ir/x_1 و Archos 10"
    masked = mask(text)
    assert masked.text.count(PLACEHOLDER) == len(masked.spans) == 5
    assert masked.restore(masked.text) == (
        "در 2 GB و ۴۲٫۵ درصد و ۱۲٫۷۵ و http://a.ir/x_1 و Archos 10"
    )


def test_number_touching_a_persian_letter_gets_a_space() -> None:
    masked = mask("جذب714میلیارد")
    assert masked.restore(masked.text) == "جذب ۷۱۴ میلیارد"


def test_a_placeholder_character_in_the_input_survives() -> None:
    text = f"متن {PLACEHOLDER} و ۱.۵"
    masked = mask(text)
    assert masked.restore(masked.text) == f"متن {PLACEHOLDER} و ۱٫۵"


def test_a_lost_placeholder_is_an_error_not_silent_corruption() -> None:
    masked = mask("عدد ۱.۵ و ۲.۵")
    with pytest.raises(ValueError, match="lost track"):
        masked.restore(masked.text.replace(PLACEHOLDER, "", 1))


def test_mask_is_linear_on_adversarial_runs() -> None:
    """Long runs of digits, separators and Latin letters: time grows with the length,
    not with its square (ratio of two sizes, not an absolute bound)."""

    def cost(n: int) -> float:
        text = "1" * n + "." + "a1" * n + " " + "1-" * n + "@" * n + "#" * n
        start = time.perf_counter()
        mask(text)
        return time.perf_counter() - start

    cost(1000)
    small, large = min(cost(20_000) for _ in range(3)), min(cost(160_000) for _ in range(3))
    assert large / small < 8 * 3  # 8x the input; quadratic would be 64x
