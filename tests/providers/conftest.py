import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.datasets.services import dataset_create, document_upload
from apps.providers.services import provider_credential_create
from tests.fixtures.jobs import run_job

ALICE_KEY = "sk-alice-secret-key-0123456789abcd"
TEXT = ("The capital of the valley is Eldhavn. Write to mayor@eldhavn.example or call +44 20 7946 0958.\n\n"
        "The longest river is the Sorrel. Its ferry takes card 4111 1111 1111 1111.\n")


@pytest.fixture
def llm_settings(settings):
    """Fast retries for tests that run the generator in this process."""
    settings.GARAGE_LLM_MAX_RETRIES = 1
    settings.GARAGE_LLM_TIMEOUT = 5
    settings.GARAGE_LLM_CONCURRENCY = 2
    return settings


@pytest.fixture
def extracted_dataset(alice):
    """Alice's dataset with one extracted document holding personal data."""
    dataset = dataset_create(owner=alice, name="Valley", description="Answer questions about the valley")
    document = document_upload(dataset=dataset, uploaded_file=SimpleUploadedFile("valley.md", TEXT.encode()), start=False)
    run_job(document.job)  # as a worker runs it: the document is extracted once its job succeeded
    return dataset


@pytest.fixture
def alice_provider(alice, chat_server):
    """Alice's saved provider pointing at the fake chat server, which insists on her key."""
    chat_server.api_key = ALICE_KEY
    return provider_credential_create(owner=alice, name="Lab vLLM", base_url=chat_server.url, model=chat_server.model,
                                      api_key=ALICE_KEY)
