"""The playground page: one prompt, several models side by side, answers streamed over the websocket."""
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from apps.playground.consumers import MAX_COLUMNS
from apps.playground.selectors import chat_model_default_ids, chat_model_get_for_user, chat_model_list_for_user
from apps.playground.services import inference_options


@login_required
def playground(request):
    """`?model=<id>` (repeatable) picks the columns; a model that is not the user's answers 404, like every page."""
    ids = request.GET.getlist("model")[:MAX_COLUMNS] or chat_model_default_ids(user=request.user)
    columns = [chat_model_get_for_user(user=request.user, model_id=i) for i in dict.fromkeys(ids)]
    chosen = {m.id for m in columns}
    return render(request, "playground/playground.html", {
        "columns": columns, "choices": [(m, m.id in chosen) for m in chat_model_list_for_user(user=request.user)],
        "defaults": inference_options({}), "max_tokens_limit": settings.GARAGE_INFERENCE_MAX_TOKENS,
        "max_columns": MAX_COLUMNS
    })
