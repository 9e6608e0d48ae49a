from django import forms
from django.core.exceptions import ValidationError
from django.templatetags.static import static
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from apps.training.model_choices import GROUPS, tuned_model_choices
from apps.core.forms import MultipleFileField
from apps.training.models import FineTune
from apps.training.selectors import FINETUNE_PREFIX, model_choice_finetune
from apps.prompts.selectors import saved_prompt_apply, saved_prompt_choices
from apps.training.plans import catalogue_choices_for_form, training_plan
from apps.training.services import BACKENDS, DEFAULTS, TEXTS
from apps.training.widgets import ModelPicker
from workers.common.recommend import model_facts_for


# A line of the plan: a span shown as a block, which a <p> may hold (a <div> or a list would end the paragraph).
BLOCK = '<span class="{}" style="display:block; margin-top:4px">{}</span>'


class TrainingModelPicker(ModelPicker):
    """The training forms' base model: the model picker (installed, from the Hub when the server is online, the test
    model; each with its size and expected time per step on the worker's device; "Other…" for any Hub id or model
    folder), and the user's own tuned models, to train one further from where it ended.

    Below it, the plan of the run (training/plan.js keeps it current through /api/v1/plan/): the recommended
    settings' reasons, the warnings, and the planner's estimate. `groups` and `plan` are set by the form."""

    plan: dict | None = None
    scope: dict = {}  # {"version": code} or {"dataset": code}: the data the plan is for

    def render(self, name, value, attrs=None, renderer=None):
        base_id = (attrs or {}).get("id") or f"id_{name}"
        return format_html("{}{}", super().render(name, value, attrs, renderer), self.render_plan(base_id))

    def render_plan(self, base_id: str):
        # Phrasing content only (spans shown as blocks): the form may render this inside a <p> (as_p).
        plan = self.plan or {}
        scope = "".join(format_html(' data-{}="{}"', key, code) for key, code in self.scope.items())
        lines = lambda values: format_html_join("", BLOCK.format("plan-line", "{}"), ((v,) for v in values))  # noqa: E731
        return format_html(
            '<span class="training-plan card small" style="display:block; margin:8px 0" id="{}-plan" '
            'data-role="training-plan" data-url="{}"{} aria-live="polite">'
            '<strong style="display:block" data-role="plan-summary">{}</strong>'
            '<span class="plan-warnings" style="display:block; color:var(--warn)" data-role="plan-warnings">{}</span>'
            '<span class="plan-reasons" style="display:block" data-role="plan-reasons">{}</span>'
            '<span class="muted" style="display:block" data-role="plan-notes">{}</span></span>'
            '<script src="{}" defer></script>',
            base_id, reverse("training-plan"), mark_safe(scope), plan.get("summary", ""),
            lines(plan.get("warnings", [])), lines(plan.get("reasons", [])), " ".join(plan.get("notes", [])),
            static("training/plan.js"))


