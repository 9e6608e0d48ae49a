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
    settings = models.JSONField(default=dict, blank=True, help_text="workers.common.evaluation.BenchmarkSpec fields.")
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


class HeldoutEvaluation(OwnedModel):
    """A fine-tune's base and tuned models answering the held-out questions of its dataset version (the share set
    aside at freeze time and never trained on), and how each answer scored. One runs after every training; the
    owner may run it again (with another judge, say)."""

    finetune = models.ForeignKey(FineTune, on_delete=models.CASCADE, related_name="heldout_evaluations")
    job = models.OneToOneField(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="heldout_evaluation")
    automatic = models.BooleanField(default=False, help_text="Queued by the end of the training, not by a person.")
    judge_provider = models.CharField(max_length=100, blank=True,
                                      help_text="Empty: no judge; “default”: the site's endpoint; else a provider's code.")
    judge_label = models.CharField(max_length=300, blank=True, help_text="The judge's name when the run was made.")
    settings = models.JSONField(default=dict, blank=True, help_text="batch_size, max_new_tokens (null: from the "
                                                                    "reference lengths), scrub_pii.")
    results = models.JSONField(default=dict, blank=True,
                               help_text="examples, base and tuned means, judge, counts, most_improved, most_worse, seconds.")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"Held-out evaluation of {self.finetune}"


class HeldoutItem(models.Model):
    """One held-out question: the reference, what each model answered and how each answer scored."""

    class Change(models.TextChoices):
        IMPROVED = "improved", "Improved"
        WORSE = "worse", "Worse"
        SAME = "same", "About the same"

    class Group(models.TextChoices):
        RECALL = "recall", "Recall: new phrasings of trained facts"
        UNSEEN = "unseen", "Unseen facts"
        CONTROL = "control", "Control: general questions"

    evaluation = models.ForeignKey(HeldoutEvaluation, on_delete=models.CASCADE, related_name="items")
    index = models.PositiveIntegerField(help_text="Position among the held-out examples, from 0.")
    group = models.CharField(max_length=10, choices=Group.choices, default=Group.UNSEEN)
    example = models.ForeignKey("datasets.VersionExample", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+", help_text="Where the question came from (document and page).")
    system = models.TextField(blank=True)
    question = models.TextField()
    reference = models.TextField()
    base_answer = models.TextField(blank=True)
    tuned_answer = models.TextField(blank=True)
    base_exact_match = models.FloatField(default=0.0)
    tuned_exact_match = models.FloatField(default=0.0)
    base_token_f1 = models.FloatField(default=0.0)
    tuned_token_f1 = models.FloatField(default=0.0)
    base_rouge_l = models.FloatField(default=0.0)
    tuned_rouge_l = models.FloatField(default=0.0)
    base_judge = models.FloatField(null=True, blank=True, help_text="The judge's rating from 0 to 1; empty when not judged.")
    tuned_judge = models.FloatField(null=True, blank=True)
    f1_delta = models.FloatField(default=0.0, help_text="Tuned minus base token F1.")
    change = models.CharField(max_length=10, choices=Change.choices, default=Change.SAME)

    class Meta:
        ordering = ["evaluation", "index"]
        constraints = [models.UniqueConstraint(fields=["evaluation", "index"], name="heldout_item_unique_index")]
        indexes = [models.Index(fields=["evaluation", "change", "index"]), models.Index(fields=["evaluation", "f1_delta"])]

    def __str__(self):
        return f"Held-out question {self.index} of {self.evaluation_id}"
