"""The firebase-admin app of this project, built from settings, and ID token verification.

Firebase is optional: everything here is used only when settings.FIREBASE_PROJECT_ID is set.
"""
import logging
import os
import threading

import firebase_admin
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from firebase_admin import auth, credentials

logger = logging.getLogger(__name__)

# A named app, so that this project never fights over the default app with other code in the process.
APP_NAME = "gemma-garage"
# Seconds of clock difference tolerated between this server and Google's, so that a token minted a
# moment ago is not refused as "used too early" by a server whose clock runs slightly behind.
CLOCK_SKEW_SECONDS = 5

_lock = threading.Lock()
# The settings the current app was built from; a change (tests, a reload) builds a new app.
_built_from: tuple | None = None


class _NoCredential(credentials.Base):
    """Verifying ID tokens needs only Google's public certificates, never a credential.

    Without a service-account file, firebase-admin would otherwise look for application default
    credentials, which probes the cloud metadata server over the network.
    """

    def get_credential(self):
        return None


def is_enabled() -> bool:
    return bool(settings.FIREBASE_PROJECT_ID)


def emulator_host() -> str:
    """The Auth emulator address; firebase-admin reads the same variable by itself."""
    return os.environ.get("FIREBASE_AUTH_EMULATOR_HOST", "")


def can_check_revocation() -> bool:
    """Whether revoked tokens and disabled Firebase users can be told apart from live ones here.

    That is read from Google's Identity Toolkit API, which answers a service account only (FIREBASE_CREDENTIALS_FILE),
    or from the Auth emulator.
    """
    return bool(settings.FIREBASE_CREDENTIALS_FILE or emulator_host())


def get_app() -> firebase_admin.App:
    """The firebase-admin app for the configured project, created on first use."""
    global _built_from
    project_id = settings.FIREBASE_PROJECT_ID
    if not project_id:
        raise ImproperlyConfigured("Firebase is not enabled: FIREBASE_PROJECT_ID is not set.")
    credentials_file = settings.FIREBASE_CREDENTIALS_FILE or ""
    wanted = (project_id, credentials_file)
    with _lock:
        try:
            app = firebase_admin.get_app(APP_NAME)
        except ValueError:
            app = None
        if app is not None and _built_from == wanted:
            return app
        if app is not None:
            firebase_admin.delete_app(app)
        cred = credentials.Certificate(credentials_file) if credentials_file else _NoCredential()
        # The project id is passed explicitly so that firebase-admin never asks the network for it.
        app = firebase_admin.initialize_app(cred, {"projectId": project_id}, name=APP_NAME)
        _built_from = wanted
        if emulator_host():
            logger.warning(
                "FIREBASE_AUTH_EMULATOR_HOST is set: Firebase ID tokens are accepted without any "
                "signature check. Never set it on a server that real people use."
            )
        return app


def verify_id_token(id_token: str) -> dict:
    """The verified claims of a Firebase ID token (firebase-admin's exceptions pass through).

    Also asks Firebase whether the user's tokens were revoked (a password change, a sign-out everywhere, an
    administrator's revoke) or the user disabled since this token was issued: a stolen token must stop working then,
    not an hour later when it expires.
    """
    return auth.verify_id_token(id_token, app=get_app(), check_revoked=True, clock_skew_seconds=CLOCK_SKEW_SECONDS)
