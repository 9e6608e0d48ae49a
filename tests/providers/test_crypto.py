import pytest
from cryptography.fernet import Fernet

from apps.core.crypto import DecryptionError, decrypt, encrypt, encryption_rotate


def test_it_round_trips_with_a_key_derived_from_the_secret_key(settings):
    settings.GARAGE_ENCRYPTION_KEY = ""
    token = encrypt("sk-secret")
    assert "sk-secret" not in token and decrypt(token) == "sk-secret"
    assert encrypt("sk-secret") != token  # a fresh nonce each time


def test_it_refuses_tokens_from_another_key_or_tampered_ones(settings):
    settings.GARAGE_ENCRYPTION_KEY = ""
    token = encrypt("sk-secret")
    with pytest.raises(DecryptionError):
        decrypt(token[:-4] + "AAAA")
    settings.SECRET_KEY = "another secret key entirely"
    with pytest.raises(DecryptionError):
        decrypt(token)


def test_it_rotates_to_a_configured_key_and_keeps_old_values_readable(settings):
    settings.GARAGE_ENCRYPTION_KEY = ""
    old = encrypt("sk-secret")
    new_key = Fernet.generate_key().decode()
    settings.GARAGE_ENCRYPTION_KEY = f"{new_key},a passphrase that is not a fernet key"
    assert decrypt(old) == "sk-secret"  # the key derived from SECRET_KEY still decrypts
    rotated = encryption_rotate(old)
    assert Fernet(new_key.encode()).decrypt(rotated.encode()) == b"sk-secret"
    settings.GARAGE_ENCRYPTION_KEY = "a passphrase that is not a fernet key"
    with pytest.raises(DecryptionError):
        decrypt(rotated)  # the dropped key is gone for good
    assert decrypt(encrypt("x")) == "x"
