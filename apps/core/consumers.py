"""Websocket streams of jobs, for their owner only: one job's updates (JobConsumer), and the signed-in user's list of
jobs (UserJobsConsumer)."""
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.http import Http404

from apps.core.realtime import job_group_name, user_jobs_group_name
from apps.core.selectors import job_events, job_get_for_user, job_list_for_user, job_snapshot

# Close code for "not found / not yours": the same answer as the pages' 404.
CLOSE_NOT_FOUND = 4404
# Close code for a connection without a signed-in user, to a stream that is only ever someone's own.
CLOSE_SIGNED_OUT = 4401
# How many of the newest jobs a list's snapshot holds, by default and at most (`?limit=`).
RECENT_JOBS, RECENT_JOBS_MAX = 20, 50


class _ListeningConsumer(AsyncJsonWebsocketConsumer):
    """A stream the client only listens to, from one channel-layer group (`self.group`, joined on connect)."""

    async def disconnect(self, close_code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        """Clients only listen; a ping is answered so they can measure the connection."""
        if content.get("type") == "ping":
            await self.send_json({"type": "pong"})


class JobConsumer(_ListeningConsumer):
    """On connect: authorize with the same selector as the views, join the job's group, then send a snapshot
    (the job and its events after `?after=<event id>`), so a reconnecting page misses nothing."""

    async def connect(self):
        user = self.scope.get("user")
        code = self.scope["url_route"]["kwargs"]["code"]
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        try:
            job = await database_sync_to_async(job_get_for_user)(user=user, code=code)
        except Http404:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.group = job_group_name(job.code)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        after = _after_id(self.scope.get("query_string", b""))
        snapshot = await database_sync_to_async(_snapshot)(job, after)
        await self.send_json(snapshot)

    async def job_update(self, message):
        await self.send_json({"type": "update", "job": message["job"], "event": message["event"]})


class UserJobsConsumer(_ListeningConsumer):
    """The signed-in user's top-level jobs, for live lists of jobs (the dashboard). On connect: join the user's own
    group, then send a snapshot of the newest jobs (`?limit=`), so a reconnecting page catches up; after that, every
    status or progress change of any of their jobs, new jobs included. Nobody else's jobs ever reach this group."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_SIGNED_OUT)
            return
        self.group = user_jobs_group_name(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        jobs = await database_sync_to_async(_recent_jobs)(user, _limit(self.scope.get("query_string", b"")))
        await self.send_json({"type": "snapshot", "jobs": jobs})

    async def job_update(self, message):
        await self.send_json({"type": "update", "job": message["job"]})


def _recent_jobs(user, limit: int) -> list[dict]:
    return [job_snapshot(job=job) for job in job_list_for_user(user=user)[:limit]]


def _query_int(query_string: bytes, name: str) -> int | None:
    """The integer query parameter `name`, or None when it is missing or not a number."""
    from urllib.parse import parse_qs

    try:
        return int(parse_qs(query_string.decode()).get(name, [""])[0])
    except ValueError:
        return None


def _limit(query_string: bytes) -> int:
    limit = _query_int(query_string, "limit")
    return RECENT_JOBS if limit is None else max(1, min(limit, RECENT_JOBS_MAX))


def _after_id(query_string: bytes) -> int:
    return max(0, _query_int(query_string, "after") or 0)


def _snapshot(job, after: int) -> dict:
    job.refresh_from_db()
    return {"type": "snapshot", "job": job_snapshot(job=job),
            "events": [e.as_message() for e in job_events(job=job, after_id=after)]}
