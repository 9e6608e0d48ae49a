"""The model picker: how every form that chooses a model shows the choice (training, GRPO, prompt optimization,
benchmarks)."""
from django import forms
from django.forms.utils import flatatt
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

# What the list posts for "Other…": never a model name (a Hub id has a "/", a folder starts with one).
OTHER = "other"


class ModelPicker(forms.Widget):
    """A list of models grouped with <optgroup> (your models, installed on this server, from the Hub, the test
    model), each with its size, and "Other…", which shows a text box for any Hugging Face Hub id or model folder of
    the server. The list posts under the field's name, the text box under "<name>_other"; a post that names a model
    directly (the older forms, the tests) is taken as it is. The text box shows only while "Other…" is chosen
    (garage.css, without scripts).

    `groups`, [(title, [(value, label), ...]), ...], is set by the form (apps.training.model_choices)."""

    other_label = "Other… (a Hugging Face Hub id or a model folder of this server)"

    def __init__(self, attrs=None):
        super().__init__(attrs)
        self.groups = []

    def value_from_datadict(self, data, files, name):
        chosen = data.get(name)
        if chosen == OTHER:
            return (data.get(f"{name}_other") or "").strip()
        if chosen in (None, "") and data.get(f"{name}_other"):
            return data[f"{name}_other"].strip()
        return chosen

    def value_omitted_from_data(self, data, files, name):
        return name not in data and f"{name}_other" not in data

    def render(self, name, value, attrs=None, renderer=None):
        attrs = self.build_attrs(self.attrs, attrs)
        field_id = attrs.pop("id", None) or f"id_{name}"
        attrs.pop("required", None)  # "Other…" with an empty box is answered by the form, in words
        attrs.pop("maxlength", None)  # the text box's, not the list's
        value = "" if value is None else str(value)
        known = {model for _, members in self.groups for model, _ in members}
        groups = format_html_join("", '<optgroup label="{}">{}</optgroup>', (
            (title, format_html_join("", '<option value="{}"{}>{}</option>',
                                     ((model, mark_safe(" selected") if model == value else "", label)
                                      for model, label in members)))
            for title, members in self.groups))
        other = value not in known and (bool(value) or not known)
        return format_html(
            '<span class="model-picker" data-role="model-picker">'
            '<select name="{}" id="{}" data-role="model-select"{}>{}'
            '<option value="{}" data-role="model-other-option"{}>{}</option></select>'
            '<input type="text" name="{}_other" id="{}_other" value="{}" maxlength="300" data-role="model-other" '
            'placeholder="org/model-name or /path/to/model" aria-label="Hugging Face Hub id or model folder">'
            '</span>',
            name, field_id, flatatt(attrs), groups, OTHER, mark_safe(" selected") if other else "", self.other_label,
            name, field_id, value if other else "")

    def id_for_label(self, id_):
        return id_
