"""DRF authentication: personal API tokens and Firebase ID tokens, both sent as `Authorization: Bearer …`."""
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from apps.accounts import firebase
from apps.accounts.models import API_TOKEN_PREFIX
from apps.accounts.services import (
    FirebaseSignInError,
    FirebaseUnavailableError,
    api_token_authenticate,
    user_from_firebase_token,
)


class ServiceUnavailable(exceptions.APIException):
    status_code = 503
    default_detail = "Sign-in cannot be checked right now. Try again in a minute."
    default_code = "service_unavailable"


def _bearer_token(request) -> str | None:
    """The credential after `Bearer`, or None when the header is absent or uses another scheme."""
    parts = get_authorization_header(request).split()
    if len(parts) != 2 or parts[0].lower() != b"bearer":
        return None
    try:
        return parts[1].decode("ascii")
    except UnicodeDecodeError:
        raise exceptions.AuthenticationFailed("The Authorization header holds characters a token never has.")


class ApiTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer gg_…`: a personal API token created on the settings page."""

    def authenticate(self, request):
        secret = _bearer_token(request)
        if secret is None or not secret.startswith(API_TOKEN_PREFIX):
            # Not ours: a Firebase ID token or another scheme, left to the next class.
            return None
        token = api_token_authenticate(secret=secret)
        if token is None:
            raise exceptions.AuthenticationFailed("This API token is not valid: it was revoked or mistyped.")
        if not token.owner.is_active:
            raise exceptions.AuthenticationFailed("The account this API token belongs to is disabled.")
        return token.owner, token

    def authenticate_header(self, request):
        # A header here makes DRF answer 401 (not 403) to unauthenticated requests.
        return 'Bearer realm="api"'


class FirebaseAuthentication(BaseAuthentication):
    """`Authorization: Bearer <Firebase ID token>`, active only when FIREBASE_PROJECT_ID is set."""

    def authenticate(self, request):
        if not firebase.is_enabled():
            return None
        id_token = _bearer_token(request)
        if id_token is None or id_token.startswith(API_TOKEN_PREFIX):
            return None
        try:
            user = user_from_firebase_token(id_token=id_token)
        except FirebaseUnavailableError as exc:
            raise ServiceUnavailable(exc.message)
        except FirebaseSignInError as exc:
            raise exceptions.AuthenticationFailed(exc.message)
        return user, None

    def authenticate_header(self, request):
        return 'Bearer realm="api"'
