"""Writes of the hub app about publishing: the user's publishing preferences, the evaluation gate, and push jobs
(started here, run by its job type, apps.hub.jobs, on queue `default`), automatic pushes after training included.
The user's connection (tokens, OAuth) is in apps.hub.connections; the Hub client that pushes is apps.hub.publish.

A push job's config names the fine-tune and the connection by id; the token itself never enters a job, an event,
a page or a log line."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.core.models import Job, JobEvent
from apps.core.services import job_create, job_event_add
from apps.evaluation.heldout.services import heldout_evaluation_expected
from apps.hub.connections import RECONNECT_MESSAGE, ReconnectRequired
from apps.hub.models import HubConnection, HubPreferences
from apps.hub.selectors import ARTIFACTS, hub_connection_get, hub_preferences_get, hub_push_whats
from apps.training.models import FineTune
from apps.training.exports import finetune_has_files

# A {field} of a repository name pattern: only {name}, {date} and {id} are known.
_PATTERN_FIELD = re.compile(r"\{([^{}]*)\}")
_REPO_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?")


class PublishBlocked(ValidationError):
    """The evaluation gate refuses to publish (the model is worse and the user's setting blocks that)."""


class ConfirmationRequired(ValidationError):
    """The model is worse than its base: publishing needs an explicit confirmation."""


def hub_preferences_update(*, owner, **fields) -> HubPreferences:
    """Save the user's publishing preferences (any of auto_push, repo_pattern, auto_private, gate_threshold,
    block_worse). Raises ValidationError for a pattern that cannot make a repository name or a bad threshold."""
    preferences = hub_preferences_get(user=owner)
    allowed = {"auto_push", "repo_pattern", "auto_private", "gate_threshold", "block_worse"}
    for name, value in fields.items():
        if name in allowed and value is not None:
            setattr(preferences, name, value)
    preferences.repo_pattern = (preferences.repo_pattern or "").strip() or "{name}"
    hub_repo_name_render(pattern=preferences.repo_pattern, name="example-model", code="0123abcd")  # validates it
    try:
        threshold = float(preferences.gate_threshold)
    except (TypeError, ValueError):
        raise ValidationError("The threshold must be a number, such as 0.02.")
    if not 0.0 <= threshold <= 1.0:
        raise ValidationError("The threshold must be between 0 and 1 (a difference in the evaluation's metric).")
    preferences.gate_threshold = threshold
    preferences.save()
    return preferences


# ------------------------------------------------------------------------------------------------ the gate

@dataclass(frozen=True)
class PublishGate:
    """How the tuned model compares with its base on the held-out evaluation, and what that means for publishing."""

    evaluated: bool
    metric: str = ""
    base: float | None = None
    tuned: float | None = None
    threshold: float = 0.0
    block_worse: bool = False

    @property
    def worse(self) -> bool:
        return self.evaluated and self.tuned < self.base - self.threshold

    @property
    def blocked(self) -> bool:
        return self.worse and self.block_worse

    @property
    def needs_confirmation(self) -> bool:
        return self.worse and not self.block_worse

    @property
    def message(self) -> str:
        if not self.evaluated:
            return "Not evaluated: there is no held-out evaluation of this model yet, so nothing says whether it beats its base."
        comparison = (f"On the held-out evaluation ({self.metric}) the tuned model scores {self.tuned:.3f} against "
                      f"{self.base:.3f} for its base")
        if not self.worse:
            return f"{comparison}."
        allowed = f" (more than the allowed {self.threshold:g} below it)" if self.threshold else ""
        if self.block_worse:
            return (f"{comparison}: it is worse{allowed}, and your settings block publishing of worse models. Change "
                    "that setting on the Hugging Face page to publish it anyway.")
        return f"{comparison}: it is worse{allowed}. Confirm that you want to publish it anyway."

    def as_dict(self) -> dict:
        return {**asdict(self), "worse": self.worse, "blocked": self.blocked,
                "needs_confirmation": self.needs_confirmation, "message": self.message}


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def hub_publish_gate(*, finetune: FineTune, confirmed: bool = False, enforce: bool = False) -> PublishGate:
    """The evaluation gate, the one place every way of publishing (page, API, automatic push) goes through.

    Reads `finetune.metrics["evaluation"]` ({"metric", "base", "tuned", ...}); when it is absent or incomplete the
    model is "not evaluated", which is shown but never blocks. With enforce=True, raises PublishBlocked when the
    model is worse than its base by more than the owner's threshold and their setting blocks that, and
    ConfirmationRequired when it is worse and `confirmed` is False."""
    preferences = hub_preferences_get(user=finetune.owner)
    evaluation = (finetune.metrics or {}).get("evaluation")
    base = tuned = None
    if isinstance(evaluation, dict):
        base, tuned = _number(evaluation.get("base")), _number(evaluation.get("tuned"))
    if base is None or tuned is None:
        gate = PublishGate(evaluated=False, threshold=preferences.gate_threshold, block_worse=preferences.block_worse)
    else:
        gate = PublishGate(evaluated=True, metric=str(evaluation.get("metric") or "score"), base=base, tuned=tuned,
                           threshold=preferences.gate_threshold, block_worse=preferences.block_worse)
    if enforce and gate.blocked:
        raise PublishBlocked(gate.message)
    if enforce and gate.needs_confirmation and not confirmed:
        raise ConfirmationRequired(gate.message)
    return gate


# ------------------------------------------------------------------------------------------------ pushing

def hub_repo_name_render(*, pattern: str, name: str, code: str = "", day=None) -> str:
    """A repository name from a pattern such as "{name}-{date}"; ValidationError when it cannot make a valid one.

    The fields are replaced as plain text. str.format would also obey format specifications written by the user:
    "{name:>100000000}" pads to 100 MB, "{name:>1e15}" fails with an unexpected error."""
    safe = re.sub(r"-{2,}", "-", re.sub(r"[^A-Za-z0-9._-]+", "-", name)).strip("-.") or "model"
    values = {"name": safe, "date": (day or timezone.localdate()).isoformat(), "id": code.replace("-", "")[:8]}
    unknown = [field for field in _PATTERN_FIELD.findall(pattern) if field not in values]
    outside = _PATTERN_FIELD.sub("", pattern)
    if unknown or "{" in outside or "}" in outside:
        shown = f" (not “{{{unknown[0][:40]}}}”)" if unknown else ""
        raise ValidationError("The repository name pattern may only use {name}, {date} and {id}, such as "
                              f"“{{name}}-{{date}}”{shown}.")
    return hub_repo_name_clean(name=_PATTERN_FIELD.sub(lambda match: values[match.group(1)], pattern))


def hub_repo_name_clean(*, name: str) -> str:
    """A repository name (without namespace) as the Hub accepts it; ValidationError otherwise."""
    name = (name or "").strip()
    if not _REPO_NAME.fullmatch(name) or "--" in name or ".." in name or name.endswith(".git"):
        raise ValidationError(f"“{name[:100]}” is not a valid repository name: use letters, digits, “-”, “_” and "
                              "“.”, at most 96 characters, starting with a letter or digit.")
    return name


def hub_repo_id_clean(*, connection: HubConnection, repo: str) -> str:
    """"name" or "namespace/name" as a full repository id, in the connected account's namespace by default."""
    repo = (repo or "").strip().strip("/")
    if repo.startswith(("http://", "https://")):
        repo = repo.split("://", 1)[1].split("/", 1)[-1]  # a pasted repository URL
    parts = repo.split("/")
    if not repo or len(parts) > 2:
        raise ValidationError("Give the repository as a name, or as “namespace/name”.")
    namespace = parts[0] if len(parts) == 2 else connection.username
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}", namespace):
        raise ValidationError(f"“{namespace[:100]}” is not a valid user or organization name.")
    return f"{namespace}/{hub_repo_name_clean(name=parts[-1])}"


