from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from apps.providers.forms import PiiPatternForm, ProviderCredentialForm
from apps.providers.selectors import (
    external_call_audit_list_for_user,
    pii_pattern_get_for_user,
    pii_pattern_list_for_user,
    provider_credential_get_for_user,
    provider_credential_list_for_user,
    site_default_endpoint,
)
from apps.providers.services import (
    pii_pattern_create,
    pii_pattern_delete,
    provider_credential_create,
    provider_credential_delete,
    provider_credential_test,
)


def _page(request, form=None, pattern_form=None, status=200):
    return render(request, "providers/provider_list.html", {
        "credentials": provider_credential_list_for_user(user=request.user),
        "form": form or ProviderCredentialForm(),
        "patterns": pii_pattern_list_for_user(user=request.user),
        "pattern_form": pattern_form or PiiPatternForm(),
        "site_default": site_default_endpoint(),
        "recent_calls": external_call_audit_list_for_user(user=request.user)[:10],
    }, status=status)


@sensitive_post_parameters("api_key")
@login_required
def provider_list(request):
    """The user's providers (GET) and saving a new one (POST)."""
    if request.method != "POST":
        return _page(request)
    form = ProviderCredentialForm(request.POST)
    if form.is_valid():
        try:
            credential = provider_credential_create(owner=request.user, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Saved the provider “{credential.name}”.")
            return redirect("providers:list")
    return _page(request, form=form, status=400)


@require_POST
@login_required
def provider_delete(request, code):
    credential = provider_credential_get_for_user(user=request.user, code=code)
    provider_credential_delete(credential=credential)
    messages.success(request, f"Deleted the provider “{credential.name}” and its key.")
    return redirect("providers:list")


@require_POST
@login_required
def provider_test(request, code):
    """Sends one tiny request to the endpoint and says how it went."""
    credential = provider_credential_get_for_user(user=request.user, code=code)
    ok, message = provider_credential_test(credential=credential)
    (messages.success if ok else messages.error)(request, message)
    return redirect("providers:list")


@require_POST
@login_required
def pattern_create(request):
    form = PiiPatternForm(request.POST)
    if form.is_valid():
        try:
            pattern = pii_pattern_create(owner=request.user, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error("pattern", exc)
        else:
            messages.success(request, f"Added the pattern [{pattern.label}].")
            return redirect("providers:list")
    return _page(request, pattern_form=form, status=400)


@require_POST
@login_required
def pattern_delete(request, code):
    pattern = pii_pattern_get_for_user(user=request.user, code=code)
    pii_pattern_delete(pattern=pattern)
    messages.success(request, f"Deleted the pattern [{pattern.label}].")
    return redirect("providers:list")


@login_required
def audit_list(request):
    """Every request that sent the user's text to an external endpoint, newest first."""
    page = Paginator(external_call_audit_list_for_user(user=request.user), 50).get_page(request.GET.get("page"))
    return render(request, "providers/audit_list.html", {"page": page})
