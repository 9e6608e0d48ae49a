"""Requests refused before any view runs."""
from urllib.parse import unquote_plus

from asgiref.sync import iscoroutinefunction
from django.http import HttpResponseBadRequest, JsonResponse
from django.utils.decorators import sync_and_async_middleware

NUL_MESSAGE = ("The address holds a NUL character (%00), which no name, code or filter can contain. Remove it from "
               "the path and the query string.")


def _nul_refusal(request):
    """A 400 for a path or query string holding a NUL character, else None. Text with NUL cannot reach the database
    (PostgreSQL refuses it, as a 500, in any query), and no page or endpoint has a use for it."""
    if "\x00" not in request.path and "\x00" not in unquote_plus(request.META.get("QUERY_STRING", "")):
        return None
    if request.path.startswith("/v1/"):  # the OpenAI-compatible endpoint answers in OpenAI's error shape
        return JsonResponse({"error": {"message": NUL_MESSAGE, "type": "invalid_request_error", "param": None,
                                       "code": None}}, status=400)
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": NUL_MESSAGE, "message": NUL_MESSAGE}, status=400)
    return HttpResponseBadRequest(NUL_MESSAGE, content_type="text/plain; charset=utf-8")


@sync_and_async_middleware
def refuse_nul_middleware(get_response):
    if iscoroutinefunction(get_response):
        async def middleware(request):
            return _nul_refusal(request) or await get_response(request)
    else:
        def middleware(request):
            return _nul_refusal(request) or get_response(request)
    return middleware
