"""Template filters that name models readably."""
from django import template

from apps.training.model_choices import model_choice_label

register = template.Library()


@register.filter
def model_label(choice: str) -> str:
    """A stored model choice, readable: a tuned model by its name, a catalogue model by its label."""
    return model_choice_label(choice) if choice else ""


@register.filter
def training_phrase(finetune) -> str:
    """How a tuned model was trained, to follow other words ("… (fine-tuning on Boxes v1)")."""
    return "reinforcement learning (GRPO)" if finetune.training == finetune.Training.GRPO else "fine-tuning"
