import uuid
from pathlib import PurePath

from django.db import models

from apps.core.models import Job, OwnedModel
from apps.datasets.models import DatasetVersion


def prompts_upload_to(instance, filename):
    """Stored under a UUID path; the user's file name is only a field, never part of a path."""
    suffix = PurePath(filename).suffix.lower()[:10]
    return f"grpo-prompts/{instance.owner_id}/{uuid.uuid4().hex}{suffix}"


class GrpoRun(OwnedModel):
    """One GRPO training run: a base model, a prompt dataset, the reward functions, and the model it produced."""

    class Source(models.TextChoices):
        GSM8K = "gsm8k", "GSM8K training problems (7,473 grade-school maths problems with answers)"
        VERSION = "version", "A frozen version of one of your datasets"
        UPLOAD = "upload", "An uploaded JSONL file of prompts (and optional answers)"

    class Method(models.TextChoices):
        LORA = "lora", "LoRA adapter"
        QLORA = "qlora", "QLoRA adapter (4-bit, GPU only)"
        FULL = "full", "Full fine-tuning"

    RECIPE_GSM8K = "gsm8k-reference"
    # The folder of every run's files (its model's too), below the artifacts folder (GARAGE_ARTIFACTS_DIR).
    FOLDERS = "grpo"

    name = models.CharField(max_length=200)
    base_model = models.CharField(max_length=300)
    method = models.CharField(max_length=10, choices=Method.choices, default=Method.LORA)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.GSM8K)
    version = models.ForeignKey(DatasetVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="grpo_runs",
                                help_text="The frozen dataset version whose questions are the prompts.")
    prompts_file = models.FileField(upload_to=prompts_upload_to, max_length=300, blank=True)
    prompts_filename = models.CharField(max_length=255, blank=True, help_text="The uploaded file's name, as given.")
    prompt_count = models.PositiveIntegerField(default=0)
    answer_count = models.PositiveIntegerField(default=0, help_text="Prompts with a reference answer.")
    rewards = models.JSONField(default=list, help_text="Reward function specs (workers.common.rl), validated.")
    settings = models.JSONField(default=dict, blank=True, help_text="workers.common.rl.GRPOTrainConfig settings.")
    recipe = models.CharField(max_length=40, blank=True, help_text="The template it was made from, if any.")
    job = models.OneToOneField(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="grpo_run")
    metrics = models.JSONField(default=dict, blank=True)
    artifact = models.CharField(max_length=500, blank=True, help_text="Path of the zip under the artifacts folder.")
    base_benchmark = models.ForeignKey("evaluation.BenchmarkRun", null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="+", help_text="GSM8K run of the base model (reference recipe).")
    tuned_benchmark = models.ForeignKey("evaluation.BenchmarkRun", null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="+", help_text="GSM8K run of the tuned model (reference recipe).")
    model = models.OneToOneField("training.FineTune", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="grpo_run", help_text="The tuned model it registered when it finished.")

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "GRPO run"

    def __str__(self):
        return self.name

    @property
    def folder(self) -> str:
        """The run's folder, relative to the artifacts folder: the same on every machine."""
        return f"{self.FOLDERS}/{self.code}"


class RewardPreview(OwnedModel):
    """Reward functions tried on a handful of completions before a run: pasted ones, or ones the base model wrote
    (then a short job generates them)."""

    rewards = models.JSONField(default=list)
    samples = models.JSONField(default=list, help_text="[{prompt, completion, answer}]; completions filled by the job "
                                                       "when generated.")
    results = models.JSONField(default=list, blank=True, help_text="Per sample: {scores: {name: score}, total}.")
    judge = models.JSONField(default=dict, blank=True, help_text="Judge calls, failures and cost, when a judge ran.")
    base_model = models.CharField(max_length=300, blank=True, help_text="The model that wrote the completions, if any.")
    settings = models.JSONField(default=dict, blank=True, help_text="Generation settings (temperature, length).")
    job = models.OneToOneField(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="reward_preview")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"Reward preview {self.code}"

    @property
    def generated(self) -> bool:
        return bool(self.base_model)
