"""The abbreviation-aware sentence splitter."""
import random
import time

import pytest

from workers.common.sentences import sentence_spans, split_sentences


@pytest.mark.parametrize("text, sentences", [
    ("Dr. Smith arrived at 5 p.m. on Monday. He left at 6.", ["Dr. Smith arrived at 5 p.m. on Monday.", "He left at 6."]),
    ("The U.S. Army was founded in 1775. It grew.", ["The U.S. Army was founded in 1775.", "It grew."]),
    ("He moved to the U.S. The rest followed.", ["He moved to the U.S.", "The rest followed."]),
    ("Fruit, e.g. apples, is sold here, i.e. in Brisk. Pears too.",
     ["Fruit, e.g. apples, is sold here, i.e. in Brisk.", "Pears too."]),
    ("Smith et al. (2019) measured it. Jones et al. found more. The end.",
     ["Smith et al. (2019) measured it.", "Jones et al. found more.", "The end."]),
    ("J. R. R. Tolkien wrote it in 1937. It sold well.", ["J. R. R. Tolkien wrote it in 1937.", "It sold well."]),
    ("Call cv2.imread to read it. The value is 3.5 metres.", ["Call cv2.imread to read it.", "The value is 3.5 metres."]),
    ('He said "Stop." Then he left... and came back... Later he slept.',
     ['He said "Stop."', "Then he left... and came back...", "Later he slept."]),
    ("Apples, pears, etc. are fruit. See Fig. 3 and No. 5 for more. Done!",
     ["Apples, pears, etc. are fruit.", "See Fig. 3 and No. 5 for more.", "Done!"]),
    ("gzip produces files. gzip is small.", ["gzip produces files.", "gzip is small."]),
    ("Is it far? Yes. It is 12 km away!", ["Is it far?", "Yes.", "It is 12 km away!"]),
    ("# Rivers\nThe Sorrel is long.\n- Spring floods\n- Summer droughts\n| River | Length |",
     ["# Rivers", "The Sorrel is long.", "- Spring floods", "- Summer droughts", "| River | Length |"]),
    ("A line that wraps\nonto the next line ends here.\n\nA new paragraph.",
     ["A line that wraps onto the next line ends here.", "A new paragraph."]),
])
def test_it_splits_sentences_but_not_at_abbreviations_initials_or_decimals(text, sentences):
    assert split_sentences(text) == sentences


def test_it_gives_exact_trimmed_spans_of_the_text():
    text = "  First one.  Second one, by Dr. Who.\n\nThird.  "
    spans = sentence_spans(text)
    assert [text[s:e] for s, e in spans] == ["First one.", "Second one, by Dr. Who.", "Third."]
    assert sentence_spans(text, 14, 37) == [(14, 37)]


def test_it_splits_a_long_text_quickly():
    rng = random.Random(3)
    words = "river valley Dr. goat U.S. cheese 3.5 market e.g. ridge snow J. lantern bridge".split()
    text = " ".join(" ".join(rng.choice(words) for _ in range(12)) + "." for _ in range(20_000))
    started = time.perf_counter()
    spans = sentence_spans(text)
    assert time.perf_counter() - started < 1.5
    assert len(spans) > 10_000
