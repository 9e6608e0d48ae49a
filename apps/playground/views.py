"""The playground page: one prompt, several models side by side, answers streamed over the websocket."""
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from apps.playground.consumers import MAX_COLUMNS
from apps.playground.selectors import chat_model_default_ids, chat_model_get_for_user, chat_model_list_for_user
from apps.playground.services import inference_options
from apps.prompts.selectors import PICKER_LIMIT, saved_prompt_get_for_user, saved_prompt_list_for_user


@login_required
def playground(request):
    """`?model=<id>` (repeatable) picks the columns; a model that is not the user's answers 404, like every page.
    `?prompt=<saved prompt code>` puts one of the user's saved prompts into the system prompt box (404 for others')."""
    ids = request.GET.getlist("model")[:MAX_COLUMNS] or chat_model_default_ids(user=request.user)
    columns = [chat_model_get_for_user(user=request.user, model_id=i) for i in dict.fromkeys(ids)]
    chosen = {m.id for m in columns}
    code = request.GET.get("prompt")
    preselected = saved_prompt_get_for_user(user=request.user, code=code) if code else None
    # The texts travel in the page (json_script) so that picking a prompt fills the box without another request.
    saved_prompts = list(saved_prompt_list_for_user(user=request.user)[:PICKER_LIMIT])
    if preselected is not None and preselected not in saved_prompts:
        saved_prompts.insert(0, preselected)
    return render(request, "playground/playground.html", {
        "columns": columns, "choices": [(m, m.id in chosen) for m in chat_model_list_for_user(user=request.user)],
        "defaults": inference_options({}), "max_tokens_limit": settings.GARAGE_INFERENCE_MAX_TOKENS,
        "max_columns": MAX_COLUMNS, "saved_prompts": saved_prompts, "preselected": preselected,
        "saved_prompt_texts": {str(p.code): p.text for p in saved_prompts},
    })
