"""The worker side of the hub: a push job, run where the owner's token is decrypted (never in the web process)."""
from __future__ import annotations

import json

from django.core.exceptions import ValidationError

from apps.core.jobtypes import job_type
from apps.core.models import Job
from apps.hub.models import HubConnection
from apps.hub.publish import PushConfig, push
from apps.hub.selectors import ARTIFACTS, hub_push_whats
from apps.hub.connections import hub_connection_token
from apps.training.exports import finetune_card_facts, finetune_file_stem
from apps.training.model_choices import tuned_model_export_files, tuned_model_unpack
from apps.training.models import FineTune
from workers.common.errors import ReadableError
from workers.common.exports import CARD, GGUF_TYPES, base_portable_name
from workers.engine.export import model_card


def _adapter_config_for_hub(path: str, base_model: str) -> str:
    """adapter_config.json names its base by the path it had on this server; on the Hub it should name the base
    model the user chose (a Hub id for real models), and never reveal this server's folders."""
    with open(path, encoding="utf-8") as handle:
        config = json.load(handle)
    config["base_model_name_or_path"] = base_model
    return json.dumps(config, indent=2, sort_keys=True)


# Files of the training folder that describe the run on this server rather than the model.
_SKIPPED = {CARD, "training_args.bin"}


def hub_push_files(*, finetune: FineTune, what: str) -> dict[str, str]:
    """The files a push of `what` uploads (path in the repository -> file on this worker), the model card left out:
    every push writes a fresh one. A model trained, or an export made, on another machine is fetched from the bucket
    first. Empty when this model cannot publish `what` (apps.hub.selectors.hub_push_whats)."""
    if what not in hub_push_whats(finetune=finetune):
        return {}
    if what in ("adapter", "model"):
        folder = tuned_model_unpack(finetune)
        return {p.relative_to(folder).as_posix(): str(p) for p in sorted(folder.rglob("*"))
                if p.is_file() and p.name not in _SKIPPED}
    kinds = ["merged"] if what == "merged" else [kind for kind in GGUF_TYPES if kind in (finetune.outputs or {})]
    return {name: str(path) for kind in kinds for name, path in tuned_model_export_files(finetune, kind).items()}


def hub_push_run(*, job: Job, reporter) -> dict:
    """Run a push job (what the push job type runs): decrypt the owner's token here, in the worker, refresh it
    if needed, write the model card and upload everything.

    Side effects: requests to the Hub (a repository created, one commit). Raises ReadableError for everything the
    user can act on (connection gone or expired, output gone, rate limit, permission, name taken, network)."""
    config = job.config
    finetune = FineTune.objects.filter(pk=config["finetune"], owner=job.owner).first()
    if finetune is None:
        raise ReadableError("The model to publish was deleted.")
    connection = HubConnection.objects.filter(pk=config["connection"], owner=job.owner).first()
    if connection is None:
        raise ReadableError("Your Hugging Face account was disconnected after this push was queued. Connect it "
                            "again and start the push again.")
    reporter.phase("checking", f"Signing in to {connection.endpoint} as {connection.username}")
    try:
        token = hub_connection_token(connection=connection)
    except ValidationError as exc:
        raise ReadableError(" ".join(exc.messages))
    files = hub_push_files(finetune=finetune, what=config["what"])
    if not files:
        raise ReadableError(f"This model's {ARTIFACTS.get(config['what'], 'output').lower()} is no longer there to publish.")
    facts = finetune_card_facts(finetune)
    card = model_card(facts)
    staged = dict(files)
    adapter_config = staged.pop("adapter_config.json", None)
    push_config = PushConfig(endpoint=connection.endpoint, token=token, repo_id=config["repo_id"], files=staged,
                             card=card, private=config["private"], mode=config["mode"],
                             commit_message=f"Upload {ARTIFACTS[config['what']].lower()} of {finetune.name} from Gemma Garage")
    if adapter_config is not None:
        push_config.texts = {"adapter_config.json": _adapter_config_for_hub(adapter_config,
                                                                             base_portable_name(finetune.base_model))}
    result = push(push_config, reporter)
    return {**result, "finetune": str(finetune.code), "what": config["what"], "stem": finetune_file_stem(finetune)}


@job_type(Job.Kind.PUSH)
def push_job(job, reporter):
    """Push a fine-tune's output with its model card to the Hugging Face Hub (queue `default`). The owner's token is
    decrypted here, in the worker. Side effects: see hub_push_run."""
    return hub_push_run(job=job, reporter=reporter)
