from django.db import models

from apps.core.models import Job, OwnedModel
from apps.datasets.models import DatasetVersion


class OptimizedPrompt(OwnedModel):
    """One prompt-optimization run: a seed system prompt evolved by a reflection model against an evaluation set,
    scored with a metric, within a budget of model calls (workers.engine.promptopt)."""

    class Source(models.TextChoices):
        VERSION = "version", "A frozen version of one of your datasets (training split to learn, held-out split to validate)"
        GSM8K = "gsm8k", "GSM8K (training problems to learn, test problems to validate)"

    class Metric(models.TextChoices):
        EXACT = "exact_match", "Exact match (case and spacing ignored)"
        F1 = "token_f1", "Token F1 (word overlap with the reference)"
        NUMERIC = "numeric", "Numeric answer match (the final number, as in the GSM8K benchmark)"

    LOCAL = "local"  # a model choice naming a local model rather than an endpoint

    name = models.CharField(max_length=200)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.VERSION)
    version = models.ForeignKey(DatasetVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    task_provider = models.CharField(max_length=64, help_text="'default', a provider's code, or 'local'.")
    task_local_model = models.CharField(max_length=300, blank=True, help_text="The local model, when task_provider is 'local'.")
    task_label = models.CharField(max_length=300, blank=True, help_text="The task model as pages show it.")
    reflection_provider = models.CharField(max_length=64, help_text="'default', a provider's code, or 'local'.")
    reflection_local_model = models.CharField(max_length=300, blank=True)
    reflection_label = models.CharField(max_length=300, blank=True)
    metric = models.CharField(max_length=20, choices=Metric.choices, default=Metric.F1)
    budget = models.PositiveIntegerField(help_text="Model calls in all, task and reflection, never exceeded.")
    seed_prompt = models.TextField(blank=True)
    settings = models.JSONField(default=dict, blank=True)
    train_count = models.PositiveIntegerField(default=0)
    val_count = models.PositiveIntegerField(default=0)
    job = models.OneToOneField(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="optimized_prompt")
    best_prompt = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return self.name


class PromptCandidate(models.Model):
    """One prompt the optimizer tried, with its parent and scores."""

    class Status(models.TextChoices):
        SEED = "seed", "Seed"
        ACCEPTED = "accepted", "Kept (beat its parent)"
        REJECTED = "rejected", "Rejected (did not beat its parent)"
        UNUSABLE = "unusable", "Unusable reply"
        DUPLICATE = "duplicate", "Already tried"

    run = models.ForeignKey(OptimizedPrompt, on_delete=models.CASCADE, related_name="candidates")
    index = models.PositiveIntegerField()
    parent_index = models.PositiveIntegerField(null=True, blank=True)
    prompt = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices)
    val_score = models.FloatField(null=True, blank=True, help_text="Mean score on the validation set.")
    val_scores = models.JSONField(default=list, blank=True)
    minibatch_score = models.FloatField(null=True, blank=True)
    minibatch_parent_score = models.FloatField(null=True, blank=True)
    calls = models.PositiveIntegerField(default=0, help_text="Model calls this candidate cost.")
    calls_used = models.PositiveIntegerField(default=0, help_text="Model calls used by the run when it was scored.")
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["run_id", "index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="unique_prompt_candidate_index")]

    def __str__(self):
        return f"#{self.index} of {self.run}"


class SavedPrompt(OwnedModel):
    """A system prompt kept for reuse in the playground, benchmarks and training."""

    name = models.CharField(max_length=200)
    text = models.TextField()
    source_run = models.ForeignKey(OptimizedPrompt, null=True, blank=True, on_delete=models.SET_NULL, related_name="saved")
    score = models.FloatField(null=True, blank=True, help_text="Its validation score in the run it came from.")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return self.name
