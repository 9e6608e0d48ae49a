"""Writes of the held-out evaluation: after every training whose dataset version set examples aside, the base and the
tuned model answer those questions (workers.heldout) and the fine-tune records how much better the tuned one got.

    heldout_evaluation_start(finetune=..., judge_provider="auto")   # queue a run (the page's and the API's re-run)
    heldout_evaluation_after_training(train_job=...)                 # the automatic run (apps.evaluation.receivers)
    heldout_evaluation_run(evaluation=..., reporter=...)             # the work, in the `gpu` worker (workers.tasks)

The questions are the version's recall phrasings (new phrasings of trained facts) and unseen facts, and a shipped
control set of general questions (what the tuning cost). The summary goes to `finetune.metrics["evaluation"]`
({"metric": "token_f1", "base", "tuned", "exact_match", "rouge_l", "judge", "examples", "report", and per group
"recall", "unseen", "control": {"n", "token_f1": {"base", "tuned"}, "exact_match": {...}} or None}), which the
model page, the card and the publishing gate (apps.hub.services.hub_publish_gate) read."""
from __future__ import annotations

import logging

from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.core.models import Job, JobEvent
from apps.core.services import job_create, job_event_add
from apps.datasets.models import VersionExample
from apps.evaluation.models import HeldoutEvaluation, HeldoutItem
from apps.evaluation.selectors import group_figures
from apps.training.models import FineTune
from apps.training.services import finetune_system_prompt
from workers.errors import ReadableError

logger = logging.getLogger(__name__)

AUTO = "auto"  # the judge choice "whatever this user has": their first saved provider, else the site's endpoint
NO_JUDGE = ""
DEFAULT_SETTINGS = {"batch_size": 16, "max_new_tokens": None, "scrub_pii": True}


# ------------------------------------------------------------------------------------------------ choices

def heldout_judge_auto(*, owner) -> str:
    """The judge an automatic evaluation uses: the owner's first saved chat provider (their own choice of endpoint
    comes first), else the site's default endpoint (settings GARAGE_LLM_*), else none."""
    from apps.providers.selectors import provider_credential_list_for_user, site_default_endpoint
    from apps.providers.services import SITE_DEFAULT

    credential = provider_credential_list_for_user(user=owner).first()
    if credential is not None:
        return str(credential.code)
    return SITE_DEFAULT if site_default_endpoint() is not None else NO_JUDGE


def heldout_judge_clean(*, owner, judge_provider: str | None) -> str:
    """A judge choice as stored: "" (no judge), "default" (the site's endpoint) or the code of one of the owner's
    providers; "auto" picks as heldout_judge_auto does. Raises ValidationError when the site has no default and
    Http404 for a provider that is not the owner's."""
    from apps.providers.services import provider_choice_validate

    choice = str(judge_provider if judge_provider is not None else AUTO).strip()
    if choice in ("", "none"):
        return NO_JUDGE
    if choice == AUTO:
        return heldout_judge_auto(owner=owner)
    return provider_choice_validate(owner=owner, provider=choice)


def _judge_label(*, owner, choice: str) -> str:
    from apps.providers.selectors import provider_credential_get_for_user, site_default_endpoint
    from apps.providers.services import SITE_DEFAULT

    if not choice:
        return ""
    if choice == SITE_DEFAULT:
        default = site_default_endpoint()
        return f"the site's default endpoint ({default['model']})" if default else "the site's default endpoint"
    return str(provider_credential_get_for_user(user=owner, code=choice))


def heldout_settings_clean(raw: dict | None) -> dict:
    """Batch size and token budget chosen by the user (both optional); readable ValidationError otherwise."""
    values = dict(DEFAULT_SETTINGS)
    for name in ("batch_size", "max_new_tokens"):
        value = (raw or {}).get(name)
        if value in (None, ""):
            continue
        try:
            number = float(value)
            if not number.is_integer():
                raise ValueError(value)
            values[name] = int(number)
        except (TypeError, ValueError, OverflowError):
            raise ValidationError(f"The {name.replace('_', ' ')} must be a whole number.")
    if "scrub_pii" in (raw or {}):
        values["scrub_pii"] = raw["scrub_pii"] in (True, 1, "1", "true", "True", "on", "yes")
    from workers.heldout import HeldoutSettings

    try:
        HeldoutSettings(batch_size=values["batch_size"], max_new_tokens=values["max_new_tokens"]).validate()
    except ReadableError as exc:
        raise ValidationError(str(exc))
    return values


