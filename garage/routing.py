from django.urls import path

from apps.core.consumers import JobConsumer

websocket_urlpatterns = [
    path("ws/jobs/<uuid:code>/", JobConsumer.as_asgi()),
]
