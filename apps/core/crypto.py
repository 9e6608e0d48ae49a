"""Encryption of secrets kept in the database (provider API keys): Fernet, authenticated AES.

The key comes from GARAGE_ENCRYPTION_KEY when set, else it is derived from SECRET_KEY with HKDF (so the
embedded default needs no extra setting). GARAGE_ENCRYPTION_KEY holds one or more keys separated by
commas; each is either a Fernet key (32 url-safe base64 bytes, `Fernet.generate_key()`) or any other
string, which is stretched with HKDF.

Key rotation, and its limits:
- The first key encrypts; every listed key, and the key derived from SECRET_KEY, can decrypt. To rotate,
  put the new key first and keep the old ones after it, run `encryption_rotate` on every stored value
  (apps.providers.services.provider_credentials_reencrypt does that for the provider keys), then drop
  the old keys.
- Changing SECRET_KEY while GARAGE_ENCRYPTION_KEY is unset makes every stored secret unreadable: the old
  key is gone. Users then have to enter their keys again (decryption fails with DecryptionError, which the
  callers turn into a readable message). Set GARAGE_ENCRYPTION_KEY before changing SECRET_KEY.
- Workers decrypt too, so every web and worker process needs the same keys.
- Encryption protects a copied database or backup, not a compromised server: whoever can read the
  environment (or var/secret_key) can decrypt."""
from __future__ import annotations

import base64
import binascii
import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

# Changing this info string would orphan every value encrypted with a key derived from SECRET_KEY.
_HKDF_INFO = b"gemma-garage encryption v1"


class DecryptionError(Exception):
    """A stored secret cannot be decrypted with the configured keys (they changed, or it was tampered with)."""


def _derive(secret: str) -> bytes:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(secret.encode())
    return base64.urlsafe_b64encode(key)


def _as_fernet_key(value: str) -> bytes:
    """A configured key as a Fernet key: used as is when it already is one, stretched with HKDF otherwise."""
    try:
        if len(base64.urlsafe_b64decode(value.encode())) == 32:
            return value.encode()
    except (binascii.Error, ValueError):
        pass
    return _derive(value)


@functools.lru_cache(maxsize=4)
def _fernet(configured: str, secret_key: str) -> MultiFernet:
    keys = [_as_fernet_key(k.strip()) for k in configured.split(",") if k.strip()]
    keys.append(_derive(secret_key))  # values stored before GARAGE_ENCRYPTION_KEY was set stay readable
    return MultiFernet([Fernet(k) for k in keys])


def _current() -> MultiFernet:
    return _fernet(getattr(settings, "GARAGE_ENCRYPTION_KEY", "") or "", settings.SECRET_KEY)


def encrypt(plaintext: str) -> str:
    """The text encrypted with the current key, as a url-safe ASCII token."""
    return _current().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """The text a token was made from. Raises DecryptionError when no configured key opens it."""
    try:
        return _current().decrypt(token.encode()).decode()
    except (InvalidToken, ValueError, TypeError, AttributeError) as exc:
        raise DecryptionError("The stored secret cannot be decrypted with this server's encryption keys.") from exc


def encryption_rotate(token: str) -> str:
    """The same secret re-encrypted with the current (first) key."""
    try:
        return _current().rotate(token.encode()).decode()
    except (InvalidToken, ValueError, TypeError, AttributeError) as exc:
        raise DecryptionError("The stored secret cannot be decrypted with this server's encryption keys.") from exc
