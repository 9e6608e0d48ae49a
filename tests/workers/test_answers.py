"""Answer extraction and comparison on completions written the way real models write them."""
import pytest

from workers.common.answers import Extraction, answers_match, extract_answer, normalize_value, reference_answer

# (completion, the answer a careful human reads, whether it is given with a final-answer marker)
COMPLETIONS = [
    # GSM8K style, chain of thought then ####
    ("Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\nShe makes 9 * 2 = $<<9*2=18>>18 every day at the "
     "farmer's market.\n#### 18", "18", True),
    ("It takes 2/2=<<2/2=1>>1 bolt of white fiber\nSo the total is 2+1=<<2+1=3>>3 bolts\n#### 3", "3", True),
    ("The house cost 80,000 + 50,000 = $130,000.\nThe profit is 195,000 - 130,000 = $65,000.\n#### 65,000", "65000", True),
    ("He ends with 20 - 25 = -5 dollars.\n####-5", "-5", True),
    ("Total: 1,234.50 dollars\n#### $1,234.50", "1234.5", True),
    # \boxed, with nested braces and LaTeX fractions
    ("First, 3 cups per batch times 4 batches is 12 cups.\nSo she needs $\\boxed{12}$ cups of flour.", "12", True),
    ("The fraction of students who passed is\n\\[\n\\boxed{\\frac{3}{4}}\n\\]", "0.75", True),
    ("Each gets \\(\\dfrac{3}{4}\\) of a pizza, so the answer is \\(\\boxed{\\dfrac{3}{4}}\\).", "0.75", True),
    ("Simplifying, $x = \\boxed{-7}$.", "-7", True),
    ("The total cost is $\\boxed{\\$1,250}$.", "1250", True),
    ("We get $2 \\times 9 = 18$.\n\n**Final Answer**\n\n$$\\boxed{18}$$", "18", True),
    ("The percentage is \\boxed{25\\%}.", "25", True),
    ("So the speed is \\boxed{60 \\text{ km/h}}.", "60", True),
    ("The length of the side is \\boxed{2\\sqrt{3}}.", "2\\sqrt{3}", True),
    ("Adding the two values gives \\boxed{x = 14}.", "14", True),
    # "The answer is", "Final answer:"
    ("Tom has 5 apples and buys 7 more, so he has 5 + 7 = 12 apples. The answer is 12.", "12", True),
    ("She reads 20 pages a day for 7 days: 20 * 7 = 140 pages.\nThe answer is: 140 pages", "140", True),
    ("Final answer: 42", "42", True),
    ("**Final Answer:** $1,234.50", "1234.5", True),
    ("So the answer is **$18**.", "18", True),
    ("The answer is −3.", "-3", True),
    ("Therefore, the final answer is 0.5.", "0.5", True),
    ("The train travels 120 miles in 2 hours, so its speed is 60 mph.\n\nThe final answer is 60 miles per hour.",
     "60", True),
    ("Final Answer: The final answer is $72$. I hope it is correct.", "72", True),
    ("Answer: Janet makes $18 every day at the market.", "18", True),
    ("The answer to the question is 3/4.", "0.75", True),
    ("So the answer is five.", "5", True),
    ("The answer (in dollars) is 250.", "250", True),
    ("Step 1: 12 * 3 = 36\nStep 2: 36 + 4 = 40\n\n### Final Answer\n40", "40", True),
    ("The answer is 7, since she had 10 and gave away 3.", "7", True),
    ("So the answer is 12 - 3 = 9 dollars.", "9", True),
    ("Hmm, the answer is not 12 but 14.", "14", True),
    ("Let's break this down step by step:\n\n1. **Eggs laid:** 16 per day.\n2. **Remaining eggs:** 16 - 3 - 4 = 9\n"
     "3. **Earnings:** 9 eggs * $2/egg = $18\n\n**Answer:** Janet makes $18 at the farmers' market every day.", "18", True),
    # <answer> tags
    ("<reasoning>\nShe has 3 boxes of 8 crayons, 3 * 8 = 24.\n</reasoning>\n<answer>\n24\n</answer>", "24", True),
    ("<think>16 - 3 - 4 = 9, 9 * 2 = 18</think>\n<answer>18</answer>", "18", True),
    ("<answer>The answer is 7</answer>", "7", True),
    ("<reasoning>Two dozen is 24 eggs.</reasoning><answer>24 eggs", "24", True),
    # "A: 42"
    ("Q: How many legs do 3 spiders have?\nA: 24", "24", True),
    ("A: $15", "15", True),
    # Markers win over the last number; with several markers the last one counts
    ("The answer is 18. Janet sells 9 eggs for $2 each.", "18", True),
    ("#### 12\nCheck: 4 boxes of 3 make 12, and 2 more boxes would make 18.", "12", True),
    ("The answer is 12.\nLet me re-read the question: it asks for the total, so I add the 2 extra.\nThe answer is 14.",
     "14", True),
    ("\\boxed{10}. Then we double it.\nSo the final answer is \\boxed{20}.", "20", True),
    ("The answer is 14.\n\nTo verify: 14 - 2 = 12, which matches the number of students left.", "14", True),
    # Self-corrections
    ("I think it's 12, no wait, 14.", "14", False),
    ("The answer is 12, no wait, 14.", "14", True),
    ("The answer is 12.\n\nWait, I made a mistake: she also bought 2 more, so the total is 12 + 2 = 14.", "14", False),
    ("The answer is 18.\n\nWait, let me double-check: 9 * 2 = 18. Yes, that is correct.", "18", True),
    # No marker: the last number, not formatted
    ("Janet has 16 eggs. She uses 7. She sells 9 eggs at $2 each, making $18.", "18", False),
    ("So in total she spends 3 * 12 + 4 = 40 dollars", "40", False),
    ("He needs 3/4 of a cup.", "0.75", False),
    ("The temperature dropped to -5 degrees.", "-5", False),
    ("The difference is 10-3=7", "7", False),
    ("Total sales were $1,234,567.89 this year", "1234567.89", False),
    ("**42**", "42", False),
    ("The width is 2.50 meters.", "2.5", False),
    ("She saved 15% of her salary, which is 450 dollars.", "450", False),
    ("I'm not sure how to solve this problem.", None, False),
    ("", None, False),
    # Base models that go on with an invented next question: only the first answer counts
    ("She has 5 + 3 = 8 marbles.\n#### 8\n\nQuestion: Tom has 4 cars and buys 6 more. How many cars?\nAnswer: "
     "4 + 6 = 10\n#### 10", "8", True),
    ("He walks 3 * 2 = 6 miles. The answer is 6.\n\nQ: A shop sells 5 pens... A: 20", "6", True),
    # Reasoning blocks: the answer after </think> counts
    ("<think>Maybe the answer is 10? No: 4 * 3 = 12.</think>\nThe total is 12.", "12", False),
    # Headings are not answers
    ("#### Step 1: find the cost of one pen\nOne pen costs 12 / 4 = 3 dollars.\n#### Step 2\nFive pens cost 15 dollars."
     "\n#### 15", "15", True),
    # Non-numeric answers
    ("The correct option is B, so the answer is \\boxed{\\text{B}}.", "b", True),
    ("Thus the answer is \\boxed{\\frac{\\sqrt{3}}{2}}.", "\\frac{\\sqrt{3}}{2}", True),
]


