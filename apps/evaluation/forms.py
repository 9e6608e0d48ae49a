from django import forms

from apps.evaluation.models import BenchmarkRun
from apps.evaluation.services import DEFAULT_SETTINGS
from apps.training.model_choices import (FINETUNE_PREFIX, default_model_choice, model_choice_list_for_user,
                                         model_picker_groups)
from apps.training.widgets import ModelPicker
from workers.common.evaluation import DEFAULT_PROMPTS


class BenchmarkRunForm(forms.Form):
    """Start a benchmark run. The model is a model choice (apps.training.model_choices): a base model (an installed
    one, or, with "Other…", a Hub id or a folder on the GPU machine) or one of the user's as `finetune:<code>`."""

    benchmark = forms.ChoiceField(choices=BenchmarkRun.Benchmark.choices, initial=BenchmarkRun.Benchmark.GSM8K)
    model = forms.CharField(max_length=300, label="Model", widget=ModelPicker,
                            error_messages={"required": "Choose a model to evaluate."},
                            help_text="A model installed on this server or one of your fine-tuned models; or, with "
                                      "“Other…”, a Hugging Face model id or a model folder on the GPU machine.")
    name = forms.CharField(required=False, max_length=200, help_text="Optional; shown in lists and comparisons.")
    limit = forms.IntegerField(required=False, min_value=1, initial=DEFAULT_SETTINGS["limit"], label="Problems",
                               help_text="How many problems to ask. Empty: all (GSM8K has 1,319 test problems).")
    subset = forms.ChoiceField(choices=[("first", "The first problems"), ("random", "A random sample (seeded)")],
                               initial="first", label="Which problems")
    few_shot = forms.IntegerField(min_value=0, max_value=16, initial=0, label="Worked examples (few-shot)",
                                  help_text="Solved GSM8K training problems shown to the model before each question.")
    temperature = forms.FloatField(min_value=0.0, max_value=2.0, initial=0.0,
                                   help_text="0 answers greedily (repeatable); above 0 samples.")
    top_p = forms.FloatField(min_value=0.01, max_value=1.0, initial=1.0, label="Top-p", help_text="Used when sampling.")
    seed = forms.IntegerField(min_value=0, initial=0, help_text="Chooses the random sample and the sampling noise.")
    max_new_tokens = forms.IntegerField(min_value=1, max_value=32_768, initial=DEFAULT_SETTINGS["max_new_tokens"],
                                        label="Maximum answer length (tokens)")
    batch_size = forms.IntegerField(min_value=1, max_value=512, initial=DEFAULT_SETTINGS["batch_size"],
                                    help_text="Problems answered at once; lower it if the GPU runs out of memory.")
    prompt_template = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), label="Prompt",
                                      help_text="Where {question} goes. Empty: the benchmark's default (below).")
    system_prompt = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                                    help_text="Sent first in every chat. Empty: none.")
    # Any value passes here: the view looks the code up with the owner's selector, so that someone else's prompt
    # answers 404 as everywhere else (and its text is never used).
    saved_prompt = forms.CharField(required=False, label="Or one of your saved prompts", widget=forms.Select,
                                   help_text="Its text becomes the system prompt (leave the box above empty).")
    source = forms.CharField(required=False, max_length=200, label="AIME data",
                             help_text="AIME only: a Hugging Face dataset id (default HuggingFaceH4/aime_2024, needs "
                                       "the network) or the name of a JSONL file in the server's benchmark folder.")

    def __init__(self, *args, user=None, saved_prompts=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["saved_prompt"].widget.choices = [("", "—" if saved_prompts else "— none saved yet —"),
                                                      *saved_prompts]
        self.fields["model"].widget.groups = model_picker_groups(model_choice_list_for_user(user=user)) if user else []
        if not self.is_bound and not self.initial.get("model"):
            self.initial["model"] = default_model_choice()
        self.default_prompts = DEFAULT_PROMPTS

    def model_choice(self) -> tuple[str, str]:
        """("base", model id) or ("finetune", code)."""
        model = self.cleaned_data["model"].strip()
        if model.startswith(FINETUNE_PREFIX):
            return "finetune", model[len(FINETUNE_PREFIX):]
        return "base", model

    def settings(self) -> dict:
        return {name: self.cleaned_data.get(name) for name in DEFAULT_SETTINGS if name in self.cleaned_data}
