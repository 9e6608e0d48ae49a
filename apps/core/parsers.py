"""Checked JSON: the API's default JSON parser, and the same checks for the JSON that other views read themselves (the
OpenAI-compatible endpoint, JSON carried in a multipart field: apps.core.api.CheckedJSONField).

Python's parser recurses once per level of nesting, so `[[[[…]]]]` a few thousand deep ends in a RecursionError (a
500) or, parsed, in recursion further on; the database cannot store a NUL character in text (PostgreSQL refuses it)
nor a lone UTF-16 surrogate (no UTF-8 encoding exists for it). Each is refused here with a readable message, before
any view sees the data."""
import json

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, get_encoding

# Levels of objects and lists, far beyond any body the API takes (reward specs, the deepest, use three or four).
MAX_JSON_DEPTH = 32


class JSONBodyError(ValueError):
    """JSON that the API will not take; the message says why, for the person who sent it."""


def json_text_check(text: str, where: str = "The request") -> None:
    """Raises JSONBodyError for text that no text field can store: a NUL character or a lone surrogate."""
    if "\x00" in text:
        raise JSONBodyError(f"{where} holds a NUL character (\\u0000), which no text field can store. Remove it.")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise JSONBodyError(f"{where} holds a lone UTF-16 surrogate (such as \\ud800), which is not a character. "
                                "Send text as valid Unicode.") from None


def json_value_check(value) -> None:
    """Raises JSONBodyError when parsed JSON nests deeper than MAX_JSON_DEPTH or holds text json_text_check refuses.
    Walks with its own stack, so that no depth can exhaust Python's."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            json_text_check(item)
        elif isinstance(item, (dict, list)):
            if depth >= MAX_JSON_DEPTH:
                raise JSONBodyError(f"The JSON nests objects and lists more than {MAX_JSON_DEPTH} levels deep.")
            if isinstance(item, dict):
                for key in item:
                    json_text_check(key)
                stack.extend((child, depth + 1) for child in item.values())
            else:
                stack.extend((child, depth + 1) for child in item)


def json_loads_checked(text: str | bytes):
    """json.loads, refusing (JSONBodyError) invalid JSON, NaN and Infinity (not JSON), and what json_value_check
    refuses."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise JSONBodyError(f"The JSON nests objects and lists more than {MAX_JSON_DEPTH} levels deep.") from None
    except UnicodeDecodeError:
        raise JSONBodyError("The JSON is not valid UTF-8 text.") from None
    except ValueError as exc:
        raise JSONBodyError(f"The request body is not valid JSON: {exc}.") from None
    json_value_check(value)
    return value


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser with the checks of json_loads_checked. (DRF reads a JSON body through `request.body`, so
    Django's DATA_UPLOAD_MAX_MEMORY_SIZE bounds its size.)"""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = get_encoding(parser_context or {})
        try:
            return json_loads_checked(stream.read().decode(encoding))
        except UnicodeDecodeError:
            raise ParseError(f"The JSON body is not valid {encoding} text.")
        except JSONBodyError as exc:
            raise ParseError(str(exc))
