"""A small client for OpenAI-compatible chat-completions endpoints: vLLM, Ollama, llama.cpp's server,
Gemini's OpenAI-compatible endpoint, OpenAI itself, and anything else that answers
`POST {base_url}/chat/completions`.

Engine code: no Django. Used by the question-answer generator and by the judge of the curation step.

Stable API (others build on it):

    client = ChatClient(base_url="http://127.0.0.1:8000/v1", api_key="...", model="my-model",
                        timeout=60, max_retries=4, concurrency=4)
    text = client.complete([{"role": "user", "content": "Hi"}], temperature=0)   # raises LLMError
    results = client.complete_many([messages, messages, ...], on_result=callback, max_tokens=512)
    for result in results:          # one Result per input, in input order; never raises for a failed call
        result.ok, result.text, result.error, result.status, result.attempts, result.characters_sent

- Extra keyword arguments (temperature, max_tokens, top_p, response_format, ...) go into the request body.
- Retries: 429, 5xx, timeouts and connection errors are retried up to `max_retries` times with
  exponential backoff and full jitter; a `Retry-After` header (seconds or an HTTP date) is honoured.
- 401/403/404 and other 4xx are not retried: they raise (or return) a readable LLMError that names the
  likely cause (wrong key, model or URL). No message ever contains the API key: it travels only in the
  Authorization header. Messages give the HTTP status and an explanation written here, never the server's
  response body: the endpoint is the user's choice, and its answer may be anything (a private page, or the key
  quoted back).
- A 400 or 422 refusal whose body names an option that was sent (such as response_format) lists that option's
  name in `refused_options` (of the error and the Result), so that a caller can resend without it; only the
  option's name is kept, never the body.
- `transport`: an httpx transport, such as workers.common.outbound.GuardedTransport, which checks the address of every
  connection; a refused address comes back as a readable, non-retried LLMError. With a transport given, proxy
  settings from the environment are ignored, because httpx would send proxied requests around the transport.
- `complete_many` runs at most `concurrency` requests at once and calls `on_result(result)` in the
  calling thread as each finishes (so the callback may write to a database or a reporter). If the callback
  raises (for instance Cancelled), requests not yet started are dropped, the ones already sent finish and
  are still passed to the callback (so an audit log misses none), and then the exception propagates.
  After an error that no retry can fix (a refused key, an unknown model), the requests not yet sent are
  not sent: they come back failed with the same error.
"""
from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import httpx

from workers.common.errors import ReadableError
from workers.common.outbound import OutboundRefused

logger = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504}) | frozenset(range(520, 530))
# Errors no retry can fix: once one is seen, the remaining requests of a batch are not sent.
FATAL_STATUSES = frozenset({401, 403, 404})
# The longest a Retry-After header may make us wait before one retry; longer asks fail the request instead.
MAX_RETRY_AFTER = 120.0
# Statuses of a refused option (OpenAI, vLLM and llama.cpp answer 400; FastAPI-based servers 422), and the other
# words refusals use for an option: "json_schema is not supported", "structured outputs are not available".
OPTION_REFUSAL_STATUSES = frozenset({400, 422})
OPTION_ALIASES = {"response_format": ("response_format", "json_schema", "structured output", "response format")}


class LLMError(ReadableError):
    """A chat request that failed for good. `message` is readable and never contains the API key."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False, attempts: int = 0,
                 refused_options: tuple[str, ...] = ()):
        super().__init__(message)
        self.message = message
        self.status = status
        self.retryable = retryable
        self.attempts = attempts
        self.refused_options = refused_options  # options of the request the refusal named (see the module docstring)

    @property
    def fatal(self) -> bool:
        return self.status in FATAL_STATUSES


@dataclass
class Result:
    """The outcome of one chat request of a batch."""

    index: int
    text: str | None = None
    error: str | None = None  # readable, never contains the key
    status: int | None = None  # the last HTTP status, None when no answer came
    attempts: int = 0  # how many times the request was sent
    characters_sent: int = 0  # characters of message content in the request (sent `attempts` times)
    seconds: float = 0.0
    usage: dict = field(default_factory=dict)
    refused_options: tuple[str, ...] = ()  # options of the request a 400/422 refusal named, such as response_format

    @property
    def ok(self) -> bool:
        return self.error is None


def normalise_base_url(base_url: str) -> str:
    """People paste the full endpoint as often as its base; both mean the same base URL."""
    url = (base_url or "").strip().rstrip("/")
    for suffix in ("/chat/completions", "/completions"):
        url = url.removesuffix(suffix)
    return url


def message_characters(messages: list[dict]) -> int:
    """How many characters of content a request carries (what the audit log counts)."""
    total = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):
            total += sum(len(part.get("text", "")) for part in content if isinstance(part, dict))
    return total


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date. None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def backoff_delay(attempt: int, *, base: float, cap: float, retry_after: float | None = None,
                  rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number `attempt` (1-based): full jitter over an exponential window,
    so that many clients refused at once do not come back at once; never less than the server asked for."""
    window = min(cap, base * (2 ** (attempt - 1)))
    delay = (rng or random).uniform(window / 2, window)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


