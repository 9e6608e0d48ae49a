"""OpenAI-compatible routes, mounted at /v1/ (a client's base_url is http://host/v1)."""
from django.urls import path

from apps.playground import api

app_name = "openai"
urlpatterns = [
    path("models", api.models, name="models"),
    path("models/<path:model_id>", api.model_detail, name="model"),
    path("chat/completions", api.chat_completions, name="chat-completions"),
]
