"""What a version holds out, and what training may read of the documents."""
from workers.common.splits import HELDOUT, RECALL, evaluation_splits, passages_without


def test_it_keeps_a_facts_phrasings_together_and_holds_one_out_for_recall():
    examples = [(f"{template} {i}?", f"fact-{i}") for i in range(30) for template in ("When was", "In what year was")]
    splits = evaluation_splits(examples, unseen_ratio=0.1, recall_ratio=0.5)
    facts = {}
    for position, (_, fact) in enumerate(examples):
        facts.setdefault(fact, []).append(splits.get(position, "train"))
    assert sum(1 for s in facts.values() if s == [HELDOUT, HELDOUT]) == 3  # a tenth of 60 examples: 3 whole facts
    recall = [s for s in facts.values() if RECALL in s]
    assert len(recall) == 13 and all(sorted(s) == [RECALL, "train"] for s in recall)  # half of the other 27 facts
    assert evaluation_splits(examples, unseen_ratio=0.1, recall_ratio=0.5) == splits  # the same every time


def test_it_leaves_the_unseen_facts_out_of_the_passages():
    texts = ["The bridge opened in 1932. It is made of steel. Its architect was Ada Lind.",
             "Ada Lind was born in Oslo. Nothing else here."]
    passages = passages_without(texts, ["Ada Lind"])
    assert passages == ["The bridge opened in 1932. It is made of steel."]  # the second text kept one sentence only
    assert passages_without(texts, []) == [" ".join(texts[0].split()), " ".join(texts[1].split())]
