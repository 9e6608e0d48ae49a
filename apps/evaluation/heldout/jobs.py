"""The worker side of the held-out evaluation: answering a fine-tune's held-out questions with its base and tuned
models, scoring them and storing the report. Only `jobs.py` modules import the engine; the web side
(apps.evaluation.heldout.services) creates the evaluations and queues their jobs, which workers.tasks runs here.

    heldout_evaluation_run(evaluation=..., reporter=...)     # a held-out evaluation (workers.tasks.evaluate)
"""
from __future__ import annotations

from pathlib import Path

from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone

from apps.core.jobtypes import job_type
from apps.hub.pushes import hub_push_follow
from apps.training.pipeline import pipeline_advance
from apps.core.models import Job
from apps.datasets.models import VersionExample
from apps.evaluation.heldout.services import DEFAULT_SETTINGS, GROUP_OF_SPLIT, heldout_examples
from apps.evaluation.models import HeldoutEvaluation, HeldoutItem
from apps.evaluation.selectors import group_figures
from apps.training.models import FineTune
from apps.training.services import finetune_system_prompt
from workers.common.errors import ReadableError
from workers.common.evaluation import HeldoutSettings
from workers.engine.evaluate.heldout import evaluate_heldout, load_control_set
from workers.engine.inference import clear_cache


def heldout_evaluation_examples(*, finetune: FineTune) -> tuple[list[VersionExample | None], list[dict]]:
    """What the evaluation asks, as (version examples, engine examples) in one order: at most
    GARAGE_EVAL_MAX_PER_GROUP recall and unseen examples each (so that evaluating costs a bounded share of the
    run), then the shipped control set, whose items have no version example."""
    limit = django_settings.GARAGE_EVAL_MAX_PER_GROUP
    chosen, taken = [], {}
    for example in heldout_examples(finetune=finetune):
        group = GROUP_OF_SPLIT[example.split]
        if taken.get(group, 0) < limit:
            taken[group] = taken.get(group, 0) + 1
            chosen.append(example)
    engine = [{"question": e.question, "answer": e.answer, "group": GROUP_OF_SPLIT[e.split],
               "system": finetune_system_prompt(finetune, e.system)} for e in chosen]
    control = load_control_set() if django_settings.GARAGE_EVAL_CONTROL else []
    # The control questions are asked as they come, with the fine-tune's system prompt: the way its users ask.
    engine += [{**c, "system": finetune_system_prompt(finetune)} for c in control]
    return chosen + [None] * len(control), engine


def _judge_fn(*, evaluation: HeldoutEvaluation, job: Job | None):
    """complete_many for the judge: the chosen endpoint, every request audited, personal data scrubbed first unless
    the settings say otherwise (apps.providers.client). The key is decrypted here, in the worker, and only when the
    judge is first used."""
    from apps.providers.client import provider_client
    from apps.providers.models import ExternalCallAudit

    def complete_many(conversations, **params):  # params: what the judge adds, such as response_format
        # provider_client's ReadableError (a deleted provider, say) is counted as failed judgements.
        with provider_client(owner=evaluation.owner, provider=evaluation.judge_provider,
                             purpose=ExternalCallAudit.Purpose.JUDGE, job=job,
                             scrub_pii=evaluation.settings.get("scrub_pii", True)) as client:
            return client.complete_many(conversations, temperature=0, max_tokens=64, **params)

    return complete_many


def _token_counter(ref):
    """Token counts in the tuned model's tokenizer (saved beside the adapter by training), for the answer budget."""
    from transformers import AutoTokenizer

    source = ref.adapter if ref.adapter and any((Path(ref.adapter) / name).is_file()
                                                 for name in ("tokenizer.json", "tokenizer_config.json")) else ref.path
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as exc:
        raise ReadableError(f"Could not read the model's tokenizer: {exc}") from exc
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])


def heldout_evaluation_run(*, evaluation: HeldoutEvaluation, reporter, answer_base=None, answer_tuned=None,
                           count_tokens=None) -> dict:
    """Answer the held-out questions with both models, score them and store the report (through
    workers.engine.inference.generate unless answer functions are given).

    Side effects: replaces the evaluation's items and results, writes finetune.metrics["evaluation"], sends the
    questions and answers to the judge endpoint when one was chosen (one audit row per request), and unloads the
    models afterwards so that the next training on this worker finds the GPU memory free."""
    finetune = evaluation.finetune
    examples, asked = heldout_evaluation_examples(finetune=finetune)
    if not finetune.artifact:
        raise ReadableError("This model has no trained files any more; train it again to evaluate it.")
    uses_inference = answer_base is None or answer_tuned is None
    if uses_inference:
        from apps.training.jobs import finetune_base_ref, finetune_model_ref
        from workers.engine.inference import generate

        base_ref, tuned_ref = finetune_base_ref(finetune), finetune_model_ref(finetune)
        answer_base = answer_base or (lambda conversations, **kw: generate(base_ref, conversations, **kw))
        answer_tuned = answer_tuned or (lambda conversations, **kw: generate(tuned_ref, conversations, **kw))
        if count_tokens is None:
            count_tokens = _token_counter(tuned_ref)
    settings = HeldoutSettings(batch_size=evaluation.settings.get("batch_size", DEFAULT_SETTINGS["batch_size"]),
                               max_new_tokens=evaluation.settings.get("max_new_tokens"),
                               judge_rubric=evaluation.settings.get("judge_rubric", ""))
    judge = _judge_fn(evaluation=evaluation, job=evaluation.job) if evaluation.judge_provider else None
    sizes = {group: sum(e["group"] == group for e in asked) for group in HeldoutItem.Group.values}
    reporter.log(f"{sizes['recall']} recall, {sizes['unseen']} unseen-fact and {sizes['control']} control questions; "
                 f"judge: {evaluation.judge_label or 'none'}")
    try:
        # The same system prompt as in training: the example's own, else the fine-tune's system_prompt option.
        result = evaluate_heldout(asked, answer_base, answer_tuned, reporter, settings=settings, judge=judge,
                                  count_tokens=count_tokens)
    finally:
        if uses_inference:
            clear_cache()
    return heldout_evaluation_store(evaluation=evaluation, examples=examples, asked=asked, result=result)


