import json

from django import forms

from apps.providers.forms import ProviderChoiceField
from apps.rl.models import GrpoRun
from apps.rl.services import DEFAULTS, MAX_PREVIEW_SAMPLES, RECIPE_RUBRIC, recipe_model
from apps.training.model_choices import default_model_choice, model_choice_list_for_user, model_picker_groups
from apps.training.services import BACKENDS
from apps.training.widgets import ModelPicker

PREVIEW_ROWS = 4  # pasted sample rows on the form
DEFAULT_REWARDS = [{"type": "format", "weight": 0.5, "mode": "tags", "tags": ["reasoning", "answer"]},
                   {"type": "answer_match", "weight": 1.0}]


def _number(name, label, help_text="", **kwargs):
    """A number field whose initial value is the engine's default."""
    field = forms.FloatField if isinstance(DEFAULTS[name], float) else forms.IntegerField
    return field(required=False, initial=DEFAULTS[name], label=label, help_text=help_text, **kwargs)


class OwnedChoiceField(forms.ChoiceField):
    """Offers the user's own objects but accepts any value: whether it is the user's own is the selector's question,
    which answers 404 for a stranger's, as everywhere else (not "not a valid choice")."""

    def valid_value(self, value):
        return True


def model_field(**kwargs) -> forms.CharField:
    """A model picker (apps.training.widgets.ModelPicker) whose initial value is the server's default model (read
    when the form is shown). Every feature's model choice is one of these, filled by `offer_models`."""
    return forms.CharField(max_length=300, widget=ModelPicker, **{"initial": default_model_choice, **kwargs})


def offer_models(form: forms.Form, *names: str, user) -> None:
    """Fill the form's model pickers with what `user` may pick, grouped (apps.training.model_choices)."""
    groups = model_picker_groups(model_choice_list_for_user(user=user)) if user is not None else []
    for name in names:
        form.fields[name].widget.groups = groups


