"""Shared fixtures: the users alice (owner), bob and charlie (strangers), API clients, files."""
import pytest
from rest_framework.test import APIClient

from tests.factories import UserFactory

PASSWORD = "correct horse battery staple"


@pytest.fixture
def alice(db):
    return UserFactory(email="alice@example.com", password=PASSWORD)


@pytest.fixture
def bob(db):
    return UserFactory(email="bob@example.com", password=PASSWORD)


@pytest.fixture
def charlie(db):
    return UserFactory(email="charlie@example.com", password=PASSWORD)


def _api_client(user):
    client = APIClient()
    client.force_authenticate(user=user)
    return client


@pytest.fixture
def alice_api(alice):
    return _api_client(alice)


@pytest.fixture
def bob_api(bob):
    return _api_client(bob)


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client
