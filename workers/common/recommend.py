"""Training settings for one model, one dataset and one device, each with the reason it was chosen.

    facts = model_facts_for("pypi/SmolLM2-135M-Instruct")
    advice = recommend(model=facts, method="lora", token_lengths=[...], device=Device(...), cpu_budget_minutes=15)
    advice.options   # TrainConfig options: learning_rate, batch_size, max_length, lora_r, lora_alpha, ...
    advice.reasons   # "3 epochs of 812 examples at batch 8 = 306 steps", ...
    advice.warnings  # "Only 6 pairs: too few to learn from; ..."

The model's catalogue entry gives the learning rate (per method), LoRA rank and alpha, batch and warm-up; the data
gives the maximum length (its 99th percentile length, rounded up to a multiple of 16, capped by the model's
context) and the number of steps (a number of epochs over its examples); on a CPU the pre-flight planner's time per
step decides how many of those steps fit a time budget for the whole run. A person's own choices (`chosen`) are
kept, and what follows from them is worked out again. Pure engine code: no Django, no torch."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from workers.common.architecture import Architecture
from workers.common.catalogue import CATALOGUE, TINY_ARCHITECTURE, TrainingSettings, model_facts, settings_for_size
from workers.common.planner import GIB, Device, Plan, estimate

# Fewer training examples than this cannot teach a model much: the form warns before any training starts.
MIN_EXAMPLES = 20
# A run takes at least this many steps (more passes over a small dataset): facts are learned by repetition.
MIN_STEPS = 30
# Without data yet (the pipeline form, before its documents are read): steps and length for short pairs.
STEPS_WITHOUT_DATA = 120
LENGTH_WITHOUT_DATA = 128
# On a CPU the time budget covers the whole run; this share goes to the training steps, the rest to loading (and
# the first time converting) the model and to measuring it before and after.
TRAIN_SHARE = 0.6
# Tokens a chat template adds around one example: turn markers, and SmolLM2's default system prompt.
TEMPLATE_TOKENS = {"chatml": 30, "gemma": 12}
CHARS_PER_TOKEN = 4


@dataclass
class ModelFacts:
    """What recommending needs to know about a base model, from the catalogue or from a folder's config.json."""

    name: str
    label: str
    settings: TrainingSettings
    architecture: Architecture | None
    parameters: int | None
    context: int | None  # the longest sequence it takes, in tokens
    chat_template: str = "chatml"
    test_only: bool = False
    in_catalogue: bool = True


def model_facts_for(name: str, folder: str | None = None) -> ModelFacts:
    """Facts of a catalogue entry, of a model folder (its config.json), or, for a Hub id nobody here has downloaded,
    the general settings of a model of about a billion parameters."""
    entry = CATALOGUE.get(name)
    if entry is not None:
        architecture = TINY_ARCHITECTURE if entry.test_only else entry.architecture
        return ModelFacts(entry.id, entry.label, entry.recommended, architecture, entry.parameters, entry.max_length,
                          entry.chat_template, entry.test_only)
    facts = model_facts(name, folder or name) if (folder or Path(name).is_dir()) else {}
    architecture = facts.get("architecture")
    parameters = architecture.parameters() if architecture else None
    template = "gemma" if str(facts.get("model_type") or "").startswith("gemma") else "chatml"
    return ModelFacts(name, name, settings_for_size(parameters or 1_000_000_000), architecture, parameters,
                      facts.get("max_length"), template, in_catalogue=False)


def approximate_tokens(characters: int) -> int:
    """Tokens of a text from its length alone (about four characters a token in English), for when no tokenizer is
    at hand."""
    return math.ceil(characters / CHARS_PER_TOKEN)


def example_tokens(characters: int, chat_template: str) -> int:
    """Approximate tokens of one training example (question, answer and system prompt together), template included."""
    return approximate_tokens(characters) + TEMPLATE_TOKENS.get(chat_template, 20)


