"""The worker side of the prompts app: the body of the prompt-optimization job, which builds the run's two models
(an endpoint, or a local model through workers.engine.inference) and runs workers.engine.promptopt, writing each
candidate as it is scored. workers.tasks.optimize_prompt calls it; the web's side is apps.prompts.services."""
from __future__ import annotations

from django.core.exceptions import ValidationError

from apps.core.jobtypes import job_type
from apps.core.models import Job
from apps.prompts.models import OptimizedPrompt, PromptCandidate
from apps.prompts.services import LOCAL, _config, prompt_examples
from apps.providers.client import provider_client
from apps.providers.models import ExternalCallAudit
from apps.training.jobs import model_choice_ref
from apps.training.model_choices import model_choice_label
from workers.common.errors import ReadableError
from workers.engine.inference import clear_cache, generate
from workers.engine.promptopt import ChatBackend, LocalBackend, optimize_prompt


class _Backends:
    """The run's two models, made in the worker right before use (keys decrypted here), with an audit row for every
    request that leaves the machine."""

    def __init__(self, *, run: OptimizedPrompt):
        self.run, self.clients, self.local = run, [], False

    def make(self, provider: str, local_model: str, **params):
        if provider == LOCAL:
            # Resolved here, in the worker, like every feature's model: a PyPI copy becomes its converted folder.
            ref = model_choice_ref(user=self.run.owner, choice=local_model)
            self.local = True
            return LocalBackend(lambda conversations, **kw: generate(ref, conversations, **kw),
                                label=model_choice_label(local_model), **params)
        client = provider_client(owner=self.run.owner, provider=provider, purpose=ExternalCallAudit.Purpose.OTHER,
                                 job=self.run.job, max_retries=0)
        self.clients.append(client)
        return ChatBackend(client.chat, on_call=client.record, **params)

    def close(self):
        for client in self.clients:
            client.close()
        if self.local:
            clear_cache()  # this gpu worker may train next: leave its memory free


def optimized_prompt_execute(*, run: OptimizedPrompt, reporter) -> dict:
    """Run the optimizer for a run. Side effects: the run's PromptCandidate rows (written as each candidate is scored),
    its best prompt and result; model requests (audited when they go to an endpoint)."""
    if run.source == OptimizedPrompt.Source.VERSION and run.version is None:
        raise ReadableError("The dataset version of this run was deleted.")
    try:
        train, val = prompt_examples(source=run.source, version=run.version, settings=run.settings)
    except ValidationError as exc:
        raise ReadableError(" ".join(exc.messages))
    run.candidates.all().delete()  # a re-run starts over: its candidates are the ones it scores

    def on_candidate(candidate: dict) -> None:
        PromptCandidate.objects.update_or_create(run=run, index=candidate["index"], defaults={
            "parent_index": candidate["parent"], "prompt": candidate["prompt"], "status": candidate["status"],
            "val_score": candidate["val_score"], "val_scores": candidate["val_scores"],
            "minibatch_score": candidate["minibatch_score"],
            "minibatch_parent_score": candidate["minibatch_parent_score"], "calls": candidate["calls"],
            "calls_used": candidate["calls_used"], "note": candidate["note"][:300]})

    backends = _Backends(run=run)
    try:
        task = backends.make(run.task_provider, run.task_local_model, max_tokens=run.settings["max_tokens"],
                             temperature=run.settings["temperature"])
        reflection = backends.make(run.reflection_provider, run.reflection_local_model, temperature=1.0)
        result = optimize_prompt(_config(run=run, train=train, val=val), task, reflection, reporter,
                                 on_candidate=on_candidate)
    finally:
        backends.close()
    run.best_prompt = result["best_prompt"]
    run.result = {k: v for k, v in result.items() if k != "candidates"}
    run.save(update_fields=["best_prompt", "result"])
    return {k: result[k] for k in ("best_index", "best_val_score", "seed_val_score", "calls_used", "budget", "stopped")}


@job_type(Job.Kind.OPTIMIZE_PROMPT)
def optimize_prompt_job(job, reporter):
    """Evolve a system prompt with reflective prompt evolution (queue `default` for endpoints, `gpu` when a model is
    local). Side effects: see optimized_prompt_execute (candidate rows, the best prompt)."""
    return optimized_prompt_execute(run=OptimizedPrompt.objects.get(pk=job.config["optimized_prompt"]), reporter=reporter)
