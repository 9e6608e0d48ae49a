import time

import pytest

from workers.engine.evaluate.scoring import exact_match, rouge_l, score, score_many, token_f1


def test_it_matches_exactly_up_to_case_and_whitespace():
    assert exact_match("  The capital is   Eldhavn. ", "the capital is eldhavn.") == 1.0
    assert exact_match("The capital is Eldhavn", "The capital is Eldhavn.") == 0.0
    assert exact_match("", "") == 1.0
    assert exact_match(None, "x") == 0.0


def test_it_scores_token_f1_as_squad_does():
    # SQuAD normalisation: articles and punctuation go, so these are the same tokens.
    assert token_f1("The cat sat.", "a cat sat") == 1.0
    # prediction "cat sat on mat" (4 tokens) vs "cat sat" (2): precision 2/4, recall 1 → F1 2/3
    assert token_f1("the cat sat on the mat", "the cat sat") == pytest.approx(2 / 3)
    # repeated tokens count only as often as they appear in both
    assert token_f1("dog dog dog", "dog cat") == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    assert token_f1("nothing shared", "entirely different") == 0.0
    assert token_f1("", "") == 1.0
    assert token_f1("the", "") == 1.0  # both empty once articles are removed
    assert token_f1("word", "") == 0.0


def test_it_scores_rouge_l_from_the_longest_common_subsequence():
    # LCS of "police killed the gunman" and "police kill the gunman" is "police the gunman" (3 of 4 each side).
    assert rouge_l("police kill the gunman", "police killed the gunman") == pytest.approx(0.75)
    # order matters for ROUGE-L but not for token F1
    assert rouge_l("a b c d", "d c b a") == pytest.approx(0.25)
    assert token_f1("x y z w", "w z y x") == 1.0
    assert rouge_l("The Lake is DEEP!", "the lake is deep") == 1.0
    assert rouge_l("", "") == 1.0 and rouge_l("x", "") == 0.0 and rouge_l("abc", "xyz") == 0.0
    # precision 2/2, recall 2/5 → F 2 * 0.4 / 1.4
    assert rouge_l("lake deep", "the lake is very deep") == pytest.approx(2 * 0.4 / 1.4)


def test_it_scores_long_texts_quickly():
    words = [f"w{i % 50}" for i in range(800)]
    started = time.monotonic()
    assert rouge_l(" ".join(words), " ".join(reversed(words))) > 0
    assert time.monotonic() - started < 2.0


def test_it_averages_over_pairs():
    result = score_many(["Eldhavn", "blue"], ["Eldhavn", "red"])
    assert result == {"exact_match": 0.5, "token_f1": 0.5, "rouge_l": 0.5, "n": 2}
    assert score_many([], []) == {"exact_match": 0.0, "token_f1": 0.0, "rouge_l": 0.0, "n": 0}
    assert set(score("a", "b")) == {"exact_match", "token_f1", "rouge_l"}
    with pytest.raises(ValueError):
        score_many(["a"], [])


def test_it_gives_no_credit_for_repeating_the_question():
    question = "What is the capital of France?"
    assert token_f1("The capital of France is Paris.", "Paris", question) == 1.0  # a full sentence, right answer
    assert token_f1("The capital of France.", "Paris", question) == 0.0  # the question's words only
    # A reference made only of question words is scored on all its words, so it can still be matched.
    assert token_f1("France", "France", "Where is France?") == 1.0
    assert score("Lyon is the capital", "Paris", question)["token_f1"] == 0.0


def test_it_reads_small_numbers_written_as_words_as_digits():
    assert token_f1("There are 7 days in a week.", "Seven", "How many days are there in a week?") == 1.0
    assert token_f1("twelve", "12") == 1.0 and token_f1("eleven", "12") == 0.0
