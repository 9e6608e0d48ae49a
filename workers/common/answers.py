"""Final answers in model completions: find them, normalise them and compare them with a reference.

Benchmarks (GSM8K, AIME), `garage eval gsm8k` and the GRPO rewards grade with this module, so it has to agree
with a careful human reading real model outputs. The rules, in order:

1. Only the answer to the question asked is read: a reasoning block (`<think>...</think>`) is skipped when an
   answer follows it, and a continuation in which the model invents the next few-shot question
   ("\\n\\nQuestion: ...") is cut off.
2. An explicit final-answer marker wins over any other number: `#### 42`, `\\boxed{42}`, `<answer>42</answer>`,
   "The (final) answer is 42", "Answer: 42", "A: 42". With several markers the last one counts (models restate
   and correct themselves). Such an answer is *formatted*.
3. Without a marker the last number in the text is the answer, and the completion is not formatted.
4. One exception to 2: when the model retracts its marked answer afterwards ("... answer is 12. Wait, that is
   wrong: ... so 14"), the last number after the retraction counts, and the answer is not formatted.

Values are normalised: thousands separators, currency, units, percent signs, markdown and LaTeX wrappers are
dropped; `\\frac{3}{4}` becomes 3/4; "x = 5" and "16 - 3 - 4 = 9" keep what follows the last "=". Comparison is
numeric when both sides are numbers (1,234.50 == 1234.5, 0.75 == 3/4, 42.0 == 42), else on normalised text, then
with math-verify (symbolic LaTeX equivalence) when it is installed.

Pure and fast: regular expressions only; no Django, no torch; math-verify is imported only when two answers
are not numbers."""
from __future__ import annotations

import ast
import operator
import re
import threading
from dataclasses import dataclass
from decimal import Decimal, localcontext
from fractions import Fraction

__all__ = ["Extraction", "extract_answer", "reference_answer", "answers_match", "normalize_value", "to_number"]


@dataclass(frozen=True)
class Extraction:
    """`value`: the normalised final answer, or None when the text holds none. `formatted`: it was given with an
    explicit final-answer marker (the format a benchmark asks for). `marker`: which one (####, boxed, answer_tag,
    answer_is, a_colon), or None."""

    value: str | None
    formatted: bool
    marker: str | None = None


# --- numbers -----------------------------------------------------------------------------------------------------

# A number as people write it: 1,234,567.89 or 1234.5 or .5 (a sign is handled by the callers, who know whether a
# minus is a sign or a subtraction).
# Digits are bounded: a longer run is no answer, and Python refuses to convert integers of over 4,300 digits.
_NUM = r"(?:\d{1,3}(?:,\d{3}){1,30}(?!\d)|\d{1,100}(?!\d))(?:\.\d{1,100}(?!\d))?|\.\d{1,100}(?!\d)"
_NUM_RE = re.compile(_NUM)
# A number standing alone in running text: not glued to a letter or digit before it (x2, ab3), with an optional
# sign when the minus is not a subtraction ("16-3" has no negative number), and an optional "/denominator".
_TEXT_NUMBER_RE = re.compile(
    r"(?<![\w.])(?:(?<![\w)\]}])(?P<sign>[-+]))?(?:[$€£¥₹]\s?)?(?P<num>" + _NUM + r")"
    r"(?:\s?/\s?(?P<den>" + _NUM + r"))?(?![\d])"
)
# Numbers at the start of a value: optional sign and currency in either order, the number, an optional fraction.
_LEADING_NUMBER_RE = re.compile(
    r"^(?P<s1>[-+])?\s*(?:[$€£¥₹]|usd|eur|rs\.?)?\s*(?P<s2>[-+])?\s*(?P<num>" + _NUM + r")"
    r"(?:\s*/\s*(?P<den>" + _NUM + r"))?",
    re.IGNORECASE,
)
_WORD_NUMBERS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "a hundred": 100, "one hundred": 100,
}
_WORD_NUMBER_RE = re.compile(
    r"^(?P<neg>negative |minus )?(?P<tens>twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)[- ]"
    r"(?P<unit>one|two|three|four|five|six|seven|eight|nine)\b|^(?P<neg2>negative |minus )?(?P<word>"
    + "|".join(sorted(_WORD_NUMBERS, key=len, reverse=True)) + r")\b"
)


