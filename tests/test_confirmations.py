"""Every destructive form asks before it is sent (`data-confirm`, garage/static/garage/forms.js), naming what is lost.
The browser side is in tests/datasets/test_delete_confirm_browser.py."""
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.accounts.services import api_token_create
from apps.datasets.models import QAPair
from apps.datasets.services import dataset_create, dataset_version_freeze, document_upload, qa_pair_create
from apps.hub.models import HubConnection
from apps.prompts.services import saved_prompt_create
from apps.providers.services import pii_pattern_create, provider_credential_create

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


class Forms(HTMLParser):
    """The page's forms as {action: [data-confirm, ...]} (several forms may post to one URL)."""

    def __init__(self, page: str):
        super().__init__()
        self.confirms: dict[str, list] = {}
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        if tag == "form":
            attrs = dict(attrs)
            self.confirms.setdefault(attrs.get("action", ""), []).append(attrs.get("data-confirm"))


def confirms(client, url, action):
    response = client.get(url)
    assert response.status_code == 200, url
    return Forms(response.content.decode()).confirms[action]


@pytest.mark.django_db
def test_it_names_what_each_delete_loses(alice, alice_client):
    dataset = dataset_create(owner=alice, name="Bob's field notes")
    document_upload(dataset=dataset, uploaded_file=SimpleUploadedFile("a.txt", b"Rivers."), start=False)
    pair = qa_pair_create(dataset=dataset, question="How many rivers run through the valley?", answer="Three.")
    dataset_version_freeze(dataset=dataset)
    detail = reverse("datasets:detail", kwargs={"code": dataset.code})
    assert confirms(alice_client, detail, reverse("datasets:delete", kwargs={"code": dataset.code})) == [
        "Delete the dataset “Bob's field notes” with its 1 document, 1 pair and 1 frozen version? This cannot be undone."]
    assert confirms(alice_client, detail, reverse("datasets:pair_delete", kwargs={"code": dataset.code, "pk": pair.pk})) == [
        "Delete the pair “How many rivers run through the valley?” and its answer? This cannot be undone "
        "(frozen versions keep their own copy)."]

    prompt = saved_prompt_create(owner=alice, name="Terse", text="Answer in one word.")
    [question] = confirms(alice_client, reverse("prompts:saved-detail", kwargs={"code": prompt.code}),
                          reverse("prompts:saved-delete", kwargs={"code": prompt.code}))
    assert question.startswith("Delete the saved prompt “Terse”?")

    credential = provider_credential_create(owner=alice, name="Office vLLM", base_url="http://127.0.0.1:9/v1", model="m")
    pattern = pii_pattern_create(owner=alice, label="BADGE", pattern=r"B-\d{6}")
    providers = reverse("providers:list")
    [question] = confirms(alice_client, providers, reverse("providers:delete", kwargs={"code": credential.code}))
    assert question.startswith("Delete the provider “Office vLLM” and its stored key?")
    [question] = confirms(alice_client, providers, reverse("providers:pattern_delete", kwargs={"code": pattern.code}))
    assert question.startswith("Delete the privacy pattern [BADGE]?")

    token, _ = api_token_create(user=alice, name="laptop script")
    [_, question] = confirms(alice_client, reverse("accounts:settings"), reverse("accounts:settings"))  # create, revoke
    assert question.startswith("Revoke the token “laptop script”?")

    # An expired sign-in: the page still offers to disconnect, without asking the Hub for the account's models.
    HubConnection.objects.create(owner=alice, method=HubConnection.Method.TOKEN, endpoint="https://huggingface.co",
                                 username="alice-hf", needs_reconnect=True)
    [question] = confirms(alice_client, reverse("hub:connection"), reverse("hub:disconnect"))
    assert question.startswith("Disconnect the Hugging Face account “alice-hf”?")


@pytest.mark.django_db
def test_it_asks_before_generating_again_over_generated_pairs(alice, alice_client):
    dataset = dataset_create(owner=alice, name="Notes")
    detail = reverse("datasets:detail", kwargs={"code": dataset.code})
    generate = reverse("datasets:generate", kwargs={"code": dataset.code})
    qa_pair_create(dataset=dataset, question="Written by hand?", answer="Yes.")
    assert confirms(alice_client, detail, generate) == [None]  # nothing generated yet: nothing to lose

    for number in range(2):
        QAPair.objects.create(dataset=dataset, source=QAPair.Source.EXTRACTIVE, question=f"Q{number}?", answer="A.")
    [question] = confirms(alice_client, detail, generate)
    assert question.startswith("Generate the pairs again? The 2 generated pairs now in the dataset are replaced")


def test_every_destructive_form_in_the_templates_asks_first():
    """A guard for forms added later: each one that posts to a delete or disconnect URL, or revokes, has data-confirm."""
    unasked = []
    for template in TEMPLATES.rglob("*.html"):
        for form in re.finditer(r"<form\b(?P<tag>[^>]*)>(?P<body>.*?)</form>", template.read_text(), re.DOTALL):
            destructive = re.search(r"\{% url '[^']*(delete|disconnect)[^']*'|value=\"revoke", form.group(0))
            if destructive and "data-confirm=" not in form.group("tag"):
                unasked.append(f"{template.relative_to(TEMPLATES)}: {form.group('tag').strip()[:80]}")
    assert unasked == []
