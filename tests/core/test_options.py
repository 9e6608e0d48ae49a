"""The one schema helper of job options (workers.common.options) and its web side (apps.core.options)."""
import pytest
from django.core.exceptions import ValidationError

from apps.core.options import options_clean
from workers.common.errors import ReadableError
from workers.common.options import Bool, Choice, Float, Int, OptionError, Text, as_switch, clean

SCHEMA = {"max_steps": Int(100, 1, 100_000), "learning_rate": Float(5e-6, 1e-7, 1.0), "packing": Bool(False),
          "system_prompt": Text("", max_length=10), "backend": Choice("auto", ("auto", "unsloth", "trl")),
          "limit": Int(50, 1, None, blank=None)}


def test_it_fills_in_every_default():
    assert clean(SCHEMA, None) == clean(SCHEMA, {}) == {"max_steps": 100, "learning_rate": 5e-6, "packing": False,
                                                        "system_prompt": "", "backend": "auto", "limit": 50}


def test_it_types_the_values():
    values = clean(SCHEMA, {"max_steps": " 40 ", "learning_rate": "1e-4", "packing": "on", "system_prompt": "  Hi. ",
                            "backend": " trl "})
    assert values["max_steps"] == 40 and type(values["max_steps"]) is int
    assert values["learning_rate"] == 1e-4 and type(values["learning_rate"]) is float
    assert values["packing"] is True and values["system_prompt"] == "Hi." and values["backend"] == "trl"
    assert clean(SCHEMA, {"max_steps": 3.0})["max_steps"] == 3 and clean(SCHEMA, {"max_steps": "3.0"})["max_steps"] == 3
    assert clean(SCHEMA, {"learning_rate": 1})["learning_rate"] == 1.0


def test_it_takes_none_and_blank_as_the_default():
    for blank in (None, "", "   "):
        values = clean(SCHEMA, {"max_steps": blank, "learning_rate": blank, "packing": blank, "backend": blank})
        assert values["max_steps"] == 100 and values["learning_rate"] == 5e-6 and values["packing"] is False
        assert values["backend"] == "auto"
    assert clean(SCHEMA, {"max_steps": None}, defaults={"max_steps": 7})["max_steps"] == 7
    assert clean(SCHEMA, {}, defaults={"max_steps": 7})["max_steps"] == 7


def test_it_gives_a_field_its_own_blank_value():
    assert clean(SCHEMA, {})["limit"] == 50  # left out: the default
    assert clean(SCHEMA, {"limit": ""})["limit"] is None and clean(SCHEMA, {"limit": None})["limit"] is None


@pytest.mark.parametrize("raw, message", [
    ({"learning_rate": 2}, "Learning rate must be between 1e-07 and 1.0."),
    ({"learning_rate": "fast"}, "Learning rate must be a number."),
    ({"learning_rate": "nan"}, "Learning rate must be a number."),
    ({"learning_rate": float("inf")}, "Learning rate must be a number."),
    ({"learning_rate": True}, "Learning rate must be a number."),
    ({"max_steps": 0}, "Max steps must be between 1 and 100000."),
    ({"max_steps": 2.5}, "Max steps must be a whole number."),
    ({"max_steps": "2.5"}, "Max steps must be a whole number."),
    ({"max_steps": "many"}, "Max steps must be a whole number."),
    ({"max_steps": [3]}, "Max steps must be a whole number."),
    ({"max_steps": True}, "Max steps must be a whole number."),
    ({"limit": 0}, "Limit must be at least 1."),
    ({"system_prompt": 42}, "System prompt must be text."),
    ({"system_prompt": "x" * 11}, "System prompt is longer than 10 characters (11)."),
    ({"backend": "magic"}, "Unknown backend 'magic'. Choose one of: auto, unsloth, trl."),
])
def test_it_refuses_bad_values_naming_the_field(raw, message):
    with pytest.raises(OptionError) as caught:
        clean(SCHEMA, raw)
    assert str(caught.value) == message and caught.value.field == next(iter(raw))
    assert isinstance(caught.value, ReadableError)  # tasks turn it into a readable job error


def test_it_counts_text_after_tidying_it():
    schema = {"text": Text("", max_length=4, unix_newlines=True), "raw": Text("x", strip=False)}
    assert clean(schema, {"text": " a\r\nb "})["text"] == "a\nb"
    assert clean(schema, {"raw": "  "})["raw"] == "  " and clean(schema, {"raw": ""})["raw"] == "x"


def test_it_refuses_unknown_keys_listing_the_allowed_ones():
    with pytest.raises(OptionError) as caught:
        clean(SCHEMA, {"max_step": 3})
    assert str(caught.value) == ("Unknown setting 'max_step'. "
                                 "Allowed: max_steps, learning_rate, packing, system_prompt, backend, limit.")
    with pytest.raises(OptionError, match="Unknown settings 'a', 'b'"):
        clean(SCHEMA, {"a": 1, "b": 2, "max_steps": 3})


def test_it_refuses_what_is_not_a_mapping():
    with pytest.raises(OptionError, match="must be an object"):
        clean(SCHEMA, [("max_steps", 3)])


TRUE = [True, 1, "1", "true", "True", "TRUE", "on", "On", "ON", "yes", "Yes", "YES", " yes "]
FALSE = [False, 0, "0", "false", "False", "FALSE", "off", "Off", "OFF", "no", "No", "NO", " no "]


@pytest.mark.parametrize("value", TRUE)
def test_it_reads_every_spelling_of_true(value):
    assert as_switch(value) is True and clean(SCHEMA, {"packing": value})["packing"] is True


@pytest.mark.parametrize("value", FALSE)
def test_it_reads_every_spelling_of_false(value):
    assert clean({"switch": Bool(True)}, {"switch": value})["switch"] is False


@pytest.mark.parametrize("value", ["maybe", "y", "t", "2", 2, -1, 1.0, 0.5, "enabled", [True], {}])
def test_it_refuses_anything_else_as_a_switch_never_silently_false(value):
    with pytest.raises(OptionError, match="Packing must be on or off"):
        clean(SCHEMA, {"packing": value})


def test_its_web_side_raises_a_validation_error_with_the_same_message():
    with pytest.raises(ValidationError) as caught:
        options_clean(SCHEMA, {"packing": "maybe"})
    assert caught.value.messages == ["Packing must be on or off (true/false, yes/no, on/off or 1/0), not 'maybe'."]
    with pytest.raises(ValidationError, match="Unknown setting 'csrfmiddlewaretoken'"):
        options_clean(SCHEMA, {"csrfmiddlewaretoken": "x"})
    assert options_clean(SCHEMA, {"max_steps": "5"})["max_steps"] == 5