def heldout_evaluation_store(*, evaluation: HeldoutEvaluation, examples: list[VersionExample | None], asked: list[dict],
                             result: dict) -> dict:
    """Save an engine result (workers.engine.evaluate.heldout.evaluate_heldout) as the evaluation's items and results, and its
    summary as finetune.metrics["evaluation"]. Side effects: replaces items and results; updates the FineTune row."""
    def text(value: str) -> str:
        return (value or "").replace("\x00", "")  # an untrained model may write NUL, which PostgreSQL text refuses

    items = []
    for item, example, question in zip(result["items"], examples, asked):
        base, tuned = item["base"], item["tuned"]
        items.append(HeldoutItem(
            evaluation=evaluation, index=item["index"], example=example, group=question["group"],
            system=question.get("system") or "",
            question=question["question"], reference=question["answer"], base_answer=text(item["base_answer"]),
            tuned_answer=text(item["tuned_answer"]), base_exact_match=base["exact_match"],
            tuned_exact_match=tuned["exact_match"], base_token_f1=base["token_f1"], tuned_token_f1=tuned["token_f1"],
            base_rouge_l=base["rouge_l"], tuned_rouge_l=tuned["rouge_l"], base_judge=base["judge"],
            tuned_judge=tuned["judge"], f1_delta=item["f1_delta"], change=item["change"]))
    judge = result["judge"]
    if judge is not None:
        judge = {**judge, "provider": evaluation.judge_label}
    summary = {k: result[k] for k in ("examples", "metric", "base", "tuned", "counts", "groups", "most_improved",
                                      "most_worse", "seconds", "settings")}
    summary["judge"] = judge
    evaluation_metrics = {
        "metric": result["metric"], "base": result["base"]["token_f1"], "tuned": result["tuned"]["token_f1"],
        "exact_match": {"base": result["base"]["exact_match"], "tuned": result["tuned"]["exact_match"]},
        "rouge_l": {"base": result["base"]["rouge_l"], "tuned": result["tuned"]["rouge_l"]},
        "judge": None if judge is None else {"base": judge["base"], "tuned": judge["tuned"], "judged": judge["judged"],
                                             "failed": judge["failed"], "provider": judge["provider"]},
        "examples": result["examples"], "counts": result["counts"], "report": str(evaluation.code),
        "evaluated_at": timezone.now().isoformat(),
        **{group: group_figures(result["groups"].get(group)) for group in HeldoutItem.Group.values},
    }
    with transaction.atomic():
        evaluation.items.all().delete()  # a retried job starts over
        HeldoutItem.objects.bulk_create(items, batch_size=500)
        evaluation.results = summary
        evaluation.save(update_fields=["results"])
        # Locked and re-read: training (a retry) and this job both write the metrics; neither may lose the other's.
        finetune = FineTune.objects.select_for_update().get(pk=evaluation.finetune_id)
        finetune.metrics = {**(finetune.metrics or {}), "evaluation": evaluation_metrics}
        finetune.save(update_fields=["metrics"])
    evaluation.finetune.metrics = finetune.metrics
    # The model card shows these figures first: written again now that they exist.
    from apps.training.jobs import finetune_card_write

    finetune_card_write(finetune=finetune)
    return {"heldout_evaluation": str(evaluation.code), "finetune": str(finetune.code), "examples": result["examples"],
            "metric": result["metric"], "base": result["base"], "tuned": result["tuned"], "counts": result["counts"],
            "judge": evaluation_metrics["judge"]}


# ---------------------------------------------------------------------------------------------- job types

@job_type(Job.Kind.EVALUATE, after=(pipeline_advance, hub_push_follow))
def evaluate_job(job, reporter):
    """Answer a fine-tune's held-out questions with its base and tuned models and score them (queue `gpu`). Side
    effects: see heldout_evaluation_run (report rows replaced, finetune.metrics["evaluation"] written, judge requests
    audited)."""
    return heldout_evaluation_run(evaluation=HeldoutEvaluation.objects.get(pk=job.config["heldout_evaluation"]),
                                  reporter=reporter)