class GrpoRunForm(forms.Form):
    """A GRPO run: the prompts, the reward functions (edited by the builder into `rewards` JSON), the settings, and
    the samples a preview scores. The same form posts to the preview, so what is previewed is what will run."""

    name = forms.CharField(required=False, max_length=200,
                           help_text="Optional; left empty, the name says the data, the run number, the model and "
                                     "the day.")
    base_model = model_field(help_text="The model to train: an installed model or one of your tuned models from the "
                                       "list, or, with “Other…”, a Hugging Face Hub id or a model folder of this "
                                       "server.")
    method = forms.ChoiceField(choices=GrpoRun.Method.choices, initial=GrpoRun.Method.LORA)
    backend = forms.ChoiceField(choices=BACKENDS.items(), initial="auto")
    source = forms.ChoiceField(choices=GrpoRun.Source.choices, initial=GrpoRun.Source.GSM8K, widget=forms.RadioSelect,
                               label="Prompts")
    version = OwnedChoiceField(required=False, label="Dataset version",
                                help_text="Its training questions become the prompts, its answers the references.")
    prompts_file = forms.FileField(required=False, label="Prompts file (JSONL)",
                                   help_text='One JSON object per line: {"prompt": "...", "answer": "..."}; the answer '
                                             'is optional, "solution" and "system" too.')
    rewards = forms.CharField(widget=forms.Textarea(attrs={"rows": 6, "class": "mono", "data-role": "rewards-json"}),
                              initial=json.dumps(DEFAULT_REWARDS, indent=1), label="Reward functions (JSON)",
                              help_text="The builder above writes this; you may also edit it by hand.")
    max_steps = _number("max_steps", "GRPO steps", min_value=1)
    num_generations = _number("num_generations", "Completions per prompt",
                              "Each prompt is answered this many times; GRPO learns from how their rewards differ.")
    prompts_per_step = _number("prompts_per_step", "Prompts per step")
    learning_rate = _number("learning_rate", "Learning rate")
    beta = _number("beta", "KL penalty (beta)", "Keeps the model near where it started; 0 switches it off.")
    temperature = _number("temperature", "Sampling temperature")
    max_prompt_length = _number("max_prompt_length", "Maximum prompt length (tokens)",
                                "Longer prompts are left out of training.")
    max_completion_length = _number("max_completion_length", "Maximum completion length (tokens)")
    lora_r = _number("lora_r", "LoRA rank")
    lora_alpha = _number("lora_alpha", "LoRA alpha")
    warmup_steps = _number("warmup_steps", "Warm-up steps (supervised)",
                           "Steps of ordinary fine-tuning on worked examples before GRPO, so the model already "
                           "answers in the format the rewards ask for. 0: no warm-up.")
    warmup_learning_rate = _number("warmup_learning_rate", "Warm-up learning rate")
    warmup_template = forms.CharField(required=False, initial=DEFAULTS["warmup_template"], label="Warm-up answer template",
                                      widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}),
                                      help_text="How each worked example is written: {answer} is the reference answer, "
                                                "{reasoning} the worked solution when the data has one.")
    system_prompt = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}),
                                    help_text="Shown to the model before each prompt, such as the answer format wanted.")
    prompt_limit = _number("prompt_limit", "Use only the first N prompts", "0 uses them all.", min_value=0)
    checkpoint_every = _number("checkpoint_every", "Checkpoint every N steps",
                               "A failed or cancelled run continues from its last checkpoint when retried.", min_value=0)
    seed = _number("seed", "Seed", min_value=0)
    preview_mode = forms.ChoiceField(choices=[("pasted", "Score the completions I paste below"),
                                              ("generate", "Let the base model write completions for the first prompts")],
                                     initial="pasted", widget=forms.RadioSelect, required=False, label="Preview")
    preview_count = forms.IntegerField(required=False, min_value=1, max_value=MAX_PREVIEW_SAMPLES, initial=4,
                                       label="Completions to generate")

    SETTINGS = ("max_steps", "num_generations", "prompts_per_step", "learning_rate", "beta", "temperature",
                "max_prompt_length", "max_completion_length", "lora_r", "lora_alpha", "warmup_steps",
                "warmup_learning_rate", "warmup_template", "system_prompt", "prompt_limit", "checkpoint_every", "seed")

    def __init__(self, *args, versions=(), user=None, **kwargs):
        super().__init__(*args, **kwargs)
        offer_models(self, "base_model", user=user)
        self.fields["version"].choices = [("", "—")] + [(str(v.code), f"{v.dataset.name} v{v.number} "
                                                                      f"({v.example_count} examples)") for v in versions]
        for index in range(PREVIEW_ROWS):
            self.fields[f"sample_prompt_{index}"] = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
            self.fields[f"sample_completion_{index}"] = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
            self.fields[f"sample_answer_{index}"] = forms.CharField(required=False, max_length=2000)

    def settings(self) -> dict:
        values = {name: self.cleaned_data.get(name) for name in self.SETTINGS}
        values["backend"] = self.cleaned_data["backend"]
        return {k: v for k, v in values.items() if v not in (None, "")}

    def samples(self) -> list[dict]:
        rows = []
        for index in range(PREVIEW_ROWS):
            row = {name: self.cleaned_data.get(f"sample_{name}_{index}") or "" for name in ("prompt", "completion", "answer")}
            if row["completion"].strip() or row["prompt"].strip():
                rows.append(row)
        return rows

    def sample_rows(self):
        """The pasted-sample fields grouped by row, for the template."""
        return [(self[f"sample_prompt_{i}"], self[f"sample_completion_{i}"], self[f"sample_answer_{i}"])
                for i in range(PREVIEW_ROWS)]


class RecipeForm(forms.Form):
    base_model = model_field(initial=recipe_model,
                             help_text="The recipe's model is Gemma 3 1B Instruct; any model from the list works too "
                                       "(the tiny test model tries the whole recipe on a CPU in a minute and learns "
                                       "nothing about maths).")
    judge = forms.BooleanField(required=False, label="Add an LLM judge of the reasoning",
                               help_text="A chat model grades each completion's reasoning with the rubric below.")
    provider = ProviderChoiceField(required=False, label="Judge endpoint")
    rubric = forms.CharField(required=False, initial=RECIPE_RUBRIC, widget=forms.Textarea(attrs={"rows": 3}))
    max_steps = forms.IntegerField(required=False, min_value=1, max_value=100_000, label="GRPO steps",
                                   help_text="Empty: the recipe's 250.")
    benchmark_limit = forms.IntegerField(required=False, min_value=1, max_value=1319, label="GSM8K test problems",
                                         help_text="Asked of the base and the tuned model afterwards. Empty: 200.")

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        offer_models(self, "base_model", user=user)
        self.fields["provider"].offer(user=user)

    def overrides(self) -> dict:
        return {k: self.cleaned_data[k] for k in ("max_steps", "benchmark_limit") if self.cleaned_data.get(k)}
