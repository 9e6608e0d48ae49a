"""Writes of the held-out evaluation: after every training whose dataset version set examples aside, the base and the
tuned model answer those questions (workers.engine.evaluate.heldout) and the fine-tune records how much better the tuned one got.

    heldout_evaluation_start(finetune=..., judge_provider="auto")   # queue a run (the page's and the API's re-run)
    heldout_evaluation_after_training(train_job=...)                 # the automatic run (apps.evaluation.receivers)
    apps.evaluation.heldout.jobs.heldout_evaluation_run(evaluation=..., reporter=...)  # the work, in the `gpu` worker

The questions are the version's recall phrasings (new phrasings of trained facts) and unseen facts, and a shipped
control set of general questions (what the tuning cost). The summary goes to `finetune.metrics["evaluation"]`
({"metric": "token_f1", "base", "tuned", "exact_match", "rouge_l", "judge", "examples", "report", and per group
"recall", "unseen", "control": {"n", "token_f1": {"base", "tuned"}, "exact_match": {...}} or None}), which the
model page, the card and the publishing gate (apps.hub.pushes.hub_publish_gate) read."""
from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.core.models import Job, JobEvent
from apps.core.options import options_clean
from apps.core.services import job_create, job_event_add
from apps.datasets.models import VersionExample
from apps.evaluation.models import HeldoutEvaluation, HeldoutItem
from apps.training.models import FineTune
from workers.common.errors import ReadableError
from workers.common.evaluation import HeldoutSettings
from workers.common.options import Bool, Int, Text

logger = logging.getLogger(__name__)

AUTO = "auto"  # the judge choice "whatever this user has": their first saved provider, else the site's endpoint
NO_JUDGE = ""
DEFAULT_SETTINGS = {"batch_size": 16, "max_new_tokens": None, "scrub_pii": True}
# The settings as one schema (workers.common.options); HeldoutSettings.validate checks the numbers' ranges and the
# rubric's length with its own messages, which name them as these labels do.
SETTINGS = {"batch_size": Int(DEFAULT_SETTINGS["batch_size"], label="the batch size"),
            "max_new_tokens": Int(DEFAULT_SETTINGS["max_new_tokens"], label="the maximum number of new tokens"),
            "scrub_pii": Bool(DEFAULT_SETTINGS["scrub_pii"], label="the scrub_pii switch"),
            "judge_rubric": Text("", strip=False, label="the judge's rubric")}


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
    """Batch size, token budget and the judge's rubric chosen by the user (all optional; a rubric is stored only when
    given, at most workers.common.judge.MAX_RUBRIC characters); readable ValidationError otherwise, also for a setting
    that is not one of SETTINGS."""
    values = options_clean(SETTINGS, raw)
    checked = HeldoutSettings(batch_size=values["batch_size"], max_new_tokens=values["max_new_tokens"],
                              judge_rubric=values.pop("judge_rubric"))
    try:
        checked.validate()
    except ReadableError as exc:
        raise ValidationError(str(exc))
    if checked.judge_rubric:
        values["judge_rubric"] = checked.judge_rubric
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


def heldout_evaluation_follow(job: Job) -> None:
    """What follows a training (an `after` of its job type): its automatic held-out evaluation once it succeeded. A
    training inside a pipeline leaves it to the pipeline, which runs the evaluation as its own last step."""
    if job.status == Job.Status.SUCCEEDED and job.parent_id is None:
        heldout_evaluation_after_training(train_job=job)


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
