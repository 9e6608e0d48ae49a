"""The offline extractive generator: facts with short answers, each asked several ways, from prose, tables,
slides and records; what is not a fact gives nothing."""
import re
import time
from collections import defaultdict

import pytest

from workers.engine.data.chunking import chunk_text
from workers.engine.data.generate import extractive_pairs, facts_of_sentence, not_a_fact, question_for
from workers.common.sentences import split_sentences


def asked(sentence: str) -> dict[str, list[str]]:
    """{answer: questions} of one sentence."""
    return {fact.answer: fact.questions for fact in facts_of_sentence(sentence)}


def by_fact(pairs) -> dict[str, list]:
    groups = defaultdict(list)
    for pair in pairs:
        groups[pair.fact].append(pair)
    return groups


@pytest.mark.parametrize("sentence, answer, questions", [
    ("The observatory on Mount Caradin was opened in 1903.", "1903",
     ["When was the observatory on Mount Caradin opened?", "The observatory on Mount Caradin was opened in which year?",
      "In what year was the observatory on Mount Caradin opened?"]),
    ("The first railway reached Eldhavn in 1871.", "1871",
     ["When did the first railway reach Eldhavn?", "The first railway reached Eldhavn in which year?",
      "In what year did the first railway reach Eldhavn?"]),
    ("The Tallow Bridge was built by Anna Kessel.", "Anna Kessel",
     ["Who built the Tallow Bridge?", "The Tallow Bridge was built by whom?", "By whom was the Tallow Bridge built?"]),
    ("The capital of the valley is Eldhavn.", "Eldhavn",
     ["What is the capital of the valley?", "What is the capital of the valley called?",
      "What is the name of the capital of the valley?"]),
    ("The longest river is the Sorrel, which runs for 212 kilometres.", "212 kilometres",
     ["How many kilometres does the Sorrel run for?", "The Sorrel runs for how many kilometres?",
      "For how many kilometres does the Sorrel run?"]),
    ("Gzip is a compression utility designed to replace compress.", "a compression utility",
     ["What is Gzip?", "What kind of thing is Gzip?", "How is Gzip best described?"]),
    ("The mayor of Eldhavn is Ilsa Marrow.", "Ilsa Marrow",
     ["Who is the mayor of Eldhavn?", "What is the name of the mayor of Eldhavn?", "The mayor of Eldhavn is who?"]),
    ("Lyon, the capital of the Gauls, was founded by the Romans.", "Lyon",
     ["What is the capital of the Gauls?", "What is the capital of the Gauls called?",
      "What is the name of the capital of the Gauls?"]),
    ("A young swan is called a cygnet.", "a cygnet",
     ["What is a young swan called?", "A young swan is called what?", "What name is given to a young swan?"]),
    ("The festival of lanterns is known as Lanternfall.", "Lanternfall",
     ["What is the festival of lanterns known as?", "The festival of lanterns is known as what?",
      "What name is given to the festival of lanterns?"]),
    ("The lake is 40 metres deep.", "40 metres", ["How deep is the lake?", "The lake is how deep?",
                                                  "What is the depth of the lake?"]),
    ("Little Fen is known for its floating gardens.", "floating gardens",
     ["What is Little Fen known for?", "Little Fen is known for what?"]),
    ("The silver mines of Oremouth employ six hundred workers.", "six hundred",
     ["How many workers do the silver mines of Oremouth employ?", "The silver mines of Oremouth employ how many workers?",
      "What number of workers do the silver mines of Oremouth employ?"]),
    ("The valley council meets every second Tuesday.", "every second Tuesday",
     ["When does the valley council meet?", "How often does the valley council meet?", "The valley council meets when?"]),
])
def test_it_asks_for_a_fact_several_ways_with_a_short_answer(sentence, answer, questions):
    assert asked(sentence)[answer] == questions


def test_it_finds_more_than_one_fact_in_a_sentence():
    facts = asked("The oldest bridge is the Tallow Bridge, built in 1612.")
    assert facts["the Tallow Bridge"][0] == "What is the oldest bridge?"
    assert facts["1612"] == ["When was the Tallow Bridge built?", "The Tallow Bridge was built in which year?",
                             "In what year was the Tallow Bridge built?"]
    percentages = asked("The share of renewable power rose by 12% in 2020.")
    assert "12%" in percentages and "2020" in percentages


