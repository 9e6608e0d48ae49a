from django.db import models

from apps.core.models import Job, OwnedModel
from apps.training.models import FineTune


class BenchmarkRun(OwnedModel):
    """One model answering one benchmark (GSM8K or AIME) under fixed settings, and how well it did."""

    class Benchmark(models.TextChoices):
        GSM8K = "gsm8k", "GSM8K"
        AIME = "aime", "AIME"

    name = models.CharField(max_length=200, blank=True)
    benchmark = models.CharField(max_length=10, choices=Benchmark.choices, default=Benchmark.GSM8K)
    # Exactly one of the two: a base model (catalogue id, Hub id or local folder) or one of the owner's fine-tunes.
    base_model = models.CharField(max_length=300, blank=True)
    finetune = models.ForeignKey(FineTune, null=True, blank=True, on_delete=models.SET_NULL, related_name="benchmark_runs")
    model_label = models.CharField(max_length=300, help_text="The model's name when the run was made; kept if the "
                                                             "fine-tune is deleted later.")
    settings = models.JSONField(default=dict, blank=True, help_text="workers.benchmarks.BenchmarkSpec fields.")
    job = models.OneToOneField(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="benchmark_run")
    results = models.JSONField(default=dict, blank=True,
                               help_text="n, correct, accuracy, format_rate, mean_length_chars, mean_length_words, seconds.")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return self.name or f"{self.get_benchmark_display()}: {self.model_label}"

    @property
    def title(self) -> str:
        return str(self)


class BenchmarkItem(models.Model):
    """One problem of a run: what the model wrote, the answer read from it and whether it was right."""

    run = models.ForeignKey(BenchmarkRun, on_delete=models.CASCADE, related_name="items")
    index = models.PositiveIntegerField(help_text="Position in the run, from 0.")
    problem_id = models.CharField(max_length=100, blank=True)
    question = models.TextField()
    reference = models.CharField(max_length=300)
    completion = models.TextField(blank=True)
    extracted = models.CharField(max_length=300, null=True, blank=True)
    formatted = models.BooleanField(default=False, help_text="The answer came with the marker the prompt asks for.")
    correct = models.BooleanField(default=False)

    class Meta:
        ordering = ["run", "index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="benchmark_item_unique_index")]
        indexes = [models.Index(fields=["run", "correct", "index"])]

    def __str__(self):
        return f"Problem {self.index} of {self.run_id}"