@dataclass
class Recommendation:
    options: dict  # TrainConfig options (max_steps, not epochs: the number shown is the number trained)
    reasons: list[str]
    warnings: list[str]
    plan: Plan | None
    steps: int
    epochs: float | None  # passes over the examples those steps make; None without examples
    examples: int  # question-answer pairs
    passages: int = 0  # continuation examples made of the documents' own text, trained beside the pairs
    budget_limited: bool = False
    seconds_per_step: float | None = None
    train_seconds: float | None = None
    budget_pairs: int | None = None  # on a CPU: the examples the budget can train for the model's epochs
    device: dict = field(default_factory=dict)

    def summary(self) -> str:
        """One line for the form: peak memory of the device's, time per step and in all; or why there is none."""
        if self.plan is None:
            return "No estimate: this model's shape is known only once a worker loads it."
        parts = [f"Peak memory ~{self.plan.peak_gib:g} GiB of {self.plan.device['memory_bytes'] / GIB:.0f} GiB"]
        if self.seconds_per_step:
            parts.append(f"~{_seconds(self.seconds_per_step)} per step")
            parts.append(f"~{_duration(self.train_seconds)} in all")
        return "; ".join(parts) + f" (on {self.plan.device['name']})."

    def as_dict(self) -> dict:
        values = asdict(self)
        values["plan"] = self.plan.as_dict() if self.plan else None
        values["summary"] = self.summary()
        return values


def recommend(*, model: ModelFacts, method: str = "lora", token_lengths: list[int] | None = None,
              examples: int | None = None, passage_characters: list[int] | None = None, device: Device | None = None,
              backend: str = "trl", cpu_budget_minutes: float | None = None, chosen: dict | None = None) -> Recommendation:
    """Settings for training `model` with `method` on examples of `token_lengths` tokens (approximate lengths do;
    `examples` defaults to their number) on `device`, with the reasons and the warnings a person should see.
    `passage_characters`: the lengths of the document passages trained beside the pairs (workers.engine.train.train cuts each
    into examples that fit the maximum length), when the documents' text is trained on.
    `chosen`: values the person set themselves (batch_size, max_length, max_steps, epochs, learning_rate, lora_r,
    lora_alpha, warmup_ratio, gradient_accumulation), kept as they are."""
    chosen = {k: v for k, v in (chosen or {}).items() if v not in (None, "")}
    if float(chosen.get("epochs", 1)) <= 0:  # 0 epochs means "count steps", as the engine reads it
        del chosen["epochs"]
    lengths = sorted(int(n) for n in (token_lengths or []))
    count = len(lengths) if examples is None else int(examples)
    settings = model.settings
    reasons, warnings = [], []

    if model.test_only:
        warnings.append("The tiny test model is initialised at random: it shows the platform working, not what a "
                        "real model learns. Pick a real model to learn your documents.")
    learning_rate = float(chosen.get("learning_rate") or settings.learning_rate(method))
    if "learning_rate" not in chosen:
        other = ("; full fine-tuning takes " + _number(settings.full_learning_rate)
                 if method != "full" and settings.full_learning_rate != learning_rate else "")
        why = ("it learns only at a high rate, being random" if model.test_only else
               "the setting for this model" if model.in_catalogue else "a general setting for a model outside the catalogue")
        reasons.append(f"Learning rate {_number(learning_rate)} for {_method(method)} on {_short(model.label)} "
                       f"({why}{other}).")
    lora_r = int(chosen.get("lora_r") or settings.lora_r)
    lora_alpha = int(chosen.get("lora_alpha") or settings.lora_alpha)
    if method != "full" and not {"lora_r", "lora_alpha"} & set(chosen):
        reasons.append(f"LoRA rank {lora_r} and alpha {lora_alpha} on every attention and MLP projection.")
    warmup_ratio = float(chosen["warmup_ratio"]) if "warmup_ratio" in chosen else settings.warmup_ratio
    batch_size = int(chosen.get("batch_size") or settings.batch_size)
    accumulation = int(chosen.get("gradient_accumulation") or 1)
    per_step = batch_size * accumulation

    max_length = _max_length(model, lengths, chosen, reasons, warnings)
    # As workers.engine.train.train.passage_pairs cuts them: pieces of about three characters a token of the maximum length.
    piece = max(64, max_length * 3)
    passages = sum(math.ceil(n / piece) for n in (passage_characters or []) if n > 0)

    if count == 0 and token_lengths is not None:
        warnings.append("There are no training examples yet: generate or add pairs first.")
    elif 0 < count < MIN_EXAMPLES:
        warnings.append(f"Only {count} pair{'s' if count != 1 else ''}: too few to learn from; add documents or "
                        f"generate more pairs.")

    # The pre-flight planner: memory and time per step on the device, before anything is queued.
    plan = None
    if model.architecture is not None and device is not None:
        parameters = model.parameters or model.architecture.parameters()
        plan = estimate(architecture=model.architecture, parameters=parameters, method=method,
                        backend=backend if device.kind == "cuda" else "trl", batch_size=batch_size,
                        max_length=max_length, lora_r=lora_r, device=device)
        if not plan.fits:
            warnings.append(f"This run will not fit: {plan.summary()} Try " + "; or ".join(plan.suggestions) + ".")
    if method == "qlora" and device is not None and device.kind != "cuda":
        warnings.append("QLoRA needs an NVIDIA GPU (4-bit weights run on CUDA only); use LoRA on this worker.")
    seconds_per_step = plan.seconds_per_step if plan else None

    described = (f"{count} pairs and {passages} passages of the documents' text" if passages else
                 f"{count} examples")
    steps, epochs, budget_limited, budget_pairs = _steps(
        count=count + passages, described=described, per_step=per_step, batch_size=batch_size, settings=settings,
        chosen=chosen,
        has_data=token_lengths is not None or examples is not None, seconds_per_step=seconds_per_step,
        budget_minutes=cpu_budget_minutes if device is not None and device.kind == "cpu" else None,
        reasons=reasons, warnings=warnings)

    options = {"learning_rate": learning_rate, "batch_size": batch_size, "max_length": max_length, "lora_r": lora_r,
               "lora_alpha": lora_alpha, "warmup_ratio": warmup_ratio, "max_steps": steps, "epochs": 0.0}
    if accumulation > 1:
        options["gradient_accumulation"] = accumulation
    train_seconds = round(steps * seconds_per_step, 1) if seconds_per_step else None
    return Recommendation(options=options, reasons=reasons, warnings=warnings, plan=plan, steps=steps, epochs=epochs,
                          examples=count, passages=passages, budget_limited=budget_limited, seconds_per_step=seconds_per_step,
                          train_seconds=train_seconds, budget_pairs=budget_pairs,
                          device=asdict(device) if device is not None else {})


