from django.urls import path

from apps.core.consumers import JobConsumer, UserJobsConsumer
from apps.playground.consumers import PlaygroundConsumer

websocket_urlpatterns = [
    path("ws/jobs/", UserJobsConsumer.as_asgi()),
    path("ws/jobs/<uuid:code>/", JobConsumer.as_asgi()),
    path("ws/playground/", PlaygroundConsumer.as_asgi()),
]