def _default_artifact(finetune: FineTune) -> str:
    return "model" if finetune.method == FineTune.Method.FULL else "adapter"


def hub_push_start(*, finetune: FineTune, repo: str, what: str = "", private: bool = True, mode: str = "new",
                   confirm_worse: bool = False, automatic: bool = False) -> Job:
    """Queue a push of a fine-tune's output (adapter or full model, merged model, or GGUF files) with a fresh model
    card to a repository of the owner's connected account. Runs on queue `default`.

    Side effects: creates a PUSH Job (config: fine-tune and connection ids, repository, what, visibility, mode) and
    sends its task once the transaction commits. Raises ValidationError for an unfinished model, a missing
    connection, an output that does not exist, a bad name or mode; PublishBlocked or ConfirmationRequired from the
    evaluation gate."""
    publishable = hub_push_whats(finetune=finetune)
    if not publishable and not finetune_has_files(finetune=finetune):
        raise ValidationError("This model has not finished training yet; publish it once it has.")
    connection = hub_connection_get(user=finetune.owner)
    if connection is None:
        raise ValidationError("Connect your Hugging Face account first, on the Hugging Face page.")
    if not connection.is_usable:
        raise ReconnectRequired(RECONNECT_MESSAGE)
    what = what or _default_artifact(finetune)
    if what not in ARTIFACTS:
        raise ValidationError(f"Choose what to publish among: {', '.join(ARTIFACTS)}.")
    if what not in publishable:
        raise ValidationError(f"This model has no {ARTIFACTS[what].lower()} to publish"
                              f"{' yet: make it under Outputs first' if what in ('merged', 'gguf') else ''}.")
    if mode not in ("new", "existing", "any"):
        raise ValidationError("Choose whether to create a new repository or push to an existing one.")
    repo_id = hub_repo_id_clean(connection=connection, repo=repo)
    gate = hub_publish_gate(finetune=finetune, confirmed=confirm_worse, enforce=True)
    config = {"finetune": finetune.pk, "connection": connection.pk, "repo_id": repo_id, "what": what,
              "private": bool(private), "mode": mode, "automatic": automatic,
              "gate": {"evaluated": gate.evaluated, "worse": gate.worse, "confirmed": bool(confirm_worse and gate.worse)}}
    return job_create(owner=finetune.owner, kind=Job.Kind.PUSH, queue="default", config=config,
                      title=f"Push {finetune.name} to {repo_id}")


