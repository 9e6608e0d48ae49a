from django.db import models

from apps.core.models import Job, OwnedModel
from apps.datasets.models import Dataset, DatasetVersion


class FineTune(OwnedModel):
    """A tuned model: the registry of every trained result, whichever way it was trained (supervised fine-tuning on
    a dataset version, or GRPO, whose run registers its model here when it finishes), with its lineage: the base
    model at the root, the user's model it started from (`parent`), the data, the method and the run. Every feature
    that takes a model (playground, /v1, benchmarks, held-out evaluation, exports, Hub push and its gate) takes any
    of them.

    Its files are in one folder under the artifacts folder (`folder`, by default its code): model/ (the adapter or
    the full model), base/ (the model it started from, when that is not `base_model` itself: the tiny test model
    built for it, or its parent folded into one folder), exports/."""

    class Training(models.TextChoices):
        SFT = "sft", "Fine-tuning"
        GRPO = "grpo", "Reinforcement learning (GRPO)"

    class Method(models.TextChoices):
        LORA = "lora", "LoRA adapter"
        QLORA = "qlora", "QLoRA adapter (4-bit, GPU only)"
        FULL = "full", "Full fine-tuning"

    name = models.CharField(max_length=200)
    training = models.CharField(max_length=10, choices=Training.choices, default=Training.SFT)
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.PROTECT, related_name="finetunes",
                                help_text="Empty for a GRPO model trained on GSM8K or on uploaded prompts.")
    version = models.ForeignKey(DatasetVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="finetunes",
                                help_text="The frozen data it was trained on.")
    base_model = models.CharField(max_length=300, help_text="The base model at the root of its lineage.")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children",
                               help_text="The user's own model it started from, if any.")
    method = models.CharField(max_length=10, choices=Method.choices, default=Method.LORA)
    config = models.JSONField(default=dict, blank=True)
    job = models.OneToOneField(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="finetune")
    metrics = models.JSONField(default=dict, blank=True)
    artifact = models.CharField(max_length=500, blank=True, help_text="Path of the zip under the artifacts folder.")
    outputs = models.JSONField(default=dict, blank=True,
                               help_text="Exports by kind (merged, gguf_f16, gguf_q8_0, card): path under the artifacts folder, size.")
    folder = models.CharField(max_length=300, blank=True,
                              help_text="Its folder under the artifacts folder when it is not its code (a GRPO model "
                                        "stays in its run's folder).")
    adapter_base = models.CharField(max_length=300, blank=True,
                                    help_text="The folder (under the artifacts folder) its adapter applies to when that "
                                              "is not the model it started from: a GRPO warm-up's model.")

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "tuned model"

    def __str__(self):
        return self.name

    @property
    def stacked(self) -> bool:
        """Whether its adapter applies to a model of this server rather than to its base model (it started from one of
        the user's models, or from a GRPO warm-up): such an adapter leaves this server only merged."""
        return self.method != self.Method.FULL and bool(self.parent_id or self.adapter_base)