@pytest.mark.parametrize("line, reason", [
    ("img = cv2.imread(path) loads the picture into memory.", "code"),
    ("Run pip install requests to get the library.", "code"),
    ("Read the manual to learn more about the valley.", None),  # an instruction: no reason, but no fact either
    ("2019 2020 2021 12.5 13.1 14.2 15.0 16.3 17.9", "numbers or symbols"),
    ("Smith, J., Jones, K. (2019). The population of Lyon. Journal of Cities, 12(3): 45-67.", "reference"),
    ("Dupont et al. found that the river was dredged in 1990.", "reference"),
    ("See https://example.org/lyon for the history published in 2001.", "link"),
    ("The city was big.", None),
    ("Bridge.", "too short"),
])
def test_it_skips_what_is_not_a_fact(line, reason):
    assert not_a_fact(line) == reason
    if reason is not None or line.startswith("Read"):
        assert extractive_pairs([line]) == []


def test_it_asks_nothing_of_headings_code_blocks_or_pronoun_subjects():
    text = ("# The History of Lyon\n\nINTRODUCTION\n\n```\nThe port is 6379 by default.\n```\n\n"
            "It was rebuilt in 1990. They moved there in 1850. There are three bridges.")
    assert extractive_pairs([text]) == []


def test_it_reads_table_rows_slide_lines_and_records():
    table = "Rivers of the valley.\n\n| River | Length | Source |\n|---|---|---|\n| Sorrel | 42 km | North ridge |\n| Amber | 17 km | Lake Ora |"
    pairs = {(p.question, p.answer) for p in extractive_pairs([table])}
    assert ("What is the length of Sorrel?", "42 km") in pairs and ("What is Amber's source?", "Lake Ora") in pairs
    # A table cut by chunking: the rows of the second chunk keep the header of the first.
    continued = extractive_pairs([table, "| Ember | 9 km | Glass lake |"])
    assert ("What is the length of Ember?", "9 km") in {(p.question, p.answer) for p in continued}
    # Numbers only: nothing to ask.
    assert extractive_pairs(["| Year | 2019 | 2020 |\n|---|---|---|\n| 1 | 2.5 | 3.5 |"]) == []

    slides = "# Project Apollo\n\nLaunch date: March 2021\nBudget — 4 million dollars\n\nSpeaker notes: The crew trained in Houston."
    pairs = {(p.question, p.answer) for p in extractive_pairs([slides])}
    assert ("What is the launch date of Project Apollo?", "March 2021") in pairs
    assert ("What is the budget of Project Apollo?", "4 million dollars") in pairs
    assert ("Where did the crew train?", "Houston") in pairs

    records = "city: Lyon\ncountry: France\npopulation: 513000\n\ncity: Nice\ncountry: France\npopulation: 342000"
    pairs = extractive_pairs([records])
    assert {(p.question, p.answer) for p in pairs} >= {("What is the population of Lyon?", "513000"),
                                                      ("What is Nice's country?", "France")}
    # Two records with the same "country: France" line are still two facts.
    assert len({p.fact for p in pairs if p.answer == "France"}) == 2


def test_it_gives_each_fact_one_key_and_asks_a_question_once():
    pairs = extractive_pairs(["The capital of the valley is Eldhavn. The capital of the valley is Eldhavn.",
                              "The lake is 40 metres deep. The longest river is the Sorrel."])
    groups = by_fact(pairs)
    assert len(groups) == 3 and all(len(g) == 3 for g in groups.values())
    assert len({p.question for p in pairs}) == len(pairs)
    assert {p.answer for p in groups[pairs[0].fact]} == {"Eldhavn"} and pairs[0].chunk_index == 0
    assert len(extractive_pairs(["The capital of the valley is Eldhavn."], max_pairs=1)) == 1
    assert question_for("The capital of the valley is Eldhavn.") == "What is the capital of the valley?"


