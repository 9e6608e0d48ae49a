"""The three figures that say whether a model learned its documents: recall, unseen facts and control."""
from django import template

from apps.evaluation.selectors import group_figures

register = template.Library()

# A control score that fell by more than this is shown as forgetting; the target allows 0.05.
FORGETTING_TOLERANCE = 0.05
# Recall that rose by less than this is not called learning: a few lucky tokens are not a learned fact.
LEARNED_MARGIN = 0.05

GROUPS = [
    ("recall", "Recall", "New phrasings of facts it trained on: did it learn the facts, not just the questions?"),
    ("unseen", "Unseen facts", "Facts from your documents it never trained on: expected to stay low."),
    ("control", "Control", "General questions it could answer before: a drop means the tuning made it forget."),
]


def learning_rows(evaluation: dict | None) -> list[dict]:
    """One row per group that was measured, with its token F1 before and after and what the change means."""
    rows = []
    for key, label, help_text in GROUPS:
        figures = (evaluation or {}).get(key)
        if not figures:
            continue
        base, tuned = figures["token_f1"]["base"], figures["token_f1"]["tuned"]
        delta = tuned - base
        if key == "control":
            verdict = "forgot" if delta < -FORGETTING_TOLERANCE else "kept"
        elif key == "recall":
            verdict = "learned" if delta >= LEARNED_MARGIN else "not learned"
        else:
            verdict = "as expected" if delta < LEARNED_MARGIN else "better"
        rows.append({"key": key, "label": label, "help": help_text, "n": figures["n"], "base": base, "tuned": tuned,
                     "delta": delta, "verdict": verdict,
                     "exact_match": figures.get("exact_match") or {}})
    return rows


@register.inclusion_tag("evaluation/_learning.html")
def learning_summary(finetune):
    """The model page's figures: those of its latest evaluation."""
    evaluation = (finetune.metrics or {}).get("evaluation")
    return {"rows": learning_rows(evaluation), "report": (evaluation or {}).get("report")}


@register.inclusion_tag("evaluation/_learning.html")
def learning_summary_of(results: dict):
    """A report's own figures, from its stored results ({"groups": {group: {"n", "base": {...}, "tuned": {...}}}})."""
    groups = (results or {}).get("groups") or {}
    return {"rows": learning_rows({key: group_figures(group) for key, group in groups.items()}), "report": None}