class TrainingOptionsForm(forms.Form):
    base_model = forms.CharField(widget=TrainingModelPicker, max_length=300,
                                 help_text="The models this server can run now, with their size and time per step; "
                                           "or, with “Other…”, any Hugging Face Hub id or a model folder of this "
                                           "server.")
    method = forms.ChoiceField(choices=FineTune.Method.choices, initial=FineTune.Method.LORA)
    backend = forms.ChoiceField(choices=BACKENDS.items(), initial="auto")
    max_steps = forms.IntegerField(min_value=1, max_value=100_000, initial=DEFAULTS["max_steps"], label="Training steps",
                                   help_text="Proposed from the number of examples and a number of passes over them "
                                             "(epochs); on a worker without a GPU, from the time budget.")
    learning_rate = forms.FloatField(min_value=1e-7, max_value=1.0, initial=DEFAULTS["learning_rate"],
                                     widget=forms.NumberInput(attrs={"step": "any"}))
    batch_size = forms.IntegerField(min_value=1, max_value=1024, initial=DEFAULTS["batch_size"])
    max_length = forms.IntegerField(min_value=16, max_value=32_768, initial=DEFAULTS["max_length"],
                                    label="Maximum sequence length",
                                    help_text="Tokens per example; longer ones are cut. Proposed from your examples' "
                                              "own lengths.")
    lora_r = forms.IntegerField(required=False, min_value=1, max_value=512, initial=DEFAULTS["lora_r"],
                                label="LoRA rank", help_text="LoRA and QLoRA only.")
    lora_alpha = forms.IntegerField(required=False, min_value=1, max_value=1024, initial=DEFAULTS["lora_alpha"],
                                    label="LoRA alpha")
    warmup_ratio = forms.FloatField(required=False, min_value=0.0, max_value=0.5, initial=DEFAULTS["warmup_ratio"],
                                    label="Warm-up share", widget=forms.NumberInput(attrs={"step": "any"}),
                                    help_text="Share of the steps over which the learning rate rises to its value.")
    packing = forms.BooleanField(required=False, initial=DEFAULTS["packing"], label="Pack short examples together",
                                 help_text="Faster on many short examples: less padding.")
    document_text = forms.BooleanField(required=False, initial=DEFAULTS.get("document_text", False),
                                       label="Also train on the documents' own text",
                                       help_text="Passages of the documents to continue, beside the pairs: the model "
                                                 "reads the source, not only questions about it.")
    replay = forms.BooleanField(required=False, initial=DEFAULTS["replay"], label="Keep what the model knew (replay)",
                                help_text="The base model answers some general questions first, and its own answers "
                                          "are trained on beside your data, so that tuning forgets less.")
    # Any code passes the field: clean_saved_prompt looks it up with the owner's selector, so someone else's prompt
    # answers 404 as everywhere else, and its text is never used.
    saved_prompt = forms.CharField(required=False, label="System prompt from your saved prompts", widget=forms.Select,
                                   help_text="Its text becomes the system prompt below (leave the box empty).")
    system_prompt = forms.CharField(required=False, max_length=TEXTS["system_prompt"], strip=True,
                                    widget=forms.Textarea(attrs={"rows": 2}), label="System prompt",
                                    help_text="Optional. Given to every example that has no system prompt of its own, "
                                              "in training and in the held-out evaluation; use the same one when you "
                                              "ask the model later.")

    # The settings the recommendation fills in (workers.common.recommend): the person may change each of them.
    RECOMMENDED = ("max_steps", "learning_rate", "batch_size", "max_length", "lora_r", "lora_alpha", "warmup_ratio")

    def __init__(self, *args, user=None, version=None, dataset=None, start=None, **kwargs):
        """`version` or `dataset`: the data the form trains on, whose examples decide the proposed length and steps.
        `start`: one of the user's tuned models to propose instead of the default model (its page's "train it
        further" link)."""
        super().__init__(*args, **kwargs)
        self.user = user
        picker = self.fields["base_model"].widget
        picker.groups, default = catalogue_choices_for_form()
        if user is not None:
            yours = [(choice.value, choice.label) for choice in tuned_model_choices(user=user)]
            picker.groups = [(GROUPS["yours"], yours), *picker.groups] if yours else picker.groups
        picker.scope = {"version": version.code} if version is not None else \
            {"dataset": dataset.code} if dataset is not None else {}
        if not self.is_bound:  # an empty form starts from the recommendation for the default model and this data
            picker.plan = training_plan(base_model=default, method=FineTune.Method.LORA, version=version,
                                        dataset=dataset)
            self.fields["base_model"].initial = picker.plan["base_model"]
            for name in self.RECOMMENDED:
                self.fields[name].initial = picker.plan["options"][name]
            if start is not None:
                self.fields["base_model"].initial = f"{FINETUNE_PREFIX}{start.code}"
        if user is None:  # a form without its user (the dashboard's) offers no saved prompts
            del self.fields["saved_prompt"]
        else:
            choices = saved_prompt_choices(user=user)
            self.fields["saved_prompt"].widget.choices = [("", "—" if choices else "— none saved yet —"), *choices]

    def clean_base_model(self):
        """The choice as posted; `root_model` is the base model at the root of its lineage (the model itself, or the
        base of the user's tuned model it names), whose recommended settings fill what the form leaves empty."""
        choice = self.cleaned_data["base_model"]
        parent = model_choice_finetune(user=self.user, choice=choice) if self.user is not None else None
        self.root_model = parent.base_model if parent is not None else choice
        return choice

    def clean(self):
        data = super().clean()
        if data.get("saved_prompt"):
            try:
                data["system_prompt"] = saved_prompt_apply(user=self.user, code=data["saved_prompt"],
                                                           system_prompt=data.get("system_prompt") or "")
            except ValidationError as exc:
                self.add_error("system_prompt", exc)
        return data

    def options(self) -> dict:
        options = {k: self.cleaned_data[k] for k in ("max_steps", "learning_rate", "batch_size", "max_length",
                                                     "packing", "document_text", "replay", "backend",
                                                     "system_prompt")}
        # Left empty, LoRA's rank and alpha and the warm-up are the model's recommended ones.
        recommended = model_facts_for(self.root_model).settings
        options.update({k: getattr(recommended, k) if self.cleaned_data.get(k) is None else self.cleaned_data[k]
                        for k in ("lora_r", "lora_alpha", "warmup_ratio")})
        return options


class PipelineForm(TrainingOptionsForm):
    field_order = ["name", "files"]
    name = forms.CharField(max_length=200, label="Dataset name", initial="My documents")
    files = MultipleFileField(label="Documents", help_text="PDF, Word (.docx), PowerPoint (.pptx), text, Markdown, HTML, CSV, JSON or JSONL files.")
    # Steps and length follow the pairs the documents give, which exist only after generation: left empty, the
    # pipeline decides them then (and logs why); a number typed here is kept.
    FROM_DOCUMENTS = ("max_steps", "max_length")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.FROM_DOCUMENTS:
            field = self.fields[name]
            field.required, field.initial = False, None
            field.widget.attrs.update({"data-from-documents": "1", "placeholder": "From your documents"})
            field.help_text = "Left empty, decided from the pairs your documents give (and, on a CPU, the time budget)."