# ------------------------------------------------------------------------------------------------ starting

# Which report group a version's held-out example belongs to.
GROUP_OF_SPLIT = {VersionExample.Split.RECALL: HeldoutItem.Group.RECALL, VersionExample.Split.HELDOUT: HeldoutItem.Group.UNSEEN}


def heldout_examples(*, finetune: FineTune):
    """The fine-tune's held-out examples (recall phrasings and unseen facts set aside at freeze time), in the
    version's order."""
    if finetune.version_id is None:
        return VersionExample.objects.none()
    return (finetune.version.examples.filter(split__in=VersionExample.EVALUATION_SPLITS)
            .select_related("document", "chunk__document").order_by("position"))


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
    from workers.heldout import load_control_set  # engine code: imported where the worker runs it, as below

    control = load_control_set() if django_settings.GARAGE_EVAL_CONTROL else []
    # The control questions are asked as they come, with the fine-tune's system prompt: the way its users ask.
    engine += [{**c, "system": finetune_system_prompt(finetune)} for c in control]
    return chosen + [None] * len(control), engine


def heldout_evaluation_expected(*, finetune: FineTune) -> bool:
    """Whether the end of this fine-tune's training queues a held-out evaluation: when the training held examples
    out (it records how many in its metrics). The automatic push to the Hub waits for that evaluation."""
    return finetune.version_id is not None and bool((finetune.metrics or {}).get("heldout_examples"))


def heldout_evaluation_start(*, finetune: FineTune, judge_provider: str | None = AUTO, settings: dict | None = None,
                             automatic: bool = False, parent: Job | None = None) -> HeldoutEvaluation:
    """Queue a held-out evaluation of a trained fine-tune on the `gpu` queue.

    Side effects: a HeldoutEvaluation row and its EVALUATE job. Raises ValidationError when the model has not
    finished training, its version held nothing out, or an evaluation of it is already waiting or running."""
    if not finetune.artifact:
        raise ValidationError(f"The model “{finetune.name}” has not finished training yet.")
    if not heldout_examples(finetune=finetune).exists():
        raise ValidationError("This model's dataset version has no held-out examples to evaluate on. Versions of at "
                              "least five examples set a share aside when they are frozen.")
    if HeldoutEvaluation.objects.filter(finetune=finetune, job__status__in=[Job.Status.QUEUED, Job.Status.RUNNING]).exists():
        raise ValidationError("An evaluation of this model is already waiting or running; its progress shows on its report.")
    choice = heldout_judge_clean(owner=finetune.owner, judge_provider=judge_provider)
    values = heldout_settings_clean(settings)
    with transaction.atomic():
        evaluation = HeldoutEvaluation.objects.create(
            owner=finetune.owner, finetune=finetune, automatic=automatic, judge_provider=choice,
            judge_label=_judge_label(owner=finetune.owner, choice=choice)[:300], settings=values)
        evaluation.job = job_create(owner=finetune.owner, kind=Job.Kind.EVALUATE, queue="gpu",
                                    title=f"Held-out evaluation of {finetune.name}"[:200],
                                    config={"heldout_evaluation": evaluation.pk, "finetune": finetune.pk,
                                            "automatic": automatic}, parent=parent)
        evaluation.save(update_fields=["job"])
    return evaluation