def _max_length(model: ModelFacts, lengths: list[int], chosen: dict, reasons: list, warnings: list) -> int:
    context = model.context
    if "max_length" in chosen:
        value = int(chosen["max_length"])
        if context and value > context:
            warnings.append(f"The maximum length {value} exceeds this model's context of {context} tokens.")
        return value
    if not lengths:
        value = min(LENGTH_WITHOUT_DATA, context or LENGTH_WITHOUT_DATA)
        reasons.append(f"Maximum length {value} tokens: no examples yet, so room for a short question and answer.")
        return value
    p99 = lengths[max(0, math.ceil(0.99 * len(lengths)) - 1)]
    value = max(32, math.ceil(p99 / 16) * 16)
    if context and value > context:
        longer = sum(n > context for n in lengths)
        warnings.append(f"{longer} example{'s are' if longer != 1 else ' is'} longer than this model's context of "
                        f"{context} tokens and will be cut.")
        reasons.append(f"Maximum length {context} tokens: the model's context (99% of the examples are at most "
                       f"~{p99} tokens).")
        return context
    reasons.append(f"Maximum length {value} tokens: 99% of the {len(lengths)} training examples are at most ~{p99} "
                   f"tokens (about {CHARS_PER_TOKEN} characters a token, chat template included), rounded up to a "
                   f"multiple of 16.")
    return value


