"""Scrubbing personal data out of text before it leaves the machine for an external endpoint.

Built-in detectors: email addresses, IBAN-like account numbers, card-like numbers (13 to 19 digits that
pass the Luhn check) and phone numbers; each match becomes a typed placeholder such as [EMAIL]. Users add
their own patterns (a label and a regular expression), which run first so that their labels win.

The detectors lean towards scrubbing too much: a number that looks like a phone number is replaced even
when it is an inventory code, because a missed phone number cannot be called back once it has been sent.
Engine code: no Django."""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import regex

from workers.common.errors import ReadableError

# User patterns run through the `regex` module, which can stop a match after a time limit: a careless
# pattern with catastrophic backtracking must fail one job readably, not hang a worker.
USER_PATTERN_TIMEOUT = 1.0
MAX_PATTERN_LENGTH = 500
LABEL = re.compile(r"^[A-Z][A-Z0-9_]{0,29}$")

EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}(?![\w-])")
# Two letters, two check digits, then 11 to 30 letters or digits, optionally in groups of four.
IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,4})?(?![A-Za-z0-9])")
# 13 to 19 digits, optionally grouped by single spaces or dashes; confirmed with the Luhn checksum below.
CARD = re.compile(r"(?<![\d+-])\d(?:[ -]?\d){12,18}(?![\d-])")
# International numbers (+ or 00 and a country code), or national ones in groups separated by spaces,
# dots, dashes or parentheses. The digit count is checked below, which keeps dates and versions out.
PHONE = re.compile(
    r"(?<![\w+])(?:(?:\+|00)\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?\d{1,5}(?:[ .-]\d{1,5}){1,6}(?![\w])"
    r"|(?<![\w+])(?:\+|00)\d{7,15}(?!\w)"
)
DATE_LIKE = re.compile(r"^\d{1,4}[./-]\d{1,2}[./-]\d{1,4}$")


def luhn_valid(digits: str) -> bool:
    """The checksum every payment card number satisfies (and about one random number in ten)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _card(match: re.Match) -> bool:
    digits = re.sub(r"\D", "", match.group())
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def _phone(match: re.Match) -> bool:
    text = match.group()
    digits = re.sub(r"\D", "", text)
    international = text.startswith(("+", "00"))
    if DATE_LIKE.match(text):
        return False
    if "." in text and not international and text.count(".") < 2:
        return False  # a decimal number such as 3.14159, not a phone number
    return (8 if international else 9) <= len(digits) <= 15


@dataclass
class UserPattern:
    label: str
    pattern: str


@dataclass
class ScrubResult:
    text: str
    counts: Counter = field(default_factory=Counter)  # label -> how many were replaced

    @property
    def replacements(self) -> int:
        return sum(self.counts.values())


def clean_label(label: str) -> str:
    """`employee id` -> `EMPLOYEE_ID`: placeholders are upper-case words in square brackets."""
    cleaned = re.sub(r"[^A-Za-z0-9]+", "_", (label or "").strip()).strip("_").upper()
    if not LABEL.match(cleaned):
        raise ReadableError("A pattern's label must start with a letter and use letters, digits or underscores "
                            "(at most 30), such as EMPLOYEE_ID.")
    return cleaned


def compile_user_pattern(pattern: str):
    """The compiled pattern, or ReadableError saying what is wrong with it."""
    if not pattern or not pattern.strip():
        raise ReadableError("The pattern is empty.")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ReadableError(f"The pattern is longer than {MAX_PATTERN_LENGTH} characters.")
    try:
        compiled = regex.compile(pattern, regex.VERSION0)
    except regex.error as exc:
        raise ReadableError(f"The pattern is not a valid regular expression: {exc}.")
    if compiled.fullmatch("", timeout=USER_PATTERN_TIMEOUT) is not None:
        # A pattern that matches nothing at all would put a placeholder between every two characters.
        raise ReadableError("The pattern matches empty text; it must match at least one character.")
    return compiled


class PiiScrubber:
    """Replaces personal data with typed placeholders. Reusable and thread-safe."""

    def __init__(self, user_patterns: list[UserPattern] | list[tuple[str, str]] = ()):
        self.user_patterns = []
        for item in user_patterns:
            label, pattern = (item.label, item.pattern) if isinstance(item, UserPattern) else item
            self.user_patterns.append((clean_label(label), compile_user_pattern(pattern)))

    def scrub(self, text: str) -> ScrubResult:
        counts: Counter = Counter()
        for label, compiled in self.user_patterns:
            try:
                text, n = compiled.subn(f"[{label}]", text, timeout=USER_PATTERN_TIMEOUT)
            except TimeoutError:
                raise ReadableError(f"Your privacy pattern {label} took too long on this text; simplify it.")
            counts[label] += n
        text = self._sub(EMAIL, "EMAIL", text, counts)
        text = self._sub(IBAN, "IBAN", text, counts)
        text = self._sub(CARD, "CARD", text, counts, keep=_card)
        text = self._sub(PHONE, "PHONE", text, counts, keep=_phone)
        return ScrubResult(text=text, counts=+counts)

    def scrub_conversations(self, conversations: list[list[dict]]) -> tuple[list[list[dict]], list[int]]:
        """Every turn's content scrubbed; also the number of replacements in each conversation (for the audit log)."""
        scrubbed, replacements = [], []
        for conversation in conversations:
            results = [self.scrub(turn["content"]) for turn in conversation]
            scrubbed.append([{**turn, "content": result.text} for turn, result in zip(conversation, results)])
            replacements.append(sum(result.replacements for result in results))
        return scrubbed, replacements

    @staticmethod
    def _sub(pattern: re.Pattern, label: str, text: str, counts: Counter, keep=None) -> str:
        def replace(match: re.Match) -> str:
            if keep is not None and not keep(match):
                return match.group()
            counts[label] += 1
            return f"[{label}]"

        return pattern.sub(replace, text)


def scrub(text: str, user_patterns=()) -> ScrubResult:
    """Scrub one text with the built-in detectors and `user_patterns` ((label, regex) pairs)."""
    return PiiScrubber(user_patterns).scrub(text)
