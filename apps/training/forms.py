from django import forms
from django.core.exceptions import ValidationError
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from apps.training.models import FineTune
from apps.prompts.selectors import saved_prompt_apply, saved_prompt_choices
from apps.training.services import BACKENDS, DEFAULTS, TEXTS
from workers.catalogue import catalogue_entries
from workers.tiny_model import TINY_MODEL_ID


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        if isinstance(data, (list, tuple)):
            return [super(MultipleFileField, self).clean(item, initial) for item in data]
        return [super().clean(data, initial)]


class CatalogueInput(forms.TextInput):
    """A text box that suggests the catalogue's models (an HTML datalist) and still takes any Hub id or folder."""

    def render(self, name, value, attrs=None, renderer=None):
        list_id = f"{name}-catalogue"
        html = super().render(name, value, {**(attrs or {}), "list": list_id}, renderer)
        options = "".join(format_html('<option value="{}">{}</option>', entry.id, entry.label)
                          for entry in catalogue_entries())
        return mark_safe(f'{html}<datalist id="{list_id}">{options}</datalist>')


class TrainingOptionsForm(forms.Form):
    base_model = forms.CharField(initial=TINY_MODEL_ID, widget=CatalogueInput, max_length=300,
                                 help_text="Pick one from the list (the tiny model learns on a laptop CPU in a minute), "
                                           "or type any Hugging Face Hub id or a model folder of this server.")
    method = forms.ChoiceField(choices=FineTune.Method.choices, initial=FineTune.Method.LORA)
    backend = forms.ChoiceField(choices=BACKENDS.items(), initial="auto")
    max_steps = forms.IntegerField(min_value=1, max_value=100_000, initial=DEFAULTS["max_steps"], label="Training steps")
    learning_rate = forms.FloatField(min_value=1e-7, max_value=1.0, initial=DEFAULTS["learning_rate"])
    batch_size = forms.IntegerField(min_value=1, max_value=1024, initial=DEFAULTS["batch_size"])
    max_length = forms.IntegerField(min_value=16, max_value=32_768, initial=DEFAULTS["max_length"],
                                    label="Maximum sequence length", help_text="Tokens per example; longer ones are cut.")
    packing = forms.BooleanField(required=False, initial=DEFAULTS["packing"], label="Pack short examples together",
                                 help_text="Faster on many short examples: less padding.")
    # Any code passes the field: clean_saved_prompt looks it up with the owner's selector, so someone else's prompt
    # answers 404 as everywhere else, and its text is never used.
    saved_prompt = forms.CharField(required=False, label="System prompt from your saved prompts", widget=forms.Select,
                                   help_text="Its text becomes the system prompt below (leave the box empty).")
    system_prompt = forms.CharField(required=False, max_length=TEXTS["system_prompt"], strip=True,
                                    widget=forms.Textarea(attrs={"rows": 2}), label="System prompt",
                                    help_text="Optional. Given to every example that has no system prompt of its own, "
                                              "in training and in the held-out evaluation; use the same one when you "
                                              "ask the model later.")

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        if user is None:  # a form without its user (the dashboard's) offers no saved prompts
            del self.fields["saved_prompt"]
        else:
            choices = saved_prompt_choices(user=user)
            self.fields["saved_prompt"].widget.choices = [("", "—" if choices else "— none saved yet —"), *choices]

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
        return {k: self.cleaned_data[k] for k in ("max_steps", "learning_rate", "batch_size", "max_length", "packing",
                                                  "backend", "system_prompt")}


class PipelineForm(TrainingOptionsForm):
    field_order = ["name", "files"]
    name = forms.CharField(max_length=200, label="Dataset name", initial="My documents")
    files = MultipleFileField(label="Documents", help_text="PDF, Word (.docx), PowerPoint (.pptx), text, Markdown, HTML, CSV, JSON or JSONL files.")
