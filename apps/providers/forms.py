from django import forms

from apps.providers.client import SITE_DEFAULT
from apps.providers.selectors import (
    provider_credential_list_for_user,
    site_default_endpoint,
)


def provider_choices(*, user, prefix: str = "") -> list[tuple[str, str]]:
    """The chat endpoints a user may choose: the site's default (when an administrator configured one), then the
    user's saved providers, their codes behind `prefix` (for a field that mixes them with other kinds of choice)."""
    choices = []
    default = site_default_endpoint()
    if default:
        choices.append((SITE_DEFAULT, f"Site default endpoint: {default['model']}"))
    if user is not None:
        choices += [(f"{prefix}{c.code}", f"My provider: {c.name} ({c.model})")
                    for c in provider_credential_list_for_user(user=user)]
    return choices


class ProviderChoiceField(forms.ChoiceField):
    """The choice of a chat endpoint, in every form that sends text to one: provider_choices() with the form's own
    choices `before` and `after` them, filled in for the user by `offer(user=...)` from the form's __init__.
    `none_label` names the one empty choice shown when there is nothing else to offer.

    A provider's code is accepted without checking it against the list (with a `prefix`, any value behind the
    prefix; without, any value): whether it is the user's own is the service's question, which answers 404 for a
    stranger's, as everywhere else (not "not a valid choice"). The form's own choices must be offered ones."""

    def __init__(self, *, prefix: str = "", before=(), after=(), none_label: str = "", **kwargs):
        kwargs.setdefault("choices", [])
        super().__init__(**kwargs)
        self.prefix, self.before, self.after, self.none_label = prefix, list(before), list(after), none_label

    def offer(self, *, user) -> None:
        choices = [*self.before, *provider_choices(user=user, prefix=self.prefix), *self.after]
        self.choices = choices or ([("", self.none_label)] if self.none_label else [])

    def valid_value(self, value):
        if self.prefix:
            return str(value).startswith(self.prefix) or super().valid_value(value)
        return True


class ProviderCredentialForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="A name to recognise it by, such as “vLLM on the lab box”.")
    base_url = forms.CharField(
        label="Base URL", max_length=500,
        widget=forms.TextInput(attrs={"placeholder": "http://127.0.0.1:8000/v1", "autocomplete": "off"}),
        help_text="The OpenAI-compatible API's base URL. vLLM and llama.cpp: http://host:8000/v1; Ollama: "
                  "http://host:11434/v1; Gemini: https://generativelanguage.googleapis.com/v1beta/openai; "
                  "OpenAI: https://api.openai.com/v1. Addresses on this server's machine or private network work "
                  "only where the administrator allows them (GARAGE_ALLOWED_ENDPOINTS).",
    )
    model = forms.CharField(max_length=200, help_text="The model name the endpoint expects.")
    api_key = forms.CharField(
        label="API key", required=False, max_length=4096,
        # render_value=False: a page re-shown after an error never carries the key back to the browser.
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted; never shown again (pages show its last four characters). "
                  "Leave empty for endpoints without keys.",
    )


class PiiPatternForm(forms.Form):
    label = forms.CharField(max_length=30, help_text="The placeholder's name, such as EMPLOYEE_ID (shown as [EMPLOYEE_ID]).")
    pattern = forms.CharField(max_length=500, widget=forms.TextInput(attrs={"placeholder": r"EMP-\d{6}"}),
                              help_text="A regular expression (Python syntax).")


class GenerationForm(forms.Form):
    """The options of one generation run, for the dataset page and its POST target.

    `generator` holds "extractive", "default" (the site's endpoint), "provider:<code>" (one of the user's
    saved providers) or "local"; `options()` turns the cleaned form into qa_generate_start's keyword arguments."""

    EXTRACTIVE = "extractive"
    LOCAL = "local"
    PROVIDER_PREFIX = "provider:"

    generator = ProviderChoiceField(
        label="Generator", prefix=PROVIDER_PREFIX,
        before=[(EXTRACTIVE, "Offline extractive (no model; nothing leaves this server)")],
        after=[(LOCAL, "Local model on the GPU worker")],
    )
    model_path = forms.CharField(
        label="Local model", required=False, max_length=500,
        widget=forms.TextInput(attrs={"placeholder": "google/gemma-3-1b-it or a folder on the GPU worker"}),
        help_text="Only for the local model: a Hugging Face Hub id or a folder on the GPU worker.",
    )
    task_description = forms.CharField(
        label="What the fine-tuned model should do", required=False, max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Guides the questions a model writes, such as “answer customer questions about our product”.",
    )
    num_pairs = forms.IntegerField(
        label="Number of pairs", required=False, min_value=1, max_value=10_000,
        help_text="Spread over the document's chunks. Empty: every sentence (extractive) or 3 per chunk (models).",
    )
    summary = forms.CharField(
        label="Document summary", required=False, max_length=8000, widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Optional context sent with every chunk.",
    )
    scrub_pii = forms.BooleanField(
        label="Scrub personal data before sending", required=False, initial=True,
        help_text="Replaces emails, phone numbers, card and IBAN numbers, and your own patterns, with "
                  "placeholders such as [EMAIL] before text goes to an endpoint.",
    )

    def __init__(self, *args, user, dataset=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["generator"].offer(user=user)
        self.fields["generator"].initial = SITE_DEFAULT if site_default_endpoint() else self.EXTRACTIVE
        if dataset is not None and not self.is_bound:
            self.fields["task_description"].initial = dataset.description

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("generator") == self.LOCAL and not (cleaned.get("model_path") or "").strip():
            self.add_error("model_path", "Give the local model to generate with.")
        return cleaned

    def options(self) -> dict:
        """Keyword arguments for apps.datasets.services.qa_generate_start."""
        data = self.cleaned_data
        choice = data["generator"]
        options = {"task_description": data.get("task_description") or "", "num_pairs": data.get("num_pairs"),
                   "summary": data.get("summary") or "", "scrub_pii": bool(data.get("scrub_pii"))}
        if choice == self.EXTRACTIVE:
            return {**options, "backend": "extractive"}
        if choice == self.LOCAL:
            return {**options, "backend": "local_model", "model_path": data.get("model_path", "")}
        provider = choice[len(self.PROVIDER_PREFIX):] if choice.startswith(self.PROVIDER_PREFIX) else SITE_DEFAULT
        return {**options, "backend": "endpoint", "provider": provider}

    def error_text(self) -> str:
        return "; ".join(f"{self.fields[k].label if k in self.fields else 'Options'}: {' '.join(v)}"
                         for k, v in self.errors.items())