def _format_number(value: Fraction) -> str:
    """A canonical spelling: integers without decimals, decimals without trailing zeros, other fractions as a/b."""
    if value.denominator == 1:
        return str(value.numerator)
    if _terminates(value) and value.denominator <= 10 ** 12:  # a decimal, written exactly
        with localcontext() as context:
            context.prec = 60
            text = format(Decimal(value.numerator) / Decimal(value.denominator), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    return f"{value.numerator}/{value.denominator}"


def _number(text: str) -> Fraction:
    return Fraction(text.replace(",", ""))


def to_number(value: str | None) -> Fraction | None:
    """The exact value of a normalised answer ("1234.5", "-3/4", "42"), or None when it is not a number."""
    if value is None:
        return None
    match = re.fullmatch(r"\s*([-+]?)(" + _NUM + r")(?:\s*/\s*(" + _NUM + r"))?\s*", value)
    if not match:
        return None
    number = _number(match.group(2))
    if match.group(3):
        denominator = _number(match.group(3))
        if denominator == 0:
            return None
        number /= denominator
    return -number if match.group(1) == "-" else number


# Arithmetic a model may leave unevaluated in its answer ("\boxed{2 \times 9}", "#### 16 - 3 - 4").
_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
              ast.USub: operator.neg, ast.UAdd: operator.pos}


def _evaluate(expression: str) -> Fraction | None:
    """Exact value of + - * / arithmetic on plain numbers; None for anything else (and for huge inputs)."""
    if len(expression) > 80 or not re.fullmatch(r"[\d\s.+\-*/()]+", expression) or not re.search(r"\d", expression):
        return None
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        return None

    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return Fraction(str(node.value))
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](walk(node.operand))
        raise ValueError(expression)

    try:
        return walk(tree)
    except (ValueError, ZeroDivisionError, TypeError):
        return None


# --- cleaning a value ----------------------------------------------------------------------------------------------

_TEXT_COMMANDS_RE = re.compile(r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mathit|mbox|operatorname|emph)\s*\{([^{}]*)\}")
_SIMPLE_FRAC_RE = re.compile(
    r"\\frac\s*\{\s*([-+]?\s*(?:" + _NUM + r"))\s*\}\s*\{\s*([-+]?\s*(?:" + _NUM + r"))\s*\}|\\frac\s*(\d)\s*(\d)"
)
_CLEAN_REPLACEMENTS = [
    ("\u2212", "-"), ("\u2013", "-"), ("\u2014", "-"), ("\u00a0", " "), ("\u202f", ""), ("\u2009", ""),
    ("\\dfrac", "\\frac"), ("\\tfrac", "\\frac"), ("\\left", ""), ("\\right", ""), ("\\displaystyle", ""),
    ("{,}", ","), ("\\!", ""), ("\\,", ""), ("\\;", ""), ("\\:", ""), ("\\ ", " "), ("\\$", "$"), ("\\%", "%"),
    ("\\times", "*"), ("\\cdot", "*"), ("\u00d7", "*"), ("\u00b7", "*"), ("\\div", "/"), ("\u00f7", "/"),
    ("^{\\circ}", ""), ("^\\circ", ""), ("\u00b0", ""), ("\\approx", "="), ("\u2248", "="), ("\\(", ""),
    ("\\)", ""), ("\\[", ""), ("\\]", ""), ("**", ""), ("__", ""), ("`", ""),
]


def _clean(text: str) -> str:
    """Strip the wrappers around an answer: markdown, LaTeX delimiters and text commands, currency and percent
    signs, trailing punctuation. Keeps the mathematical content."""
    text = re.sub(r"<<[^<>]*>>", "", text)  # GSM8K calculator annotations
    for old, new in _CLEAN_REPLACEMENTS:
        text = text.replace(old, new)
    for _ in range(3):  # nested \text{\textbf{...}}
        text, changed = _TEXT_COMMANDS_RE.subn(r" \1 ", text)
        if not changed:
            break
    text = _SIMPLE_FRAC_RE.sub(lambda m: f"{(m.group(1) or m.group(3)).replace(' ', '')}/"
                                         f"{(m.group(2) or m.group(4)).replace(' ', '')}", text)
    text = text.replace("$", " ").replace("%", " ")
    text = re.sub(r"\s+", " ", text).strip()
    # Trailing punctuation and a pair of wrapping brackets or quotes ("(18)", "'18'").
    for _ in range(3):
        text = text.strip().rstrip(".,;:!?").strip()
        if len(text) >= 2 and text[0] + text[-1] in ("()", "[]", "{}", '""', "''"):
            text = text[1:-1]
    return text.strip()


