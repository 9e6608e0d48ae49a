from django.db import models

from apps.core.models import Job, OwnedModel
from apps.datasets.models import Dataset, DatasetVersion


class FineTune(OwnedModel):
    """One fine-tuning run of a base model on a dataset, and the model it produced."""

    class Method(models.TextChoices):
        LORA = "lora", "LoRA adapter"
        QLORA = "qlora", "QLoRA adapter (4-bit, GPU only)"
        FULL = "full", "Full fine-tuning"

    name = models.CharField(max_length=200)
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="finetunes")
    version = models.ForeignKey(DatasetVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="finetunes",
                                help_text="The frozen data it was trained on.")
    base_model = models.CharField(max_length=300)
    method = models.CharField(max_length=10, choices=Method.choices, default=Method.LORA)
    config = models.JSONField(default=dict, blank=True)
    job = models.OneToOneField(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="finetune")
    metrics = models.JSONField(default=dict, blank=True)
    artifact = models.CharField(max_length=500, blank=True, help_text="Path of the zip under the artifacts folder.")
    outputs = models.JSONField(default=dict, blank=True,
                               help_text="Exports by kind (merged, gguf_f16, gguf_q8_0, card): path under the artifacts folder, size.")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.name
