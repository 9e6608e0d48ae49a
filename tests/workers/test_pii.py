import pytest

from workers.common.errors import ReadableError
from workers.common.pii import PiiScrubber, compile_user_pattern, luhn_valid, scrub


def test_it_replaces_emails_with_a_placeholder():
    result = scrub("Write to jane.doe+news@mail.example.co.uk or OPS@corp.io, not to @handles or a@b.")
    assert result.text == "Write to [EMAIL] or [EMAIL], not to @handles or a@b."
    assert result.counts == {"EMAIL": 2}


@pytest.mark.parametrize("phone", [
    "+44 20 7946 0958", "(555) 123-4567", "555-123-4567", "+1-202-555-0143", "06 12 34 56 78",
    "0044 20 7946 0958", "+4915112345678", "030.1234.5678",
])
def test_it_replaces_phone_numbers(phone):
    assert scrub(f"Call {phone} today.").text == "Call [PHONE] today."


@pytest.mark.parametrize("text", [
    "On 2024-01-15 or 15.01.2024 at 10:30.", "Version 1.2.3 and pi 3.14159.", "Total 1,234,567 in 2019.",
    "Chapter 12, page 345.", "Order 4111111111111112 is not a card.",
])
def test_it_leaves_dates_versions_and_plain_numbers_alone(text):
    result = scrub(text)
    assert result.text == text and result.replacements == 0


def test_it_replaces_only_card_numbers_that_pass_the_luhn_check():
    assert luhn_valid("4111111111111111") and luhn_valid("79927398713") and not luhn_valid("4111111111111112")
    result = scrub("Cards 4111 1111 1111 1111, 5500-0000-0000-0004 and 378282246310005; "
                   "not 4111 1111 1111 1112.")
    assert result.text == "Cards [CARD], [CARD] and [CARD]; not 4111 1111 1111 1112."
    assert result.counts == {"CARD": 3}


def test_it_replaces_iban_like_strings_spaced_or_not():
    result = scrub("Pay DE89 3704 0044 0532 0130 00 or GB29NWBK60161331926819 by Friday.")
    assert result.text == "Pay [IBAN] or [IBAN] by Friday."


def test_it_applies_the_users_own_patterns_first_under_their_labels():
    scrubber = PiiScrubber([("employee id", r"EMP-\d{3}-\d{3}-\d{3}"), ("PATIENT", r"\bP#\d+")])
    result = scrubber.scrub("EMP-123-456-789 treated P#42 (jo@clinic.org).")
    # The phone detector would also match EMP's digits: the user's label wins because it runs first.
    assert result.text == "[EMPLOYEE_ID] treated [PATIENT] ([EMAIL])."
    assert result.counts == {"EMPLOYEE_ID": 1, "PATIENT": 1, "EMAIL": 1} and result.replacements == 3


@pytest.mark.parametrize("pattern,message", [
    ("(unclosed", "not a valid regular expression"), ("a*", "matches empty text"), ("", "empty"),
    ("x" * 501, "longer than"),
])
def test_it_refuses_bad_user_patterns_readably(pattern, message):
    with pytest.raises(ReadableError, match=message):
        compile_user_pattern(pattern)


def test_it_refuses_bad_labels():
    with pytest.raises(ReadableError, match="label"):
        PiiScrubber([("123", "abc")])


def test_it_stops_a_pattern_that_backtracks_forever_with_a_readable_error():
    scrubber = PiiScrubber([("SLOW", r"(a|aa)+$")])
    with pytest.raises(ReadableError, match="took too long"):
        scrubber.scrub("a" * 40 + "!")