# ------------------------------------------------------------------------------------------ automatic push

def _train_job_to_push(job: Job) -> Job | None:
    """The training job whose model may be pushed now, or None. The push waits for the automatic held-out evaluation
    when the training held examples out, so that the publishing gate sees how the model compares with its base; an
    evaluation that failed lets the push go ahead as "not evaluated" (the gate never blocks those). Without held-out
    examples the push follows the training at once."""
    if job.kind == Job.Kind.TRAIN and job.status == Job.Status.SUCCEEDED:
        finetune = FineTune.objects.filter(job=job).first()
        return None if finetune is None or heldout_evaluation_expected(finetune=finetune) else job
    if (job.kind == Job.Kind.EVALUATE and job.config.get("automatic")
            and job.status in (Job.Status.SUCCEEDED, Job.Status.FAILED)):
        finetune = FineTune.objects.filter(pk=job.config.get("finetune")).select_related("job").first()
        if finetune is not None and finetune.job is not None and finetune.job.status == Job.Status.SUCCEEDED:
            return finetune.job
    return None


def hub_push_follow(job: Job) -> None:
    """What follows a training and its automatic held-out evaluation (an `after` of their job types): the automatic
    push of the model, when its owner turned it on (see _train_job_to_push for when)."""
    train_job = _train_job_to_push(job)
    if train_job is not None:
        hub_auto_push(train_job=train_job)


def hub_auto_push(*, train_job: Job) -> Job | None:
    """After a training succeeded: queue a push when its owner turned the automatic push on. What happened (queued,
    or why not) is added to the training job's log; the gate applies as for any push, without confirmation, so a
    model worse than its base is not pushed automatically."""
    preferences = HubPreferences.objects.filter(owner=train_job.owner, auto_push=True).first()
    finetune = FineTune.objects.filter(job=train_job).first()
    if preferences is None or finetune is None:
        return None
    try:
        repo = hub_repo_name_render(pattern=preferences.repo_pattern, name=finetune.name, code=str(finetune.code))
        job = hub_push_start(finetune=finetune, repo=repo, private=preferences.auto_private, mode="any",
                             automatic=True)
    except ValidationError as exc:
        job_event_add(job=train_job, type=JobEvent.Type.LOG,
                      data={"line": f"Automatic push to Hugging Face skipped: {' '.join(exc.messages)}"})
        return None
    job_event_add(job=train_job, type=JobEvent.Type.LOG,
                  data={"line": f"Automatic push to Hugging Face queued: {job.config['repo_id']}", "push_job": str(job.code)})
    return job