def _normalize_text(text: str) -> str:
    """Non-numeric answers: lower case, no spaces, no trailing punctuation ("\\frac{\\sqrt{3}}{2}", "yes", "b")."""
    text = text.lower().strip().rstrip(".")
    text = re.sub(r"^(?:the\s+)?(?:answer|option|choice)\s+(?:is\s+)?", "", text)
    return re.sub(r"\s+", "", text)


_RETRACTION_RE = re.compile(r"\b(?:no,?\s*wait|wait,?\s*no|actually|correction|sorry|i mean|oops|"
                            r"i made a mistake|that'?s wrong|that is wrong)\b", re.IGNORECASE)


def _last_number(text: str) -> tuple[str, int] | None:
    """The last number standing alone in `text` (normalised) and where it starts, or None."""
    last = None
    for match in _TEXT_NUMBER_RE.finditer(text):
        last = match
    if last is None:
        return None
    value = _number(last.group("num"))
    if last.group("den"):
        denominator = _number(last.group("den"))
        if denominator == 0:
            return None
        value /= denominator
    if last.group("sign") == "-":
        value = -value
    return _format_number(value), last.start()


def normalize_value(span: str) -> str | None:
    """The answer a span holds ("$1,234.50 per month" → "1234.5", "\\frac{3}{4}" → "3/4", "x = -5" → "-5",
    "The total is 18 apples" → "18", "\\frac{\\sqrt{3}}{2}" → "\\frac{\\sqrt{3}}{2}"), or None when empty."""
    text = _clean(span)
    leading = _LEADING_NUMBER_RE.match(text)
    if "=" in text and not (leading and re.match(r"\s*[^\W\d_]", text[leading.end():])):
        # "16 - 3 - 4 = 9", "x = 5": the value is what the last equals sign gives; but in "7 apples, since 3 + 4 = 7"
        # the value comes first.
        tail = text.rsplit("=", 1)[1].strip()
        if tail:
            text = _clean(tail)
    if not text:
        return None
    lowered = text.lower()
    words = None if re.search(r"\d", lowered) else _WORD_NUMBER_RE.match(lowered)
    if words:
        if words.group("tens"):
            number = _WORD_NUMBERS[words.group("tens")] + _WORD_NUMBERS[words.group("unit")]
        else:
            number = _WORD_NUMBERS[words.group("word")]
        negative = words.group("neg") or words.group("neg2")
        return str(-number if negative else number)
    negative_word = re.match(r"^(?:negative|minus)\s+", lowered)
    if negative_word:
        text = "-" + text[negative_word.end():]
    match = _LEADING_NUMBER_RE.match(text)
    if match:
        rest = text[match.end():]
        whole = _evaluate(text)
        if whole is not None:  # "2 * 9", "16 - 3 - 4", "3/4"
            return _format_number(whole)
        if re.match(r"(?:[a-z](?![a-z])|\\(?!%)|\^|_|\(|\{|!)", rest, re.IGNORECASE) or re.match(
                r"\s*[-+*/^]\s*[\d\\(a-z]", rest, re.IGNORECASE):
            # "2\sqrt{3}", "2x", "2^{10}", "3 + \pi": an expression, compared as text or by math-verify.
            return text
        if _RETRACTION_RE.search(rest):  # "12, no wait, 14"
            found = _last_number(rest)
            if found:
                return found[0]
        value = _number(match.group("num"))
        if match.group("den"):
            denominator = _number(match.group("den"))
            if denominator != 0:
                value /= denominator
        if (match.group("s1") == "-") != (match.group("s2") == "-"):
            value = -value
        return _format_number(value)
    if re.search(r"[\\^_{}]", text):  # LaTeX without a leading number: "\frac{\sqrt{3}}{2}", "\pi"
        return text
    # Words first ("she makes 18 dollars a day", "approximately 3.5 hours"): the last number of the span.
    found = _last_number(text)
    if found:
        return found[0]
    return _normalize_text(text)


# --- markers -----------------------------------------------------------------------------------------------------

_THINK_END_RE = re.compile(r"</think>", re.IGNORECASE)
# A new question the model invented after its answer (base models continue few-shot prompts).
_CONTINUATION_RE = re.compile(r"\n\s*(?:question|q|problem)\s*\d*\s*[:.：]|<start_of_turn>\s*user|<\|im_start\|>\s*user|"
                              r"\n\s*(?:human|user)\s*:", re.IGNORECASE)
