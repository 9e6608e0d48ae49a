"""The web side of workers.common.options: the same schemas and checks, with their readable error as a Django
ValidationError (which forms show and the API answers with 400)."""
from django.core.exceptions import ValidationError

from workers.common.options import Field, OptionError, clean


def options_clean(schema: dict[str, Field], raw, **kwargs) -> dict:
    """workers.common.options.clean, raising ValidationError with its message (which names the field)."""
    try:
        return clean(schema, raw, **kwargs)
    except OptionError as exc:
        raise ValidationError(str(exc)) from None