def _steps(*, count: int, described: str, per_step: int, batch_size: int, settings: TrainingSettings, chosen: dict,
           has_data: bool, seconds_per_step: float | None, budget_minutes: float | None, reasons: list, warnings: list):
    """(steps, epochs, budget_limited, budget_pairs), counted as the engine counts them (workers.engine.train.train.planned_steps):
    ceil(epochs × ceil(examples / batch)). `count`: all examples of an epoch; `described`: them in words."""
    at_batch = f"at batch {batch_size}" + (f" × {per_step // batch_size} accumulated" if per_step != batch_size else "")
    per_epoch = math.ceil(count / per_step) if count else 0
    budget_seconds = budget_minutes * 60 * TRAIN_SHARE if budget_minutes and seconds_per_step else None
    fit = max(1, math.floor(budget_seconds / seconds_per_step)) if budget_seconds else None
    budget_pairs = math.floor(fit * per_step / settings.epochs) if fit else None

    if "max_steps" in chosen or "epochs" in chosen:
        if "max_steps" in chosen:
            steps = int(chosen["max_steps"])
        else:
            steps = max(1, math.ceil(float(chosen["epochs"]) * per_epoch)) if per_epoch else STEPS_WITHOUT_DATA
        epochs = round(steps / per_epoch, 2) if per_epoch else None
        if epochs is not None:
            reasons.append(f"{steps} steps {at_batch} = {_number(epochs)} epoch{'s' if epochs != 1 else ''} of "
                           f"{described}.")
        if fit is not None and steps > fit:
            warnings.append(f"{steps} steps take ~{_duration(steps * seconds_per_step)} on this CPU, over the "
                            f"{_number(budget_minutes)}-minute budget ({fit} steps fit).")
        return steps, epochs, False, budget_pairs

    if per_epoch:
        epochs = settings.epochs
        steps = max(1, math.ceil(epochs * per_epoch))
        reason = f"{_number(epochs)} epochs of {described} {at_batch} = {steps} steps"
        if steps < MIN_STEPS:
            steps = MIN_STEPS
            epochs = round(steps / per_epoch, 1)
            reason = (f"{MIN_STEPS} steps at least, so that each fact is seen often enough: {_number(epochs)} epochs of "
                      f"{described} {at_batch}")
    else:
        epochs, steps = None, STEPS_WITHOUT_DATA
        reason = (f"{steps} steps: the number of examples is not known yet" if has_data else
                  f"{steps} steps for now: the pairs are made from your documents first")

    if fit is None:
        reasons.append(reason + ".")
        return steps, epochs, False, budget_pairs
    step_time = f"On this CPU a step takes ~{_seconds(seconds_per_step)}"
    share = f"{_duration(budget_seconds)} of the {_number(budget_minutes)}-minute budget is for training; the rest " \
            f"loads the model and measures it"
    if steps <= fit:
        reasons.append(f"{reason}. {step_time}: ~{_duration(steps * seconds_per_step)} of training, within the budget "
                       f"({share}).")
        return steps, epochs, False, budget_pairs
    steps = fit
    if per_epoch:
        epochs = round(steps / per_epoch, 2)
        seen = min(count, steps * per_step)
        coverage = (f", so {_number(epochs)} epochs of {described}" +
                    (f" ({seen} of them seen once)" if seen < count else ""))
    else:
        coverage = ""
    reasons.append(f"{step_time}: {steps} steps fit the {_number(budget_minutes)}-minute budget{coverage} ({share}).")
    if count > (budget_pairs or 0) > 0:
        reasons.append(f"At {_number(settings.epochs)} epochs the budget trains about {budget_pairs} examples.")
    if steps < MIN_STEPS:
        warnings.append(f"Only {steps} steps fit the time budget on this CPU: too few to learn much. Choose a smaller "
                        f"model, a shorter maximum length, or a worker with a GPU.")
    return steps, epochs, True, budget_pairs


def _number(value: float) -> str:
    """1e-2 → "0.01", 5e-4 → "5e-4", 3.0 → "3", 1.25 → "1.25": as a person writes them."""
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    if abs(value) < 1e-3:
        mantissa, exponent = f"{value:.2e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return f"{value:g}"


def _short(label: str) -> str:
    """A model's label without its parenthesis: "SmolLM2 135M Instruct (offline copy, Q4_1 GGUF)" → its name."""
    return label.split(" (")[0]


def _method(method: str) -> str:
    return {"lora": "LoRA", "qlora": "QLoRA", "full": "full fine-tuning"}.get(method, method)


def _seconds(value: float) -> str:
    return f"{value:.2f} s" if value < 1 else f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown time"
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    minutes = seconds / 60
    return f"{minutes:.0f} minutes" if minutes < 120 else f"{minutes / 60:.1f} hours"
