"""Which examples of a dataset version are held out for evaluation, and how: recall phrasings and unseen facts.
Pure engine code: no Django (the version freeze and the benchmarks both use it)."""
from __future__ import annotations

import hashlib
import math

from workers.common.sentences import split_sentences

TRAIN, RECALL, HELDOUT = "train", "recall", "heldout"  # the values of VersionExample.Split


def _digest(text: str) -> str:
    return hashlib.sha256(" ".join(text.lower().split()).encode()).hexdigest()


def evaluation_splits(examples: list[tuple[str, str]], *, unseen_ratio: float, recall_ratio: float) -> dict[int, str]:
    """Which examples to hold out for evaluation, by position: {position: split} for the held-out ones.

    `examples` are (question, fact key) pairs; the phrasings of one fact share its key, and an example without a key
    is a fact of its own. Two kinds are held out, each chosen by hash rather than at random, so that a fact stays on
    the same side in every version of a dataset:
    - unseen facts (HELDOUT): about `unseen_ratio` of the facts, all their phrasings (at least one fact from five
      examples up). The model never trains on them, so it can only know them from elsewhere;
    - recall (RECALL): for about `recall_ratio` of the other facts that have two phrasings or more, one phrasing.
      The model trains on the fact's other phrasings: answering the held-out one shows it learned the fact, not the
      words of its questions.
    Something is always kept to train on."""
    facts: dict[str, list[int]] = {}
    for position, (question, fact) in enumerate(examples):
        facts.setdefault(_digest(f"fact:{fact}" if fact else question), []).append(position)
    splits: dict[int, str] = {}
    if unseen_ratio > 0 and len(examples) >= 5:
        target = max(1, min(len(examples) - 1, math.floor(len(examples) * unseen_ratio)))
        held = 0
        for digest in sorted(facts):
            positions = facts[digest]
            if held >= target or held + len(positions) >= len(examples):
                break
            splits.update((p, HELDOUT) for p in positions)
            held += len(positions)
    trained = {d: p for d, p in facts.items() if p[0] not in splits and len({_digest(examples[i][0]) for i in p}) >= 2}
    if recall_ratio > 0 and trained:
        count = max(1, math.floor(len(trained) * recall_ratio))
        # Ordered by a second hash, so that recall facts are not simply the ones next in line to be unseen facts.
        for digest in sorted(trained, key=lambda d: _digest(f"recall:{d}"))[:count]:
            phrasing = min(trained[digest], key=lambda p: _digest(examples[p][0]))
            splits[phrasing] = RECALL
    return splits


def passages_without(texts: list[str], answers: list[str]) -> list[str]:
    """The documents' texts (chunks) to train on as passages, without the sentences that hold the answer of an unseen
    fact: the model must not read what the evaluation counts as never seen. A text left with fewer than two
    sentences is dropped (nothing would follow its first sentence)."""
    hidden = [a.lower().strip() for a in answers if len(a.strip()) >= 2]
    passages = []
    for text in texts:
        kept = [s for s in split_sentences(text) if not any(answer in s.lower() for answer in hidden)]
        if len(kept) >= 2:
            passages.append(" ".join(kept))
    return passages