@pytest.mark.parametrize("completion,value,formatted", COMPLETIONS, ids=[str(i) for i in range(len(COMPLETIONS))])
def test_it_reads_the_answer_a_careful_human_reads(completion, value, formatted):
    extraction = extract_answer(completion)
    assert extraction.value == value, completion
    assert extraction.formatted is formatted, completion


def test_it_grades_a_set_of_completions_like_a_human():
    assert len(COMPLETIONS) >= 50
    for completion, value, _ in COMPLETIONS:
        if value is not None:
            assert answers_match(extract_answer(completion).value, value), completion


def test_it_names_the_marker_it_used():
    assert extract_answer("#### 5") == Extraction("5", True, "####")
    assert extract_answer("\\boxed{5}").marker == "boxed"
    assert extract_answer("<answer>5</answer>").marker == "answer_tag"
    assert extract_answer("The answer is 5.").marker == "answer_is"
    assert extract_answer("A: 5").marker == "a_colon"
    assert extract_answer("maybe 5").marker is None


def test_it_takes_the_reference_after_the_hashes():
    assert reference_answer("Janet sells 9 eggs.\nShe makes $18.\n#### 18") == "18"
    assert reference_answer("... #### 1,234") == "1234"
    assert reference_answer("1,234,567") == "1234567"
    assert reference_answer("  -5 ") == "-5"
    assert reference_answer("#### 0.5") == "0.5"


@pytest.mark.parametrize("predicted,reference", [
    ("1,234.50", "1234.5"), ("0.75", "3/4"), ("42.0", "42"), ("$18", "18"), ("18 dollars", "18"), ("-5", "−5"),
    ("\\frac{3}{4}", "0.75"), ("\\dfrac{6}{8}", "3/4"), ("0.33", "1/3"), ("33.33", "100/3"), ("17.9999999", "18"),
    ("5%", "5"), ("033", "33"), ("\\frac{\\sqrt{3}}{2}", "\\dfrac{\\sqrt 3}{2}"), ("B", "b"), ("\\text{yes}", "Yes"),
    ("2 \\times 9", "18"), ("x = 7", "7"),
])
def test_it_compares_answers_as_numbers_or_expressions(predicted, reference):
    assert answers_match(predicted, reference)


@pytest.mark.parametrize("predicted,reference", [
    ("18.5", "18"), ("0.3", "1/3"), ("0.13", "0.125"), ("19", "18"), (None, "18"), ("", "18"), ("18", None),
    ("2\\sqrt{3}", "3\\sqrt{2}"), ("A", "B"), ("180", "18"), ("1,234", "1.234"),
])
def test_it_tells_different_answers_apart(predicted, reference):
    assert not answers_match(predicted, reference)


def test_it_normalises_values():
    assert normalize_value("$1,234.50 per month") == "1234.5"
    assert normalize_value("\\frac{3}{4}") == "0.75"
    assert normalize_value("\\frac{1}{3}") == "1/3"
    assert normalize_value("x = -5") == "-5"
    assert normalize_value("The total is 18 apples") == "18"
    assert normalize_value("  ") is None


def test_it_stays_fast_on_long_and_hostile_text():
    import time

    text = ("Let me think. " + "1 + 1 = 2, " * 2000 + "\\boxed{" * 500 + "{{{" + "answer is " * 500) * 2
    started = time.monotonic()
    extract_answer(text)
    extract_answer("The answer is " + "9" * 5000)
    extract_answer("#### " + "9" * 5000 + " and " + "1." + "5" * 5000)
    assert time.monotonic() - started < 2.0
