"""One way to declare and check the options a person gives a job (a fine-tune's hyperparameters, a GRPO run's
settings, a benchmark's, a curation's ...), shared by the web side, which checks a request before any job exists,
and the worker side. Light: no Django, no engine.

    SCHEMA = {"max_steps": Int(100, 1, 100_000), "learning_rate": Float(5e-6, 1e-7, 1.0), "packing": Bool(False),
              "system_prompt": Text("", max_length=4000), "backend": Choice("auto", ("auto", "unsloth", "trl"))}
    clean(SCHEMA, {"max_steps": "40", "packing": "on"})
    # {"max_steps": 40, "learning_rate": 5e-06, "packing": True, "system_prompt": "", "backend": "auto"}

`clean` answers every field of the schema, or raises OptionError (a ReadableError) whose message names the field:
"Learning rate must be between 1e-07 and 1.0.". A key the schema does not declare is refused, naming the allowed
ones, rather than silently ignored: a misspelt option would otherwise train with the default. None or "" means "use
the default". Every switch reads true and false the same way (see as_switch); anything else is an error, never
silently false. The web side turns OptionError into a django ValidationError (apps.core.options)."""
from __future__ import annotations

import math
from collections.abc import Mapping

from workers.common.errors import ReadableError

# The one meaning of true and false for every on/off option, compared without regard to case. Forms post "on",
# JSON sends true, query strings and the command line say "1", "yes" or "true".
TRUE_WORDS = frozenset({"true", "on", "yes", "1"})
FALSE_WORDS = frozenset({"false", "off", "no", "0"})

_UNSET = object()


class OptionError(ReadableError):
    """A user-given option that cannot be used; the message, written for the user, names it. `field` is its key."""

    def __init__(self, message: str, *, field: str = ""):
        super().__init__(message)
        self.field = field


def _sentence(label: str) -> str:
    return label[:1].upper() + label[1:]


def _shown(value, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def as_switch(value) -> bool:
    """True or False from True/False, 1/0 or one of TRUE_WORDS/FALSE_WORDS in any case; ValueError otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise ValueError(f"not an on/off value: {_shown(value)}")


class Field:
    """One option: its default, how messages name it (`label`; default: the key with spaces) and what a blank value
    (None or "") gives (`blank`; default: the default)."""

    def __init__(self, default=None, *, label: str = "", blank=_UNSET):
        self.default, self.label, self.blank = default, label, blank

    def is_blank(self, value) -> bool:
        return value is None or (isinstance(value, str) and not value.strip())

    def convert(self, value, *, label: str):
        """The cleaned value; OptionError naming `label` otherwise."""
        raise NotImplementedError


class _Number(Field):
    def __init__(self, default=None, low=None, high=None, *, label: str = "", blank=_UNSET):
        super().__init__(default, label=label, blank=blank)
        self.low, self.high = low, high

    def check_range(self, number, *, label: str):
        low, high = self.low, self.high
        if low is not None and high is not None and not low <= number <= high:
            raise OptionError(f"{_sentence(label)} must be between {low} and {high}.")
        if low is not None and number < low:
            raise OptionError(f"{_sentence(label)} must be at least {low}.")
        if high is not None and number > high:
            raise OptionError(f"{_sentence(label)} must be at most {high}.")
        return number


class Int(_Number):
    """A whole number between `low` and `high` (either may be None): 3, 3.0, "3" and "3.0" are 3; 2.5 is refused,
    never cut to 2."""

    def convert(self, value, *, label: str):
        number = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        elif isinstance(value, str):
            text = value.strip()
            try:
                number = int(text)
            except ValueError:
                try:
                    as_float = float(text)
                except ValueError:
                    as_float = math.nan
                if as_float.is_integer():
                    number = int(as_float)
        if number is None:
            raise OptionError(f"{_sentence(label)} must be a whole number.")
        return self.check_range(number, label=label)


class Float(_Number):
    """A finite number between `low` and `high` (either may be None)."""

    def convert(self, value, *, label: str):
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                pass
        if number is None or not math.isfinite(number):
            raise OptionError(f"{_sentence(label)} must be a number.")
        return self.check_range(number, label=label)


class Bool(Field):
    """An on/off switch, read by as_switch."""

    def __init__(self, default: bool = False, *, label: str = "", blank=_UNSET):
        super().__init__(default, label=label, blank=blank)

    def convert(self, value, *, label: str):
        try:
            return as_switch(value)
        except ValueError:
            raise OptionError(f"{_sentence(label)} must be on or off (true/false, yes/no, on/off or 1/0), "
                              f"not {_shown(value)}.") from None


class Text(Field):
    """Text of at most `max_length` characters (None: any length), counted after `strip` (surrounding spaces taken
    off) and `unix_newlines` (Windows line ends made "\\n", as browsers post a textarea's). Longer text is refused,
    never cut short."""

    def __init__(self, default: str = "", max_length: int | None = None, *, strip: bool = True,
                 unix_newlines: bool = False, label: str = "", blank=_UNSET):
        super().__init__(default, label=label, blank=blank)
        self.max_length, self.strip, self.unix_newlines = max_length, strip, unix_newlines

    def is_blank(self, value) -> bool:
        return value is None or value == "" or (self.strip and isinstance(value, str) and not value.strip())

    def convert(self, value, *, label: str):
        if not isinstance(value, str):
            raise OptionError(f"{_sentence(label)} must be text.")
        if self.unix_newlines:
            value = value.replace("\r\n", "\n")
        if self.strip:
            value = value.strip()
        if self.max_length is not None and len(value) > self.max_length:
            raise OptionError(f"{_sentence(label)} is longer than {self.max_length} characters ({len(value)}).")
        return value


class Choice(Field):
    """One of `choices` (text is compared without its surrounding spaces)."""

    def __init__(self, default, choices, *, label: str = "", blank=_UNSET):
        super().__init__(default, label=label, blank=blank)
        self.choices = tuple(choices)

    def convert(self, value, *, label: str):
        if isinstance(value, str):
            value = value.strip()
        for choice in self.choices:
            if type(value) is type(choice) and value == choice:
                return choice
        raise OptionError(f"Unknown {label} {_shown(value)}. Choose one of: {', '.join(map(str, self.choices))}.")


def clean(schema: Mapping[str, Field], raw, *, defaults: Mapping | None = None) -> dict:
    """Every option of `schema`, from `raw` (a mapping of names to values given by a person; None: nothing given):
    typed and checked, and the default (from `defaults`, else the field's) where `raw` leaves it out or blank.
    Raises OptionError, naming the field, for a value that cannot be used, and naming the allowed keys for a key
    the schema does not declare."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise OptionError("The settings must be an object of names and values.")
    unknown = [key for key in raw if key not in schema]
    if unknown:
        names = ", ".join(_shown(str(key)) for key in unknown)
        raise OptionError(f"Unknown setting{'s' if len(unknown) > 1 else ''} {names}. "
                          f"Allowed: {', '.join(schema)}.", field=str(unknown[0]))
    values = {}
    for name, field in schema.items():
        default = defaults[name] if defaults is not None and name in defaults else field.default
        if name not in raw:
            values[name] = default
        elif field.is_blank(raw[name]):
            values[name] = default if field.blank is _UNSET else field.blank
        else:
            label = field.label or name.replace("_", " ")
            try:
                values[name] = field.convert(raw[name], label=label)
            except OptionError as exc:
                exc.field = name
                raise
    return values
