"""Writes of the accounts app: users, personal API tokens, Firebase sign-in."""
import logging
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from firebase_admin import auth as firebase_auth
from firebase_admin import exceptions as firebase_exceptions
from google.auth import exceptions as google_auth_exceptions

from apps.accounts import firebase
from apps.accounts.models import (
    API_TOKEN_PREFIX,
    API_TOKEN_VISIBLE_CHARS,
    ApiToken,
    User,
    api_token_hash,
    api_token_secret_new,
)

logger = logging.getLogger(__name__)

# A token's last use is recorded at most this often, so that a busy script does not turn every API
# read into a database write.
LAST_USED_PRECISION = timedelta(minutes=1)


class FirebaseSignInError(Exception):
    """A Firebase ID token was refused; `message` is safe to show (it never contains the token)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class FirebaseUnavailableError(FirebaseSignInError):
    """Google's public certificates could not be fetched, so no token can be checked right now."""


def user_create(*, email: str, password: str | None) -> User:
    """Creates a user who signs in with this email. Side effect: one User row.

    A None password makes an account that can sign in only through Firebase until a password is set.
    """
    return User.objects.create_user(email=email, password=password)


def api_token_create(*, user: User, name: str) -> tuple[ApiToken, str]:
    """Creates a personal API token for the user and returns it with its secret.

    Side effect: one ApiToken row holding the token's hash. The secret is returned here and
    nowhere else; nothing can show it again later.
    """
    name = (name or "").strip()
    if not name:
        raise ValidationError("Give the token a name, such as “laptop script”, so you can recognise it later.")
    secret = api_token_secret_new()
    token = ApiToken.objects.create(
        owner=user, name=name[:100], prefix=secret[:API_TOKEN_VISIBLE_CHARS], key_hash=api_token_hash(secret)
    )
    return token, secret


def api_token_revoke(*, token: ApiToken) -> None:
    """Revokes the token. Side effect: deletes its row, so the next request that uses it is refused."""
    token.delete()


def api_token_authenticate(*, secret: str) -> ApiToken | None:
    """The live token with this secret, or None. Side effect: records when it was last used."""
    if not secret.startswith(API_TOKEN_PREFIX):
        return None
    token = ApiToken.objects.select_related("owner").filter(key_hash=api_token_hash(secret)).first()
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_PRECISION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def _firebase_claims(id_token: str) -> dict:
    """Verified claims, or FirebaseSignInError with a readable reason."""
    if not firebase.is_enabled():
        raise FirebaseSignInError("Firebase sign-in is not enabled on this server.")
    if not isinstance(id_token, str) or not id_token.strip():
        raise FirebaseSignInError("No Firebase ID token was sent.")
    if not firebase.can_check_revocation():
        # Accepting tokens without that check would keep a revoked (stolen) token working until it expires.
        logger.error("Firebase sign-in is refused: set FIREBASE_CREDENTIALS_FILE to a service account key of the "
                     "Firebase project, so that revoked tokens and disabled users can be recognised.")
        raise FirebaseUnavailableError(
            "Firebase sign-in is not fully set up on this server. Ask its administrator, or sign in with your password."
        )
    try:
        return firebase.verify_id_token(id_token.strip())
    # Only the exception's class is logged: firebase-admin quotes the token in some of its messages.
    except firebase_auth.ExpiredIdTokenError:
        raise FirebaseSignInError("Your Firebase sign-in has expired. Sign in again to get a fresh token.")
    except firebase_auth.RevokedIdTokenError:
        raise FirebaseSignInError("This Firebase sign-in was revoked. Sign in again.")
    except firebase_auth.UserDisabledError:
        raise FirebaseSignInError("Your Firebase account is disabled.")
    except firebase_auth.UserNotFoundError:
        raise FirebaseSignInError("Your Firebase account no longer exists.")
    except firebase_auth.CertificateFetchError as exc:
        logger.warning("Could not fetch Google's Firebase certificates (%s).", type(exc).__name__)
        raise FirebaseUnavailableError("Firebase sign-in cannot be checked right now. Try again in a minute.")
    except (firebase_auth.InvalidIdTokenError, ValueError) as exc:
        logger.info("Refused a Firebase ID token (%s).", type(exc).__name__)
        raise FirebaseSignInError(
            "This Firebase ID token is not valid for this server: it is malformed, badly signed, "
            "or issued for another Firebase project."
        )
    except (firebase_exceptions.FirebaseError, google_auth_exceptions.GoogleAuthError) as exc:
        # The revocation lookup failed: Google unreachable, or the service account refused.
        logger.warning("Could not check a Firebase user's revocation status (%s).", type(exc).__name__)
        raise FirebaseUnavailableError("Firebase sign-in cannot be checked right now. Try again in a minute.")


def user_from_firebase_token(*, id_token: str) -> User:
    """The user a verified Firebase ID token belongs to, created on their first sign-in.

    Looks the user up by Firebase uid, then by email, which Firebase must say is verified.
    Side effects: may create a User (with no usable password) or record the Firebase uid on an
    existing one. An unverified email never creates or joins an account: anyone can create a
    Firebase account with someone else's address, and would otherwise walk into their data, or
    take the address before its owner signs up.
    """
    claims = _firebase_claims(id_token)
    uid = claims["uid"]
    email = User.objects.normalize_email(claims.get("email") or "").strip().lower()
    email_verified = bool(claims.get("email_verified"))

    user = User.objects.filter(firebase_uid=uid).first()
    if user is None:
        if not email:
            raise FirebaseSignInError("Your Firebase account has no email address; Gemma Garage needs one.")
        if not email_verified:
            raise FirebaseSignInError(
                "Verify your email address first: open the link Firebase sent to it, then sign in again."
            )
        existing = User.objects.filter(email__iexact=email).first()
        if existing is not None:
            if existing.firebase_uid:
                raise FirebaseSignInError("This email already belongs to an account linked to another Firebase user.")
            existing.firebase_uid = uid
            existing.save(update_fields=["firebase_uid"])
            user = existing
        else:
            user = _user_create_for_firebase(uid=uid, email=email)
    if not user.is_active:
        raise FirebaseSignInError("This account is disabled. Ask the administrator of this server.")
    return user


def _user_create_for_firebase(*, uid: str, email: str) -> User:
    try:
        with transaction.atomic():
            return User.objects.create_user(email=email, password=None, firebase_uid=uid)
    except IntegrityError:
        # Two first sign-ins raced (a page and a script, say); the other one created the user.
        user = User.objects.filter(firebase_uid=uid).first()
        if user is None:
            raise FirebaseSignInError("An account with this email already exists; sign in with your password.")
        return user
