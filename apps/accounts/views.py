import json

from django.conf import settings as django_settings
from django.contrib import messages
from django.contrib.auth import login, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm, SetPasswordForm
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from apps.accounts import firebase
from apps.accounts.forms import ApiTokenForm, SignInForm, SignUpForm
from apps.accounts.selectors import api_token_get_for_user, api_token_list_for_user
from apps.accounts.services import (
    FirebaseSignInError,
    FirebaseUnavailableError,
    api_token_create,
    api_token_revoke,
    user_create,
    user_from_firebase_token,
)
from apps.accounts.throttling import client_ip, throttle_wait, throttled_message, throttled_page

# Users made by sign-up or Firebase are logged in without a password check, so Django must be told
# which backend vouches for them.
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


class SignInView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = SignInForm
    redirect_authenticated_user = True


class SignOutView(auth_views.LogoutView):
    """Signs out on a POST only, so that a link or an image cannot sign anyone out. A GET (a typed or bookmarked
    address) shows a page that asks, with the button that sends the POST."""

    http_method_names = ["get", "post", "options"]
    template_name = "accounts/logout_confirm.html"

    def get(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect(self.get_success_url())
        return render(request, self.template_name)


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "accounts/password_reset_form.html"
    email_template_name = "accounts/password_reset_email.txt"
    subject_template_name = "accounts/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")

    def post(self, request, *args, **kwargs):
        # Limited per address and per email asked for: each request sends an email, to an inbox that may not be the
        # sender's. The same answer whether or not an account uses the email, so the limit reveals nothing.
        email = (request.POST.get("email") or "").strip().lower()
        wait = throttle_wait(scope="password_reset", ident=f"ip:{client_ip(request)}")
        if wait is None and email:
            wait = throttle_wait(scope="password_reset", ident=f"email:{email}")
        if wait:
            return throttled_page(request, wait=wait, message=(
                f"{throttled_message(wait, 'password reset requests')} A link already sent stays valid."))
        return super().post(request, *args, **kwargs)


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"


def _safe_next(request, default: str, target: str | None = None) -> str:
    """The `next` URL when it points back into this site, else the default (no open redirects)."""
    target = target or request.POST.get("next") or request.GET.get("next")
    if isinstance(target, str) and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return resolve_url(default)


@sensitive_post_parameters("password1", "password2")
@csrf_protect
@never_cache
def signup(request):
    if request.user.is_authenticated:
        return redirect(django_settings.LOGIN_REDIRECT_URL)
    if request.method == "POST":
        wait = throttle_wait(scope="signup", ident=f"ip:{client_ip(request)}")
        if wait:
            return throttled_page(request, wait=wait, message=throttled_message(wait, "sign-ups from this address"))
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = user_create(email=form.cleaned_data["email"], password=form.cleaned_data["password1"])
        login(request, user, backend=MODEL_BACKEND)
        messages.success(request, "Welcome! Your account is ready.")
        return redirect(_safe_next(request, django_settings.LOGIN_REDIRECT_URL))
    next_url = request.POST.get("next") or request.GET.get("next", "")
    return render(request, "accounts/signup.html", {"form": form, "next": next_url})


def _password_form_class(user):
    # Accounts created through Firebase have no password yet: they may set one without an old one.
    return PasswordChangeForm if user.has_usable_password() else SetPasswordForm


@sensitive_post_parameters("old_password", "new_password1", "new_password2")
@never_cache
@login_required
def account_settings(request):
    """The settings page: account details, password, and personal API tokens.

    Every form on the page posts here with an `action` field naming what it does.
    """
    user = request.user
    token_form = ApiTokenForm()
    password_form = _password_form_class(user)(user)
    new_secret = None
    action = request.POST.get("action") if request.method == "POST" else None

    if action == "create_token":
        token_form = ApiTokenForm(request.POST)
        if token_form.is_valid():
            try:
                token, new_secret = api_token_create(user=user, name=token_form.cleaned_data["name"])
            except ValidationError as exc:
                token_form.add_error("name", exc)
            else:
                # The page is rendered right here instead of redirecting, so the secret is never stored
                # anywhere (not even in the session) on its way to the browser.
                token_form = ApiTokenForm()
                messages.success(request, f"Created the token “{token.name}”.")
    elif action == "revoke_token":
        token = api_token_get_for_user(user=user, code=request.POST.get("token"))
        api_token_revoke(token=token)
        messages.success(request, f"Revoked the token “{token.name}”. Programs that use it are now refused.")
        return redirect("accounts:settings")
    elif action == "change_password":
        password_form = _password_form_class(user)(user, request.POST)
        if password_form.is_valid():
            password_form.save()
            # Keeps this browser signed in; other sessions of the user are signed out by the change.
            update_session_auth_hash(request, password_form.user)
            messages.success(request, "Your password was changed.")
            return redirect("accounts:settings")
    elif request.method == "POST":
        messages.error(request, "That form is not known to this page; reload the page and try again.")
        return redirect("accounts:settings")

    return render(request, "accounts/settings.html", {
        "tokens": api_token_list_for_user(user=user),
        "token_form": token_form,
        "password_form": password_form,
        "new_secret": new_secret,
        "api_url": request.build_absolute_uri(reverse("api-me")),
    })


@require_POST
@csrf_protect
@never_cache
def firebase_session(request):
    """Signs the browser in with a Firebase ID token that the Firebase JS SDK obtained; answers JSON."""
    if not firebase.is_enabled():
        return JsonResponse({"ok": False, "message": "Firebase sign-in is not enabled on this server."}, status=404)
    if request.content_type == "application/json":
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return JsonResponse({"ok": False, "message": "The request body is not valid JSON."}, status=400)
        body = body if isinstance(body, dict) else {}
    else:
        body = request.POST
    id_token, next_url = body.get("id_token"), body.get("next")
    if not id_token:
        return JsonResponse({"ok": False, "message": "No Firebase ID token was sent (field `id_token`)."}, status=400)
    try:
        user = user_from_firebase_token(id_token=id_token)
    except FirebaseUnavailableError as exc:
        return JsonResponse({"ok": False, "message": exc.message}, status=503)
    except FirebaseSignInError as exc:
        return JsonResponse({"ok": False, "message": exc.message}, status=401)
    login(request, user, backend=MODEL_BACKEND)
    return JsonResponse({"ok": True, "email": user.email, "redirect": _safe_next(request, django_settings.LOGIN_REDIRECT_URL, next_url)})