_HASHES_RE = re.compile(r"####[ \t]*([^\n]*)")
_BOXED_RE = re.compile(r"\\(?:boxed|fbox)\s*(\{)|\\boxed\s+([^\s$]+)")
_ANSWER_TAG_RE = re.compile(r"<answer>\s*(.*?)\s*(?:</answer>|$)", re.IGNORECASE | re.DOTALL)
_ANSWER_IS_RE = re.compile(
    r"\banswer(?:\s+to\s+(?:the|this)\s+(?:question|problem))?\s*(?:\([^()\n]{0,40}\))?\**\s*"
    r"(?:(?:is|was|would\s+be|will\s+be|should\s+be|must\s+be|equals)\s*(?:therefore|thus|then|simply|just|clearly|"
    r"indeed)?\s*[:=]?|[:=：])[ \t*]*(?:\n[ \t]*){0,2}",
    re.IGNORECASE,
)
_FINAL_ANSWER_HEADING_RE = re.compile(r"\bfinal\s+answer\b\**[ \t]*\n(?:[ \t]*\n){0,2}", re.IGNORECASE)
_A_COLON_RE = re.compile(r"(?m)^[ \t*]*A[ \t]*[:：][ \t]*([^\n]*)")
_SENTENCE_END_RE = re.compile(r"\n|\.(?=\s|$)|;\s")
# Content that may start a bare-answer marker (#### and A:): a number, a sign, currency, LaTeX or markdown.
_VALUE_START_RE = re.compile(r"\s*(?:\*\*|\$|\\|[-+−]|[€£¥₹]|\d|\.\d)")


def _balanced(text: str, open_at: int) -> tuple[str, int] | None:
    """The text inside the braces that open at `open_at`, and where it ends; None when they never close."""
    depth = 0
    for index in range(open_at, min(len(text), open_at + 2000)):  # a longer "answer" is no answer
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return text[open_at + 1:index], index
    return None


def _markers(text: str) -> list[tuple[int, str, str]]:
    """Every explicit final answer in `text`: (position of the value, marker name, span holding the value)."""
    found = []
    for match in _HASHES_RE.finditer(text):
        if _VALUE_START_RE.match(match.group(1)):  # "#### Final answer" is a markdown heading, not an answer
            found.append((match.start(1), "####", match.group(1)))
    for match in _BOXED_RE.finditer(text):
        if match.group(1):
            inner = _balanced(text, match.start(1))
            if inner is not None:
                found.append((match.start(1), "boxed", inner[0]))
        else:
            found.append((match.start(2), "boxed", match.group(2)))
    for match in _ANSWER_TAG_RE.finditer(text):
        content = match.group(1)
        if content.strip():
            # Inside the tag only the first line counts unless the tag is closed ("<answer>18" then more text).
            if "</answer>" not in match.group(0).lower():
                content = content.split("\n", 1)[0]
            found.append((match.start(1), "answer_tag", content))
    for pattern in (_ANSWER_IS_RE, _FINAL_ANSWER_HEADING_RE):
        for match in pattern.finditer(text):
            rest = text[match.end():]
            end = _SENTENCE_END_RE.search(rest)
            span = rest[:end.start()] if end else rest
            if span.strip():
                found.append((match.end(), "answer_is", span[:300]))
    for match in _A_COLON_RE.finditer(text):
        if _VALUE_START_RE.match(match.group(1)):  # "A: 42", not "A: Janet sells 16 - 3 - 4 = 9 eggs ..."
            found.append((match.start(1), "a_colon", match.group(1)))
    return found


def _answer_region(text: str) -> str:
    """The part of a completion that answers the question asked (see the module's rule 1)."""
    ends = list(_THINK_END_RE.finditer(text))
    if ends and text[ends[-1].end():].strip():
        text = text[ends[-1].end():]
    for match in _CONTINUATION_RE.finditer(text):
        if match.start() > 0 and re.search(r"\d", text[:match.start()]):
            return text[:match.start()]
    return text


_RETRACTION_AFTER_RE = re.compile(
    r"\b(?:wait|hmm|oops|sorry|actually|correction|i apologi[sz]e)\b[^.\n]{0,80}?\b(?:mistake|error|wrong|incorrect|"
    r"miscalculat\w*|not right|recalculate|redo)\b|\bno,?\s+wait\b|\bi made (?:a|an) (?:mistake|error)\b",
    re.IGNORECASE,
)


