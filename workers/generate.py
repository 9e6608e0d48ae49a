"""Question-answer generation. The offline extractive generator needs no model: each factual sentence
becomes the answer to a question formed from its subject."""
from __future__ import annotations

import re
from dataclasses import dataclass

_SENTENCE = re.compile(r"[^.!?\n]*[A-Za-z][^.!?\n]*[.!?]")
_COPULA = re.compile(r"^(?P<subject>[A-Z][^,;:()]{2,80}?) (?P<verb>is|are|was|were|has|have) (?P<rest>[^;]{3,})[.!?]$")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")
_STOP = {"the", "a", "an", "and", "or", "of", "to", "in", "on", "for", "with", "is", "are", "was", "were", "it",
         "this", "that", "these", "those", "by", "at", "as", "from", "be", "has", "have", "its", "their", "there"}


@dataclass
class QA:
    question: str
    answer: str
    chunk_index: int


def _lower_first(subject: str) -> str:
    first, _, rest = subject.partition(" ")
    # "The lake" -> "the lake"; keep proper nouns such as "Eldhavn" or "NASA" as written.
    if first in {"The", "A", "An", "Its", "Their", "Each", "Every"}:
        return " ".join([first.lower(), rest]).strip()
    return subject


def question_for(sentence: str) -> str | None:
    match = _COPULA.match(sentence)
    if match:
        subject, verb = _lower_first(match["subject"].strip()), match["verb"]
        if verb in {"has", "have"}:
            return f"What {'does' if verb == 'has' else 'do'} {subject} have?"
        return f"What {verb} {subject}?"
    keywords = [w for w in _WORD.findall(sentence) if w.lower() not in _STOP]
    if len(keywords) < 2:
        return None
    return f"What does the text say about the {keywords[0].lower()} {keywords[1]}?"


def extractive_pairs(chunks: list[str], *, max_pairs: int | None = None, min_words: int = 4) -> list[QA]:
    """One pair per distinct question, in document order. Sentences of fewer than `min_words` words are skipped."""
    pairs: list[QA] = []
    seen: set[str] = set()
    for index, chunk in enumerate(chunks):
        for raw in _SENTENCE.findall(chunk):
            sentence = " ".join(raw.split())
            if len(sentence.split()) < min_words:
                continue
            question = question_for(sentence)
            if question is None or question.lower() in seen:
                continue
            seen.add(question.lower())
            pairs.append(QA(question=question, answer=sentence, chunk_index=index))
            if max_pairs is not None and len(pairs) >= max_pairs:
                return pairs
    return pairs