def heldout_evaluation_after_training(*, train_job: Job, parent: Job | None = None) -> HeldoutEvaluation | None:
    """After a training succeeded: queue its automatic held-out evaluation when it held examples out (as a step of
    `parent`, a pipeline, when given). What happened is added to the training job's log. Side effects: see
    heldout_evaluation_start."""
    finetune = FineTune.objects.filter(job=train_job).select_related("version").first()
    if finetune is None or not heldout_evaluation_expected(finetune=finetune):
        return None
    try:
        evaluation = heldout_evaluation_start(finetune=finetune, automatic=True, parent=parent)
    except ValidationError as exc:
        job_event_add(job=train_job, type=JobEvent.Type.LOG,
                      data={"line": f"Held-out evaluation not started: {' '.join(exc.messages)}"})
        return None
    job_event_add(job=train_job, type=JobEvent.Type.LOG,
                  data={"line": f"Held-out evaluation queued ({finetune.metrics['heldout_examples']} questions)",
                        "heldout_evaluation": str(evaluation.code)})
    return evaluation


# ------------------------------------------------------------------------------------------------ running

def _judge_fn(*, evaluation: HeldoutEvaluation, job: Job | None):
    """complete_many for the judge: the chosen endpoint, every request audited, personal data scrubbed first unless
    the settings say otherwise. The key is decrypted here, in the worker, and only when the judge is first used."""
    from apps.providers.models import ExternalCallAudit
    from apps.providers.services import audit_hook, pii_scrubber_for_user, provider_endpoint_resolve

    owner = evaluation.owner

    def complete_many(conversations):
        endpoint = provider_endpoint_resolve(owner=owner, provider=evaluation.judge_provider)  # ReadableError: counted
        record = audit_hook(owner=owner, endpoint=endpoint, purpose=ExternalCallAudit.Purpose.JUDGE, job=job)
        replacements = [0] * len(conversations)
        if evaluation.settings.get("scrub_pii", True):
            conversations, replacements = pii_scrubber_for_user(user=owner).scrub_conversations(conversations)
        with endpoint.client() as client:
            return client.complete_many(conversations, on_result=lambda r: record(r, replacements[r.index]),
                                        temperature=0, max_tokens=64)

    return complete_many


def _token_counter(ref):
    """Token counts in the tuned model's tokenizer (saved beside the adapter by training), for the answer budget."""
    from pathlib import Path

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
    workers.inference.generate unless answer functions are given).

    Side effects: replaces the evaluation's items and results, writes finetune.metrics["evaluation"], sends the
    questions and answers to the judge endpoint when one was chosen (one audit row per request), and unloads the
    models afterwards so that the next training on this worker finds the GPU memory free."""
    from workers.heldout import HeldoutSettings, evaluate_heldout

    finetune = evaluation.finetune
    examples, asked = heldout_evaluation_examples(finetune=finetune)
    if not finetune.artifact:
        raise ReadableError("This model has no trained files any more; train it again to evaluate it.")
    uses_inference = answer_base is None or answer_tuned is None
    if uses_inference:
        from apps.training.selectors import finetune_base_ref, finetune_model_ref
        from workers.inference import generate

        base_ref, tuned_ref = finetune_base_ref(finetune), finetune_model_ref(finetune)
        answer_base = answer_base or (lambda conversations, **kw: generate(base_ref, conversations, **kw))
        answer_tuned = answer_tuned or (lambda conversations, **kw: generate(tuned_ref, conversations, **kw))
        if count_tokens is None:
            count_tokens = _token_counter(tuned_ref)
    settings = HeldoutSettings(batch_size=evaluation.settings.get("batch_size", DEFAULT_SETTINGS["batch_size"]),
                               max_new_tokens=evaluation.settings.get("max_new_tokens"))
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
            from workers.inference import clear_cache

            clear_cache()
    return heldout_evaluation_store(evaluation=evaluation, examples=examples, asked=asked, result=result)


def heldout_evaluation_store(*, evaluation: HeldoutEvaluation, examples: list[VersionExample | None], asked: list[dict],
                             result: dict) -> dict:
    """Save an engine result (workers.heldout.evaluate_heldout) as the evaluation's items and results, and its
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
    from apps.training.exports import finetune_card_write

    finetune_card_write(finetune=finetune)
    return {"heldout_evaluation": str(evaluation.code), "finetune": str(finetune.code), "examples": result["examples"],
            "metric": result["metric"], "base": result["base"], "tuned": result["tuned"], "counts": result["counts"],
            "judge": evaluation_metrics["judge"]}
