from django import forms

from apps.training.forms import MultipleFileField


class DatasetForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False,
                                  help_text="What should the fine-tuned model be good at?")


class UploadForm(forms.Form):
    files = MultipleFileField(label="Documents", help_text="Text or Markdown files (.txt, .md).")
