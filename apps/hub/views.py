from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_POST

from apps.hub.connections import (
    OAuthStateError,
    hub_connection_create_with_token,
    hub_connection_delete,
    hub_endpoint,
    hub_oauth_available,
    hub_oauth_finish,
    hub_oauth_start,
    hub_repo_list,
)
from apps.hub.forms import PreferencesForm, PublishForm, TokenForm
from apps.hub.pushes import (
    ConfirmationRequired,
    hub_preferences_update,
    hub_publish_gate,
    hub_push_start,
    hub_repo_name_render,
)
from apps.hub.selectors import hub_connection_get, hub_preferences_get, hub_push_choices, hub_push_get_for_user, hub_push_list_for_user
from apps.training.models import FineTune
from apps.training.selectors import finetune_get_for_user


def _page(request, *, token_form=None, preferences_form=None, status=200):
    connection = hub_connection_get(user=request.user)
    repos, repos_error = None, ""
    if connection is not None and connection.is_usable:
        try:
            repos = Paginator(hub_repo_list(connection=connection), 20).get_page(request.GET.get("page"))
        except ValidationError as exc:
            repos_error = " ".join(exc.messages)
            connection.refresh_from_db()  # a failed refresh marks it as needing a new sign-in
    return render(request, "hub/connection.html", {
        "connection": connection, "repos": repos, "repos_error": repos_error,
        "oauth_available": hub_oauth_available(), "endpoint": hub_endpoint(),
        "token_form": token_form or TokenForm(),
        "preferences_form": preferences_form or PreferencesForm(instance=hub_preferences_get(user=request.user)),
        "pushes": hub_push_list_for_user(user=request.user)[:5],
    }, status=status)


@login_required
def connection_page(request):
    """The connected account (or how to connect one), its repositories, and the publishing preferences."""
    return _page(request)


@login_required
def oauth_connect(request):
    """Send the browser to Hugging Face to sign in; it comes back to oauth_callback."""
    try:
        url = hub_oauth_start(session=request.session, redirect_uri=request.build_absolute_uri(reverse("hub:callback")))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("hub:connection")
    return redirect(url)


@sensitive_variables()
@login_required
def oauth_callback(request):
    try:
        connection = hub_oauth_finish(owner=request.user, session=request.session, params=request.GET)
    except ValidationError as exc:  # OAuthStateError included: a forged or replayed callback
        return render(request, "hub/oauth_error.html", {"message": " ".join(exc.messages),
                                                        "state_error": isinstance(exc, OAuthStateError)}, status=400)
    messages.success(request, f"Connected to Hugging Face as {connection.username}.")
    return redirect("hub:connection")


@sensitive_post_parameters("token")
@sensitive_variables()
@require_POST
@login_required
def token_connect(request):
    form = TokenForm(request.POST)
    if form.is_valid():
        try:
            connection = hub_connection_create_with_token(owner=request.user, token=form.cleaned_data["token"])
        except ValidationError as exc:
            form.add_error("token", exc)
        else:
            messages.success(request, f"Connected to Hugging Face as {connection.username}.")
            return redirect("hub:connection")
    return _page(request, token_form=form, status=400)


@require_POST
@login_required
def disconnect(request):
    connection = hub_connection_get(user=request.user)
    if connection is not None:
        hub_connection_delete(connection=connection)
        messages.success(request, "Disconnected from Hugging Face; the stored tokens were deleted.")
    return redirect("hub:connection")


@require_POST
@login_required
def preferences_update(request):
    form = PreferencesForm(request.POST, instance=hub_preferences_get(user=request.user))
    if form.is_valid():
        try:
            hub_preferences_update(owner=request.user, **{name: form.cleaned_data[name] for name in form.Meta.fields})
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, "Publishing preferences saved.")
            return redirect("hub:connection")
    return _page(request, preferences_form=form, status=400)


@login_required
def publish(request, code):
    """The publish form of one fine-tune: what to push, where, and the evaluation gate's verdict."""
    finetune = finetune_get_for_user(user=request.user, code=code)
    connection = hub_connection_get(user=request.user)
    choices = hub_push_choices(finetune=finetune)
    gate = hub_publish_gate(finetune=finetune)
    try:  # the model's name as a valid repository name ("Lumen Valley v2 · run 3" → "Lumen-Valley-v2-run-3")
        repo = hub_repo_name_render(pattern="{name}", name=finetune.name[:96])
    except ValidationError:
        repo = "model"
    initial = {"repo": repo, "private": True}
    form = PublishForm(request.POST or None, choices=choices, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                job = hub_push_start(finetune=finetune, **form.cleaned_data)
            except ConfirmationRequired as exc:
                form.add_error("confirm_worse", exc)
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, "Push started; its progress shows below.")
                return redirect("hub:push", code=job.code)
        status = 409 if gate.blocked else 400
    return render(request, "hub/publish.html", {
        "finetune": finetune, "connection": connection, "choices": choices, "gate": gate, "form": form,
        "pushes": hub_push_list_for_user(user=request.user, finetune=finetune)[:10],
    }, status=status)


@login_required
def push_list(request):
    page = Paginator(hub_push_list_for_user(user=request.user), 20).get_page(request.GET.get("page"))
    return render(request, "hub/push_list.html", {"page": page})


@login_required
def push_detail(request, code):
    job = hub_push_get_for_user(user=request.user, code=code)
    finetune = FineTune.objects.filter(pk=job.config.get("finetune"), owner=request.user).first()
    return render(request, "hub/push_detail.html", {"job": job, "finetune": finetune})
