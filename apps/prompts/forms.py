from django import forms

from apps.prompts.models import OptimizedPrompt
from apps.prompts.services import DEFAULTS
from apps.providers.forms import ProviderChoiceField
from apps.rl.forms import OwnedChoiceField, model_field, offer_models

LOCAL_CHOICE = (OptimizedPrompt.LOCAL, "A local model, on this server's GPU worker (choose it below)")


class OptimizedPromptForm(forms.Form):
    name = forms.CharField(required=False, max_length=200,
                           help_text="Optional; left empty, the name says the data, the run number, the model and "
                                     "the day.")
    source = forms.ChoiceField(choices=OptimizedPrompt.Source.choices, initial=OptimizedPrompt.Source.VERSION,
                               widget=forms.RadioSelect, label="Evaluation set")
    version = OwnedChoiceField(required=False, label="Dataset version",
                               help_text="Its training examples teach the optimizer; its held-out examples (or, when it "
                                         "held none out, its last fifth) decide which prompt is best.")
    task_model = ProviderChoiceField(label="Task model", after=[LOCAL_CHOICE],
                                     help_text="The model whose system prompt is optimized.")
    task_local_model = model_field(required=False, label="Local task model",
                                   help_text="Only with a local task model: an installed model or one of your tuned "
                                             "models from the list, or, with “Other…”, a Hugging Face Hub id or a "
                                             "model folder of this server.")
    reflection_model = ProviderChoiceField(label="Reflection model", after=[LOCAL_CHOICE],
                                           help_text="The model that reads the failures and writes better prompts; a "
                                                     "strong model helps most here.")
    reflection_local_model = model_field(required=False, label="Local reflection model",
                                         help_text="Only with a local reflection model; as above.")
    metric = forms.ChoiceField(choices=OptimizedPrompt.Metric.choices, initial=OptimizedPrompt.Metric.F1)
    budget = forms.IntegerField(min_value=3, max_value=100_000, initial=100,
                                help_text="Model calls in all (answers and reflections); never exceeded.")
    seed_prompt = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}), label="Seed prompt",
                                  help_text="The system prompt to start from (empty: none). The result is never worse "
                                            "than it on the validation examples.")
    minibatch_size = forms.IntegerField(required=False, initial=DEFAULTS["minibatch_size"], min_value=1,
                                        help_text="Training examples each new prompt is first tried on.")
    train_limit = forms.IntegerField(required=False, initial=DEFAULTS["train_limit"], min_value=1,
                                     label="Training examples at most")
    val_limit = forms.IntegerField(required=False, initial=DEFAULTS["val_limit"], min_value=1,
                                   label="Validation examples at most",
                                   help_text="Each kept prompt answers all of them: fewer leave more budget to explore.")
    max_tokens = forms.IntegerField(required=False, initial=DEFAULTS["max_tokens"], min_value=1,
                                    label="Answer length (tokens)")

    def __init__(self, *args, user, versions, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["version"].choices = [("", "—")] + [(str(v.code), str(v)) for v in versions]
        offer_models(self, "task_local_model", "reflection_local_model", user=user)
        self.fields["task_model"].offer(user=user)
        self.fields["reflection_model"].offer(user=user)

    def settings(self) -> dict:
        return {name: self.cleaned_data.get(name) for name in ("minibatch_size", "train_limit", "val_limit", "max_tokens")
                if self.cleaned_data.get(name) is not None}


class SavedPromptForm(forms.Form):
    name = forms.CharField(max_length=200)
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}), label="System prompt")
