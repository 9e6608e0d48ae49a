from django import forms

from apps.providers.forms import ProviderChoiceField
from apps.core.forms import MultipleFileField
from workers.common.formats import TEXT_ENCODINGS
from workers.common.judge import MAX_RUBRIC
from workers.common.records import RECORD_SUFFIXES, STYLES


class DatasetForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False,
                                  help_text="What should the fine-tuned model be good at?")


class UploadForm(forms.Form):
    files = MultipleFileField(label="Documents", help_text="PDF, Word (.docx), PowerPoint (.pptx), text, Markdown, HTML, CSV, JSON or JSONL files.")


class EncodingForm(forms.Form):
    encoding = forms.ChoiceField(choices=[("", "Told by the file (automatic)"), *TEXT_ENCODINGS.items()], required=False,
                                 label="Read it as")


class PairForm(forms.Form):
    system = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, label="System prompt",
                             help_text="Optional: instructions the model sees before the question.")
    question = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))
    answer = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}))


class CurateForm(forms.Form):
    """Curation settings; the judge's provider choices come from the user's saved providers and the site default."""

    dedupe_exact = forms.BooleanField(required=False, initial=True, label="Remove repeated questions",
                                      help_text="Same question apart from case, spacing and punctuation.")
    dedupe_near = forms.BooleanField(required=False, initial=True, label="Remove near-duplicate questions")
    near_threshold = forms.FloatField(min_value=0.3, max_value=1.0, initial=0.8, label="Near-duplicate similarity",
                                      help_text="From 0.3 (loose) to 1 (identical); 0.8 catches rewordings such as “What's” for “What is”.")
    min_question_chars = forms.IntegerField(min_value=0, initial=10, label="Shortest question (characters)")
    max_question_chars = forms.IntegerField(min_value=0, initial=0, label="Longest question (characters)", help_text="0: no limit.")
    min_answer_chars = forms.IntegerField(min_value=0, initial=2, label="Shortest answer (characters)")
    max_answer_chars = forms.IntegerField(min_value=0, initial=0, label="Longest answer (characters)", help_text="0: no limit.")
    judge = forms.BooleanField(required=False, initial=False, label="Ask a judge model to rate each pair",
                               help_text="Pairs rated below the threshold are set aside; unreadable ratings keep the pair.")
    judge_threshold = forms.FloatField(min_value=1, max_value=10, initial=7, label="Lowest rating kept (1–10)")
    judge_rubric = forms.CharField(required=False, max_length=MAX_RUBRIC, label="Judge's rubric",
                                   widget=forms.Textarea(attrs={"rows": 3}),
                                   help_text="Optional: what a good pair looks like for you, added to the judge's "
                                             "prompt. Empty: accuracy, relevance, clarity and usefulness.")
    judge_provider = ProviderChoiceField(required=False, label="Judge model", none_label="No chat provider configured")
    scrub_pii = forms.BooleanField(required=False, initial=True, label="Scrub personal data before it is sent to the judge")

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["judge_provider"].offer(user=user)

    def options(self) -> dict:
        return dict(self.cleaned_data)


class ImportForm(forms.Form):
    file = forms.FileField(required=False, help_text=f"{', '.join(RECORD_SUFFIXES)}: chat (messages), ShareGPT, Alpaca, "
                                                     "prompt/completion or question/answer records are recognised.")
    hub_id = forms.CharField(required=False, max_length=200, label="Or a Hugging Face dataset id",
                             help_text="Such as openai/gsm8k (needs network access).")
    hub_config = forms.CharField(required=False, max_length=100, label="Configuration", help_text="E.g. main; empty for the default.")
    split = forms.CharField(required=False, max_length=100, initial="train")
    limit = forms.IntegerField(required=False, min_value=1, label="At most this many rows", help_text="Hub imports only.")
    question_column = forms.CharField(required=False, max_length=300,
                                      help_text="Only when the shape is not recognised; several columns, comma-separated, are joined.")
    answer_column = forms.CharField(required=False, max_length=300)
    system_column = forms.CharField(required=False, max_length=300)

    def clean(self):
        data = super().clean()
        if bool(data.get("file")) == bool((data.get("hub_id") or "").strip()):
            raise forms.ValidationError("Choose a file or give a Hugging Face dataset id (one of the two).")
        return data

    def mapping(self) -> dict:
        return {role: self.cleaned_data.get(f"{role}_column") or "" for role in ("question", "answer", "system")}


class FreezeForm(forms.Form):
    note = forms.CharField(required=False, max_length=300, help_text="What changed, e.g. “after curation”.")


class ExportForm(forms.Form):
    style = forms.ChoiceField(choices=[(s, s) for s in STYLES], initial="messages")
