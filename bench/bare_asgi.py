"""A bare Channels websocket app for the benchmark's baseline: no auth, no database, no snapshot.

The consumer joins the group named in its URL and forwards each group message as JSON. It is served by
its own uvicorn process, so the real application (garage.asgi) is measured untouched."""
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "garage.settings")

import django  # noqa: E402

django.setup()

from channels.generic.websocket import AsyncJsonWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402


class BareConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.group = self.scope["url_route"]["kwargs"]["group"]
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "ready"})

    async def disconnect(self, close_code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def bench_message(self, message):
        await self.send_json(message)


application = ProtocolTypeRouter({"websocket": URLRouter([path("ws/bench/<str:group>/", BareConsumer.as_asgi())])})