# Real text nobody here wrote: short excerpts of Debian's documentation (GNU gzip's README and base-passwd's
# "Users and Groups in the Debian System"), and of the shipped sample.
GZIP_README = """This is the file README for the gzip distribution.

The GNU gzip home page is https://www.gnu.org/software/gzip.

gzip (GNU zip) is a compression utility designed to be a replacement
for 'compress'. Its main advantages over compress are much better
compression and freedom from patented algorithms.  The GNU Project
uses it as the standard compression program for its system.

gunzip can currently decompress files created by gzip, compress or
pack. The detection of the input format is automatic.  For the
gzip format, gunzip checks a 32 bit CRC. For pack, gunzip checks the
uncompressed length.

gzip produces files with a .gz extension. Previous versions of gzip
used the .z extension, which was already used by the 'pack'
Huffman encoder.

    * The complete output of "gzip -V" (or the contents of revision.h
      if you can't get gzip to compile)
"""

USERS_AND_GROUPS = """Chapter 1. Introduction

   The Debian base-passwd package contains the master versions of
   /etc/passwd and /etc/group. The update-passwd tool keeps the
   entries in these master files in sync on all Debian systems.

   root
          Root is (typically) the superuser.

   bin
          HELP: No files on my system are owned by user or group bin.

   news
          Files in the news spool are owned by user and group news,
          for example. Group adm is used for system monitoring tasks.

   dip
          The group's name stands for "Dialup IP".
"""

FIELD_GUIDE = """## Geography

The capital of the valley is Eldhavn. The longest river is the Sorrel, which runs for 212 kilometres. The highest peak is Mount Caradin at 3,140 metres. The largest lake is Lake Veyra. The valley floor is covered in copper grass. The northern pass is closed from November to March. The oldest bridge is the Tallow Bridge, built in 1612.

## Science and industry

The observatory on Mount Caradin was opened in 1903. The first railway reached Eldhavn in 1871. The silver mines of Oremouth employ six hundred workers.
"""


@pytest.mark.parametrize("text, least", [(GZIP_README, 4), (USERS_AND_GROUPS, 5), (FIELD_GUIDE, 12)])
def test_it_makes_short_answers_from_real_text_that_stand_in_it(text, least):
    pairs = extractive_pairs([c.text for c in chunk_text(text)])
    flat = " ".join(text.split())
    groups = by_fact(pairs)
    assert len(groups) >= least
    for pair in pairs:
        assert pair.question.endswith("?") and pair.question[0].isalpha()
        assert len(pair.answer.split()) <= 10 and pair.answer in flat, pair
        assert pair.answer.lower() not in pair.question.lower()
        for noise in ("https", "gnu.org", "revision.h", "HELP", "my system"):
            assert noise not in pair.question and noise not in pair.answer
    for group in groups.values():
        assert len({p.answer for p in group}) == 1 and len({p.question for p in group}) == len(group)
    # Most facts are asked more than one way.
    assert sum(len(g) >= 2 for g in groups.values()) >= 0.7 * len(groups)


def test_it_answers_real_text_as_a_reader_would():
    pairs = {(p.question, p.answer) for p in extractive_pairs([GZIP_README, USERS_AND_GROUPS])}
    assert {("What is gzip?", "a compression utility"), ("What does gzip produce?", "files with a .gz extension"),
            ("What does gunzip check for the gzip format?", "a 32 bit CRC"),
            ("What does the group's name stand for?", "Dialup IP"),
            ("What is group adm used for?", "system monitoring tasks"),
            ("What are files in the news spool owned by?", "user and group news")} <= pairs


def test_it_reads_thousands_of_sentences_a_second():
    text = "\n\n".join([GZIP_README, USERS_AND_GROUPS, FIELD_GUIDE] * 40)
    chunks = [c.text for c in chunk_text(text)]
    sentences = sum(len(split_sentences(c)) for c in chunks)
    started = time.perf_counter()
    extractive_pairs(chunks)
    elapsed = time.perf_counter() - started
    assert sentences / elapsed > 2000, f"{sentences / elapsed:.0f} sentences a second"
    assert re.sub(r"\s+", " ", text)  # the text is real, not empty
