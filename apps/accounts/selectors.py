"""Reads of the accounts app."""
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404

from apps.accounts.models import ApiToken


def api_token_list_for_user(*, user) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(owner=user)


def api_token_get_for_user(*, user, code) -> ApiToken:
    """The user's token with this code; 404 for anyone else, so strangers cannot even learn it exists."""
    try:
        return ApiToken.objects.get(owner=user, code=code)
    except (ApiToken.DoesNotExist, ValidationError, ValueError, TypeError):
        # A malformed code (not a UUID) is as unknown as a stranger's.
        raise Http404("No such API token.")
