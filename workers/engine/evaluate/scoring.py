"""Text metrics for held-out evaluation: exact match, token F1 and ROUGE-L, each between 0 and 1.

Implemented here rather than taken from `evaluate`/`rouge-score` so that scoring stays a pure, dependency-free
module whose exact rules are documented below:
- exact match compares the two texts with case and whitespace normalised (punctuation counts);
- token F1 is SQuAD's: lower case, punctuation and the articles a/an/the removed, tokens split on whitespace
  (numbers up to twenty written as words read as digits), F1 of the overlapping token counts. Given the question, tokens of the question are left out of both sides
  (unless that would leave the reference empty): repeating the question's words is not an answer, and a full
  sentence that states the right answer ("The capital of France is Paris") scores as well as the short one;
- ROUGE-L is the F-measure (beta 1) of the longest common token subsequence, on tokens made as rouge-score does
  (lower case, runs of letters and digits)."""
from __future__ import annotations

import re
import string
from collections import Counter

__all__ = ["exact_match", "token_f1", "rouge_l", "score", "score_many"]

_ARTICLES_RE = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation + "“”‘’«»–—…")
_ROUGE_TOKEN_RE = re.compile(r"[^\W_]+")


# Small numbers written as words count as their digits: "Seven" and "7 days" state the same number.
_NUMBER_WORDS = {word: str(value) for value, word in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen "
    "eighteen nineteen twenty".split())}


def _squad_tokens(text: str) -> list[str]:
    text = (text or "").lower().translate(_PUNCTUATION)
    return [_NUMBER_WORDS.get(token, token) for token in _ARTICLES_RE.sub(" ", text).split()]


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when the texts are equal once lower-cased with whitespace runs collapsed, else 0.0."""
    return float(" ".join((prediction or "").lower().split()) == " ".join((reference or "").lower().split()))


def token_f1(prediction: str, reference: str, question: str = "") -> float:
    """SQuAD token F1, without the question's tokens when a question is given. Two texts without tokens (after
    normalisation) score 1.0; one empty side scores 0.0."""
    predicted, gold = _squad_tokens(prediction), _squad_tokens(reference)
    asked = set(_squad_tokens(question))
    if asked and any(token not in asked for token in gold):
        predicted = [token for token in predicted if token not in asked]
        gold = [token for token in gold if token not in asked]
    if not predicted or not gold:
        return float(predicted == gold)
    common = sum((Counter(predicted) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def _lcs_length(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence, in O(len(a) * len(b)) time and O(len(b)) memory."""
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for token in a:
        current = [0]
        for j, other in enumerate(b, 1):
            current.append(previous[j - 1] + 1 if token == other else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure on tokens. Two empty texts score 1.0; one empty side scores 0.0."""
    predicted = _ROUGE_TOKEN_RE.findall((prediction or "").lower())
    gold = _ROUGE_TOKEN_RE.findall((reference or "").lower())
    if not predicted or not gold:
        return float(predicted == gold)
    lcs = _lcs_length(predicted, gold)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(predicted), lcs / len(gold)
    return 2 * precision * recall / (precision + recall)


def score(prediction: str, reference: str, question: str = "") -> dict[str, float]:
    """All three metrics of one prediction (token F1 without the question's words when it is given)."""
    return {"exact_match": exact_match(prediction, reference), "token_f1": token_f1(prediction, reference, question),
            "rouge_l": rouge_l(prediction, reference)}


def score_many(predictions: list[str], references: list[str]) -> dict[str, float]:
    """The mean of each metric over paired lists (0.0 for empty lists), plus `n`."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references.")
    totals = {"exact_match": 0.0, "token_f1": 0.0, "rouge_l": 0.0}
    for prediction, reference in zip(predictions, references):
        for name, value in score(prediction, reference).items():
            totals[name] += value
    n = len(predictions)
    return {**{name: (total / n if n else 0.0) for name, total in totals.items()}, "n": n}
