"""Sentence splitting that knows abbreviations. Pure Python: no Django, no torch, no model.

A full stop ends a sentence unless the word before it is an abbreviation ("Dr.", "e.g.", "et al.", "U.S."), an
initial ("J. R. R. Tolkien"), or the next word starts in lower case after a short word. A full stop inside a
token never ends one ("3.5", "cv2.imread", "example.org"): a sentence ends only where whitespace (or the end of
the text) follows its last mark and any closing quotes or brackets. Abbreviations that often end a sentence
("etc.", "p.m.", "U.S.", "Inc.") end one only when the next word is a usual first word of a sentence ("The",
"It", "In", ...). A blank line always ends a sentence, and so does a line break before a heading, a list item or
a table row ("# ...", "- ...", "1. ...", "| ...")."""
from __future__ import annotations

import re

# Never the end of a sentence: titles before names, and abbreviations that always continue ("e.g. the lake").
_CONTINUING = frozenset("""
mr mrs ms mx dr prof st mt ft rev hon col lt sgt capt cmdr adm gov sen pres supt insp messrs mme mlle
e.g eg i.e ie cf vs viz approx ca circa incl esp dept resp ibid op cit figs eq eqs chap vol vols nos pp p para paras
eds tr trans univ assn ave blvd rd jan feb apr jun jul aug sep sept oct nov dec tue tues thu thur thurs fri
""".split())
# Abbreviations that may end a sentence as well as continue it.
# Some of them are also plain words ("the sun.", "a fig.").
_MAY_END = frozenset("""etc al inc ltd co corp jr sr bros u.s u.k u.n e.u a.m p.m ph.d b.c a.d b.sc m.sc no fig sec secs
ch art min max est ed gen rep dist sq apt mar mon wed sat sun""".split())
# Before a number these continue ("No. 5", "p. 12", "Fig. 3"), whatever else they may do.
_BEFORE_NUMBER = frozenset("no nos p pp fig figs eq eqs sec secs ch chap art vol vols para paras op".split())
# The usual first words of a sentence: after an ambiguous abbreviation, one of these starts a new sentence.
_STARTERS = frozenset("""
the a an it its this that these those there then thus however in on at for from by as after before when while
if although though but and so we i he she they you our their his her my one some many most all each every no
other another such what which who why how where today yesterday tomorrow finally also moreover furthermore
meanwhile later since during despite because unlike like here both neither either nor not only yet still
""".split())

_DOTTED = re.compile(r"^(?:[A-Za-z]{1,3}\.)+[A-Za-z]{1,3}$")  # U.S, e.g, p.m, Ph.D (the last dot is the mark)
# A candidate end: sentence marks, then closing quotes or brackets, then whitespace or the end of the text.
# CJK full stops need no space after them.
_END = re.compile(r"(?P<mark>\.{3}|[.!?…]+|[。！？]+)(?P<close>[\"')\]»”’]*)(?=\s|$)|(?P<cjk>[。！？]+)(?=\S)")
_BLANK_LINE = re.compile(r"\n[ \t]*\n\s*")
# A line that starts a heading, a list item or a table row ends whatever came before it.
_BLOCK_LINE = re.compile(r"\n(?=[ \t]*(?:#{1,6}\s|[-*•+▪‣◦]\s|\d{1,3}[.)]\s|\|))")
_HEADING = re.compile(r"[ \t]*#{1,6}\s")
_WORD_BEFORE = re.compile(r"(\S+)$")
_LEAD = "\"'([{«“‘"


def _first_word(text: str, position: int, end: int) -> str:
    """The word that starts at or after `position` (leading quotes and brackets skipped)."""
    while position < end and text[position].isspace():
        position += 1
    while position < end and text[position] in _LEAD:
        position += 1
    stop = position
    while stop < end and not text[stop].isspace():
        stop += 1
    return text[position:stop]


def _is_break(text: str, mark_start: int, mark: str, after: int, limit: int) -> bool:
    """Whether the mark found at `mark_start` (followed by whitespace from `after`) ends a sentence."""
    following = _first_word(text, after, limit)
    if not following:
        return True
    first = following[0]
    lower_next = first.islower()
    if mark in ("...", "…"):
        return not lower_next and not first.isdigit()
    if mark != ".":
        return not lower_next  # "?", "!", "?!": an end unless the sentence plainly goes on ("Yahoo! is ...")
    match = _WORD_BEFORE.search(text, max(0, mark_start - 40), mark_start)
    word = match.group(1).lstrip(_LEAD) if match else ""
    if not word:
        return not lower_next
    key = word.lower()
    bare = following.strip(".,;:!?\"')]»”’").lower()
    if key in _BEFORE_NUMBER and first.isdigit():
        return False
    if key in _MAY_END or (_DOTTED.match(word) and key not in ("e.g", "i.e")):
        # "in the U.S. The ..." ends; "the U.S. Army" and "at 5 p.m. on Monday" go on.
        return not lower_next and bare in _STARTERS
    if key in _CONTINUING or key in ("e.g", "i.e"):
        return False
    if len(word) == 1 and word.isalpha():
        # An initial ("J. R. R. Tolkien") unless a usual first word follows ("plan B. The ...").
        return not lower_next and bare in _STARTERS
    if lower_next:
        # An unknown abbreviation is short ("approx.", "dept."); a sentence that ends with a longer word and
        # goes on in lower case starts with a name written that way ("gzip produces ...").
        letters = word.strip(".,;:()[]\"'")
        return len(letters) >= 4 and letters.isalpha() and letters.islower()
    return True


def _spans_in_line_block(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    cursor = start
    for match in _END.finditer(text, start, end):
        if match.group("cjk"):
            stop = match.end()
            spans.append((cursor, stop))
            cursor = stop
            continue
        mark = match.group("mark")
        if _is_break(text, match.start("mark"), mark, match.end(), end):
            stop = match.end()
            spans.append((cursor, stop))
            cursor = stop
    if cursor < end:
        spans.append((cursor, end))


def _spans_in_lines(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    """Sentences of lines that start with a heading, a list item, a table row or plain text. A heading is one
    line: the text on the next line is not part of it."""
    if _HEADING.match(text, start, end):
        newline = text.find("\n", start, end)
        if newline != -1:
            spans.append((start, newline))
            start = newline + 1
    _spans_in_line_block(text, start, end, spans)


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """(start, end) of every sentence of text[start:end], whitespace trimmed, in order."""
    end = len(text) if end is None else end
    raw: list[tuple[int, int]] = []
    blocks: list[tuple[int, int]] = []
    position = start
    for blank in _BLANK_LINE.finditer(text, start, end):
        blocks.append((position, blank.start()))
        position = blank.end()
    blocks.append((position, end))
    for block_start, block_end in blocks:
        line_start = block_start
        for line in _BLOCK_LINE.finditer(text, block_start, block_end):
            _spans_in_lines(text, line_start, line.start(), raw)
            line_start = line.end()
        _spans_in_lines(text, line_start, block_end, raw)
    spans = []
    for s, e in raw:
        s, e = _trim(text, s, e)
        if e > s:
            spans.append((s, e))
    return spans


def split_sentences(text: str) -> list[str]:
    """The sentences of a text, each on one line (line breaks inside a sentence become spaces)."""
    return [" ".join(text[s:e].split()) for s, e in sentence_spans(text)]