def extract_answer(text: str | None) -> Extraction:
    """The final answer of a completion; see the module docstring for the rules."""
    if not text or not text.strip():
        return Extraction(None, False)
    region = _answer_region(text)
    markers = [m for m in _markers(region) if m[2].strip()]
    for position, name, span in sorted(markers, key=lambda m: m[0], reverse=True):
        value = normalize_value(span)
        if value is None:
            continue
        after = region[position + len(span):]
        retraction = _RETRACTION_AFTER_RE.search(after)
        if retraction:
            corrected = _last_number(_clean_for_search(after[retraction.end():]))
            if corrected:
                return Extraction(corrected[0], False, None)
        return Extraction(value, True, name)
    found = _last_number(_clean_for_search(region))
    return Extraction(found[0] if found else None, False, None)


def _clean_for_search(text: str) -> str:
    """Running text made searchable for its last number: wrappers off, LaTeX fractions as a/b."""
    text = re.sub(r"<<[^<>]*>>", " ", text)
    for old, new in _CLEAN_REPLACEMENTS:
        text = text.replace(old, new)
    text = _TEXT_COMMANDS_RE.sub(r" \1 ", text)
    text = _SIMPLE_FRAC_RE.sub(lambda m: f" {(m.group(1) or m.group(3)).replace(' ', '')}/"
                                         f"{(m.group(2) or m.group(4)).replace(' ', '')} ", text)
    return text


# --- references and comparison ------------------------------------------------------------------------------------

def reference_answer(text: str) -> str:
    """The reference answer of a GSM8K solution: what follows the last `####`, thousands separators removed. A
    bare answer ("1,234", "72") is returned the same way."""
    text = (text or "").strip()
    if "####" in text:
        text = text.rsplit("####", 1)[1]
    return re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", text.strip())


_MATH_VERIFY = None  # the math_verify module once imported, False when it is not installed


def _math_verify_equal(predicted: str, reference: str) -> bool:
    """Symbolic equality of two LaTeX answers with math-verify, when installed. Its timeouts use signals, which
    work only in a process's main thread; elsewhere it runs without them (inputs are short, see the caller)."""
    global _MATH_VERIFY
    if _MATH_VERIFY is None:
        try:
            import math_verify

            _MATH_VERIFY = math_verify
        except ImportError:
            _MATH_VERIFY = False
    if not _MATH_VERIFY:
        return False
    main_thread = threading.current_thread() is threading.main_thread()
    timeout = 5 if main_thread else None
    try:
        gold = _MATH_VERIFY.parse(f"${reference}$", parsing_timeout=timeout)
        guess = _MATH_VERIFY.parse(f"${predicted}$", parsing_timeout=timeout)
        return bool(gold and guess and _MATH_VERIFY.verify(gold, guess, timeout_seconds=timeout))
    except Exception:  # math-verify raises on what it cannot parse; that is simply "not shown equal"
        return False


def _terminates(value: Fraction) -> bool:
    denominator = value.denominator
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    return denominator == 1


def answers_match(predicted: str | None, reference: str | None) -> bool:
    """Whether a predicted answer equals the reference: numerically (relative tolerance 1e-4, and a decimal
    rounded to at least two places equals a fraction it rounds: 0.33 == 1/3), else as normalised text, else
    symbolically with math-verify."""
    if predicted is None or reference is None:
        return False
    guess, gold = normalize_value(str(predicted)), normalize_value(str(reference))
    if guess is None or gold is None:
        return False
    guess_number, gold_number = to_number(guess), to_number(gold)
    if guess_number is not None and gold_number is not None:
        if abs(guess_number - gold_number) <= max(abs(gold_number), Fraction(1)) * Fraction(1, 1_000_000):
            return True  # float noise: 17.9999999 for 18
        # A fraction with no finite decimal (1/3) is right when rounded to at least two places (0.33, 33.33).
        decimals = len(guess.split(".", 1)[1]) if "." in guess and "/" not in guess else 0
        if decimals >= 2 and not _terminates(gold_number):
            return abs(guess_number - gold_number) <= Fraction(1, 2 * 10 ** decimals)
        return False
    if _normalize_text(guess) == _normalize_text(gold):
        return True
    if max(len(guess), len(gold)) <= 200:
        return _math_verify_equal(guess, gold)
    return False
