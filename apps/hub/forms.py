from django import forms

from apps.hub.models import HubPreferences


class TokenForm(forms.Form):
    token = forms.CharField(
        label="Access token", max_length=2048,
        # render_value=False: a page shown again after an error never sends the token back to the browser.
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off", "placeholder": "hf_…"}),
        help_text="Create one at huggingface.co/settings/tokens with the “write” role. It is checked with Hugging "
                  "Face, stored encrypted, and never shown again (pages show its last four characters).",
    )


class PreferencesForm(forms.ModelForm):
    class Meta:
        model = HubPreferences
        fields = ["auto_push", "repo_pattern", "auto_private", "gate_threshold", "block_worse"]
        labels = {"auto_push": "Push automatically after training", "repo_pattern": "Repository name pattern",
                  "auto_private": "Make automatic pushes private", "gate_threshold": "Allowed drop before warning",
                  "block_worse": "Block publishing of worse models"}


class PublishForm(forms.Form):
    what = forms.ChoiceField(label="What to publish", widget=forms.RadioSelect)
    repo = forms.CharField(
        label="Repository", max_length=200,
        help_text="A name such as “valley-model” (in your account) or “namespace/name” for an organization.")
    mode = forms.ChoiceField(
        label="Repository is", initial="new", widget=forms.RadioSelect,
        choices=[("new", "New: create it (fails if the name is taken)"),
                 ("existing", "Existing: add this upload as a new commit to one of your repositories")])
    private = forms.BooleanField(label="Private", required=False, initial=True,
                                 help_text="Only for a new repository; an existing one keeps its visibility.")
    confirm_worse = forms.BooleanField(label="I know this model scores worse than its base; publish it anyway",
                                       required=False)

    def __init__(self, *args, choices=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["what"].choices = [(c["key"], f"{c['label']}, with its model card") for c in choices]
        if choices:
            self.fields["what"].initial = choices[0]["key"]
