"""System checks of the accounts app, shown by `garage check` and at every start."""
from django.core import checks

from apps.accounts import firebase


@checks.register(checks.Tags.security)
def firebase_credentials(app_configs, **kwargs):
    """Firebase sign-in is refused without a service account: revoked tokens could not be recognised."""
    if firebase.is_enabled() and not firebase.can_check_revocation():
        return [checks.Warning(
            "FIREBASE_PROJECT_ID is set without FIREBASE_CREDENTIALS_FILE: Firebase sign-in is refused until a "
            "service account key of the project is given, since revoked tokens could not be recognised without one.",
            hint="Download a key (Firebase console › Project settings › Service accounts) and set "
                 "FIREBASE_CREDENTIALS_FILE to its path.",
            id="accounts.W001",
        )]
    return []
