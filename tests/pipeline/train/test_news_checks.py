"""``khabar bench-ner``'s news-fa checks: how each occurrence of issue #19's names was tagged
(exactly, inside a longer entity, or not at all), counted per field, with the shipped tagger."""

from __future__ import annotations

from khabar.pipeline.bench import ner as bench
from khabar.transforms.entities import EntityTagger
from khabar.transforms.normalize import Normalizer


def test_news_checks_counts_exact_inside_and_missed() -> None:
    norm = Normalizer()
    body = norm.normalize("وزیر امور خارجه ترکیه به گزارش ایسنا گفت. ترکیه و ایران", "fa")
    article = {"language": "fa", "title": "ترکیه", "lead": None, "body": body}

    class Fixed:
        """Entities chosen so that each outcome occurs once."""

        def tag_article(self, art: dict) -> dict:
            start = body.index("امور")
            inside = body.index("ترکیه") + len("ترکیه")
            last = body.rindex("ترکیه")
            ents = [
                {
                    "field": "body",
                    "start": start,
                    "end": inside,
                    "type": "ORGANIZATION",
                    "text": body[start:inside],
                },
                {
                    "field": "body",
                    "start": last,
                    "end": last + 5,
                    "type": "LOCATION",
                    "text": "ترکیه",
                },
            ]
            return {**art, "entities": ents}

    got = bench.news_checks(Fixed(), [article])  # type: ignore[arg-type]
    assert got["cases"]["ترکیه"] == {
        "expected": "LOCATION",
        "tagged": {"in ORGANIZATION": 1, "LOCATION": 1, "O": 1},
    }
    assert got["cases"]["ایسنا"]["tagged"] == {"O": 1}
    assert got["top"]["LOCATION"] == [("ترکیه", 1)]
    # and the real tagger runs through it
    real = bench.news_checks(EntityTagger(), [article])
    assert sum(real["cases"]["ترکیه"]["tagged"].values()) == 3