class ChatClient:
    """A thread-safe client for one OpenAI-compatible endpoint and model. See the module docstring."""

    def __init__(self, base_url: str, api_key: str = "", model: str = "", timeout: float = 60.0,
                 max_retries: int = 4, concurrency: int = 4, *, backoff_base: float = 1.0, backoff_max: float = 30.0,
                 transport: httpx.BaseTransport | None = None):
        self.base_url = normalise_base_url(base_url)
        if not self.base_url.startswith(("http://", "https://")):
            raise LLMError("The endpoint's base URL must start with http:// or https://, such as http://127.0.0.1:8000/v1.")
        self.model = (model or "").strip()
        self.max_retries = max(0, int(max_retries))
        self.concurrency = max(1, int(concurrency))
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.timeout = float(timeout)
        self._api_key = (api_key or "").strip()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        self._http = httpx.Client(headers=headers, timeout=httpx.Timeout(self.timeout, connect=min(10.0, self.timeout)),
                                  transport=transport, trust_env=transport is None, follow_redirects=False)
        self._sleep = time.sleep  # tests may replace it to check the waits without waiting

    def __repr__(self):  # the key stays out of reprs, and so out of tracebacks and logs
        return f"ChatClient(base_url={self.base_url!r}, model={self.model!r})"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self._http.close()

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}/chat/completions"

    # -- one request ---------------------------------------------------------------------------------------

    def complete(self, messages: list[dict], **params) -> str:
        """The assistant's answer to `messages`. Raises LLMError (readable) when the request fails for good."""
        result = self.call(messages, **params)
        if not result.ok:
            raise LLMError(result.error, status=result.status, attempts=result.attempts)
        return result.text

    def call(self, messages: list[dict], *, index: int = 0, **params) -> Result:
        """Like complete(), but a failure comes back as a Result with `error` set instead of an exception."""
        started = time.monotonic()
        result = Result(index=index, characters_sent=message_characters(messages))
        try:
            result.text, result.status, result.usage = self._send_with_retries(messages, params, result)
        except LLMError as exc:
            result.error, result.status, result.refused_options = exc.message, exc.status, exc.refused_options
        result.seconds = time.monotonic() - started
        return result

    def _send_with_retries(self, messages, params, result: Result):
        body = {**params, "model": self.model, "messages": messages}
        body.setdefault("stream", False)
        attempt = 0
        while True:
            attempt += 1
            result.attempts = attempt
            try:
                return self._send_once(body)
            except LLMError as exc:
                exc.attempts = attempt
                if not exc.retryable or attempt > self.max_retries:
                    if exc.retryable and self.max_retries:
                        exc.message = f"{exc.message} (gave up after {attempt} attempts)"
                        exc.args = (exc.message,)
                    raise
                retry_after = getattr(exc, "retry_after", None)
                if retry_after is not None and retry_after > MAX_RETRY_AFTER:
                    raise LLMError(f"The endpoint is rate limiting and asks to wait {retry_after:.0f} seconds; "
                                   "try again later or lower the concurrency.", status=exc.status, attempts=attempt)
                delay = backoff_delay(attempt, base=self.backoff_base, cap=self.backoff_max, retry_after=retry_after)
                logger.info("Chat request to %s failed (%s); retry %d of %d in %.1fs", self.base_url,
                            exc.status or "no answer", attempt, self.max_retries, delay)
                self._sleep(delay)

    def _send_once(self, body: dict):
        try:
            response = self._http.post(self.endpoint, json=body)
        except OutboundRefused as exc:  # the guard refused the address: no retry can change that
            raise LLMError(str(exc))
        except httpx.TimeoutException:
            raise LLMError(f"The endpoint {self.base_url} did not answer within {self.timeout:.0f} seconds.",
                           retryable=True)
        except httpx.TransportError as exc:
            raise LLMError(f"Could not reach the endpoint {self.base_url} ({type(exc).__name__}). "
                           "Check the base URL and that the server is running.", retryable=True)
        except (httpx.RequestError, httpx.InvalidURL) as exc:
            raise LLMError(f"The request to {self.base_url} failed ({type(exc).__name__}).")
        if response.status_code >= 400:
            raise self._http_error(response, body)
        if response.is_redirect:
            # Redirects are not followed: the key would go along to wherever they point.
            location = self._redact(response.headers.get("location", "")[:200])
            raise LLMError(f"The endpoint {self.base_url} redirects ({response.status_code}) to {location}; "
                           "use that address as the base URL.", status=response.status_code)
        try:
            data = response.json()
            choice = data["choices"][0]
            content = choice.get("message", {}).get("content")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise LLMError(f"The endpoint {self.base_url} answered something that is not a chat completion; "
                           "check that the base URL points at an OpenAI-compatible API (it usually ends in /v1).",
                           status=response.status_code)
        if isinstance(content, list):  # some servers answer content as a list of parts
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        return content or "", response.status_code, usage

    def _http_error(self, response: httpx.Response, body: dict | None = None) -> LLMError:
        """A readable error for an HTTP error status: the status and an explanation written here. The response body
        is never repeated: it is whatever the endpoint chose to send (see the module docstring)."""
        status = response.status_code
        if status == 401:
            message = (f"The endpoint {self.base_url} refused the API key (401 Unauthorized). "
                       "Check the key saved for this provider.")
        elif status == 403:
            message = (f"The endpoint {self.base_url} refused access (403 Forbidden): the key may lack permission "
                       f"for the model '{self.model}'.")
        elif status == 404:
            message = (f"The endpoint answered 404 Not Found: check the base URL {self.base_url} "
                       f"(it usually ends in /v1) and the model name '{self.model}'.")
        elif status == 400:
            message = (f"The endpoint {self.base_url} refused the request (400 Bad Request): the text may be too long "
                       f"for the model '{self.model}', or the endpoint may not support an option that was sent.")
        elif status == 429:
            message = f"The endpoint {self.base_url} kept rate limiting the requests (429 Too Many Requests)."
        elif status >= 500:
            message = f"The endpoint {self.base_url} had a server error ({status})."
        else:
            message = f"The endpoint {self.base_url} refused the request ({status})."
        error = LLMError(message, status=status, retryable=status in RETRYABLE_STATUSES or status >= 500,
                         refused_options=refused_options(response, body))
        error.retry_after = parse_retry_after(response.headers.get("retry-after"))
        return error

    def _redact(self, text: str) -> str:
        if self._api_key and len(self._api_key) >= 4:
            text = text.replace(self._api_key, "[key]")
        return text

    # -- many requests -----------------------------------------------------------------------------------

    def complete_many(self, list_of_messages: list[list[dict]], on_result=None, **params) -> list[Result]:
        """Send every conversation, at most `concurrency` at a time; one Result per input, in input order."""
        results: list[Result | None] = [None] * len(list_of_messages)
        if not list_of_messages:
            return []
        fatal = threading.Event()
        fatal_error: list[Result] = []

        def run(index: int, messages: list[dict]) -> Result:
            if fatal.is_set():  # a refused key or unknown model: no point in sending the rest
                first = fatal_error[0]
                return Result(index=index, error=first.error, status=first.status)
            result = self.call(messages, index=index, **params)
            if not result.ok and result.status in FATAL_STATUSES:
                fatal_error.append(result)
                fatal.set()
            return result

        executor = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="chat")
        pending = {executor.submit(run, index, messages) for index, messages in enumerate(list_of_messages)}
        done: set = set()
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                while done:
                    result = done.pop().result()
                    results[result.index] = result
                    if on_result is not None:
                        on_result(result)
        except BaseException:
            # Requests not yet started are dropped. Those already sent still reach the callback (its errors
            # ignored now), so that a caller keeping an audit log sees every request that left the machine.
            executor.shutdown(wait=True, cancel_futures=True)
            for future in [*done, *pending]:
                if future.cancelled() or future.exception() is not None:
                    continue
                result = future.result()
                if result.attempts and on_result is not None:
                    try:
                        on_result(result)
                    except BaseException:
                        pass
            raise
        executor.shutdown(wait=True)
        return results


def refused_options(response: httpx.Response, body: dict | None) -> tuple[str, ...]:
    """The options of the request body (beyond model, messages and stream) that a 400/422 refusal names in its
    body, as the endpoint's own words for them (OPTION_ALIASES). Only names we sent come back, never the body."""
    if response.status_code not in OPTION_REFUSAL_STATUSES or not body:
        return ()
    try:
        text = response.text[:4000].lower()
    except (UnicodeDecodeError, httpx.ResponseNotRead):
        return ()
    sent = [name for name in body if name not in ("model", "messages", "stream")]
    return tuple(name for name in sent if any(word in text for word in OPTION_ALIASES.get(name, (name,))))


def chat_text(raw: str | None) -> str:
    """The answer without a reasoning model's <think>...</think> preamble."""
    raw = raw or ""
    if "</think>" in raw:
        raw = raw.split("</think>", 1)[1]
    return raw.strip()
