"""Reads of the providers app. Every getter answers 404 to anyone but the owner."""
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404

from apps.providers.models import ExternalCallAudit, PiiPattern, ProviderCredential


def provider_credential_list_for_user(*, user) -> QuerySet[ProviderCredential]:
    return ProviderCredential.objects.filter(owner=user)


def provider_credential_get_for_user(*, user, code) -> ProviderCredential:
    """The user's credential; 404 for anyone else, so strangers cannot even learn that it exists."""
    try:
        return ProviderCredential.objects.get(owner=user, code=code)
    except (ProviderCredential.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such provider.")


def pii_pattern_list_for_user(*, user) -> QuerySet[PiiPattern]:
    return PiiPattern.objects.filter(owner=user)


def pii_pattern_get_for_user(*, user, code) -> PiiPattern:
    try:
        return PiiPattern.objects.get(owner=user, code=code)
    except (PiiPattern.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such pattern.")


def external_call_audit_list_for_user(*, user) -> QuerySet[ExternalCallAudit]:
    return ExternalCallAudit.objects.filter(owner=user).select_related("job", "credential")


def external_call_audit_get_for_user(*, user, code) -> ExternalCallAudit:
    try:
        return external_call_audit_list_for_user(user=user).get(code=code)
    except (ExternalCallAudit.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such audit entry.")


def site_default_endpoint() -> dict | None:
    """The site-wide endpoint from settings (without its key), or None when none is configured."""
    if not (settings.GARAGE_LLM_BASE_URL and settings.GARAGE_LLM_MODEL):
        return None
    return {"base_url": settings.GARAGE_LLM_BASE_URL, "model": settings.GARAGE_LLM_MODEL}
