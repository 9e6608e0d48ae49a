from django import forms

from apps.training.models import FineTune
from apps.training.services import BACKENDS, DEFAULTS
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


class TrainingOptionsForm(forms.Form):
    base_model = forms.CharField(initial=TINY_MODEL_ID, help_text="'tiny-gemma3' (a tiny test model built on your data), or a local model folder.")
    method = forms.ChoiceField(choices=FineTune.Method.choices, initial=FineTune.Method.LORA)
    backend = forms.ChoiceField(choices=BACKENDS.items(), initial="auto")
    max_steps = forms.IntegerField(min_value=1, max_value=100_000, initial=DEFAULTS["max_steps"], label="Training steps")
    learning_rate = forms.FloatField(min_value=1e-7, max_value=1.0, initial=DEFAULTS["learning_rate"])
    batch_size = forms.IntegerField(min_value=1, max_value=1024, initial=DEFAULTS["batch_size"])

    def options(self) -> dict:
        return {k: self.cleaned_data[k] for k in ("max_steps", "learning_rate", "batch_size", "backend")}


class PipelineForm(TrainingOptionsForm):
    field_order = ["name", "files"]
    name = forms.CharField(max_length=200, label="Dataset name", initial="My documents")
    files = MultipleFileField(label="Documents", help_text="PDF, Word (.docx), PowerPoint (.pptx), text, Markdown, HTML, CSV, JSON or JSONL files.")
