"""Token-aware chunking with provenance. Pure Python: no Django, no torch.

A document's text is cut into sentences (paragraph starts marked), each sentence's tokens counted once, and
sentences packed greedily into chunks of at most `size` tokens. A chunk prefers to end where a paragraph ends
(when that leaves it at least half full), else at a sentence end; a single sentence longer than a chunk is cut
at line breaks, then between words. Each chunk begins `overlap` tokens before the previous one ended, at a
sentence start when one lies in reach, else at a word. Chunks never span two documents: one call, one text.

Tokens are counted with the base model's tokenizer when one is given (`tokenizer_counter`), else by the usual
rule of thumb of four characters a token, which needs no model and costs nothing."""
from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from workers.common.sentences import sentence_spans

TokenCounter = Callable[[str], int]

DEFAULT_SIZE = 300
DEFAULT_OVERLAP = 40


@dataclass
class TextChunk:
    index: int
    text: str
    char_start: int  # text == document_text[char_start:char_end]
    char_end: int
    page: int = 1  # pages (or slides) where the chunk starts and ends, 1-based
    page_end: int = 1
    token_count: int = 0


def approx_tokens(text: str) -> int:
    """About four characters a token: close for English prose with the BPE tokenizers of current models."""
    return (len(text) + 3) // 4


def tokenizer_counter(tokenizer) -> TokenCounter:
    """A counter from a tokenizer: a `tokenizers.Tokenizer` or a transformers tokenizer. Special tokens are not
    counted. The counter also has `.many(texts)`, which counts a batch in one call (fast tokenizers run it in
    parallel in Rust)."""
    if hasattr(tokenizer, "encode_batch"):  # tokenizers.Tokenizer

        def count(text: str) -> int:
            return len(tokenizer.encode(text, add_special_tokens=False).ids)

        def many(texts: list[str]) -> list[int]:
            return [len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
    else:  # transformers

        def count(text: str) -> int:
            return len(tokenizer(text, add_special_tokens=False)["input_ids"])

        def many(texts: list[str]) -> list[int]:
            return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]] if texts else []

    count.many = many
    return count


def load_tokenizer_counter(name_or_path: str) -> TokenCounter | None:
    """The counter of a model's tokenizer from a local folder (or tokenizer.json file) or the local Hugging Face
    cache; None when it is not on this machine. Nothing is downloaded: chunking must not wait on the network."""
    if not name_or_path:
        return None
    from tokenizers import Tokenizer

    path = Path(name_or_path).expanduser()
    candidates = [path] if path.is_file() else [path / "tokenizer.json"]
    if not path.exists():
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(name_or_path, "tokenizer.json")
            if isinstance(cached, str):
                candidates = [Path(cached)]
        except Exception:  # an id the cache does not know, or a name that is not an id at all
            return None
    for candidate in candidates:
        if candidate.is_file():
            try:
                return tokenizer_counter(Tokenizer.from_file(str(candidate)))
            except Exception:  # a tokenizer.json this version of tokenizers cannot read
                return None
    return None


def _count_many(count: TokenCounter, texts: list[str]) -> list[int]:
    many = getattr(count, "many", None)
    return many(texts) if many is not None else [count(t) for t in texts]


_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")


def _sentences(text: str) -> list[tuple[int, int, bool]]:
    """(start, end, starts_a_paragraph) of every sentence, whitespace trimmed. Sentences end where
    workers.common.sentences says (abbreviations and initials do not end one; headings, list items and table rows
    start one)."""
    spans = []
    position = 0
    for paragraph in _PARAGRAPH_BREAK.finditer(text + "\n\n"):
        start, end = position, min(paragraph.start(), len(text))
        position = paragraph.end()
        for i, (s, e) in enumerate(sentence_spans(text, start, end)):
            spans.append((s, e, i == 0))
    return spans


def _split_long(text: str, start: int, end: int, size: int, count: TokenCounter, tokens: int) -> list[tuple[int, int]]:
    """Cut a span of more than `size` tokens into spans of at most `size`: at line breaks, else between words,
    else anywhere (a run of characters with no space)."""
    if tokens <= size:
        return [(start, end)]
    # Where about `size` tokens end, assuming tokens spread evenly over the span; a little short of it.
    target = start + max(1, int((end - start) * size / tokens * 0.9))
    cut = text.rfind("\n", start + 1, target + 1)
    if cut <= start:
        cut = max(text.rfind(" ", start + 1, target + 1), text.rfind("\t", start + 1, target + 1))
    if cut <= start:
        cut = target
    head_end = cut
    while head_end > start and text[head_end - 1].isspace():
        head_end -= 1
    tail_start = cut
    while tail_start < end and text[tail_start].isspace():
        tail_start += 1
    if head_end <= start:  # only whitespace before the cut: cut hard instead
        head_end = tail_start = target
    spans = []
    for s, e in ((start, head_end), (tail_start, end)):
        if e > s:
            spans.extend(_split_long(text, s, e, size, count, count(text[s:e])))
    return spans


def chunk_text(text: str, *, size: int = DEFAULT_SIZE, overlap: int = DEFAULT_OVERLAP,
               count_tokens: TokenCounter | None = None, page_offsets: list[int] | None = None) -> list[TextChunk]:
    """Split one document's text into chunks of at most `size` tokens overlapping by about `overlap` tokens.

    `page_offsets` (where each page starts in `text`) gives every chunk its first and last page."""
    if size < 8:
        raise ValueError("A chunk must hold at least 8 tokens.")
    if not 0 <= overlap < size:
        raise ValueError("The overlap must be at least 0 and smaller than the chunk size.")
    count = count_tokens or approx_tokens
    sentences = _sentences(text)
    if not sentences:
        return []
    # Each sentence is counted with the whitespace that follows it, so that the counts of neighbours add up
    # to at least the count of their joined text (exactly so for the approximation).
    counted = [text[s:(sentences[i + 1][0] if i + 1 < len(sentences) else e)] for i, (s, e, _) in enumerate(sentences)]
    counts = _count_many(count, counted)
    pieces: list[tuple[int, int, bool]] = []
    tokens: list[int] = []
    for (start, end, paragraph), n in zip(sentences, counts):
        if n <= size:
            pieces.append((start, end, paragraph))
            tokens.append(n)
            continue
        for i, (s, e) in enumerate(_split_long(text, start, end, size, count, n)):
            pieces.append((s, e, paragraph and i == 0))
            tokens.append(count(text[s:e]))
    spans = _pack(text, pieces, tokens, size, overlap, count)
    offsets = page_offsets or [0]
    chunk_texts = [text[s:e] for s, e in spans]
    token_counts = _count_many(count, chunk_texts) if count_tokens else [approx_tokens(t) for t in chunk_texts]
    return [
        TextChunk(index=i, text=chunk, char_start=s, char_end=e, page=_page(offsets, s), page_end=_page(offsets, e - 1),
                  token_count=n)
        for i, ((s, e), chunk, n) in enumerate(zip(spans, chunk_texts, token_counts))
    ]


def _page(offsets: list[int], position: int) -> int:
    return max(1, bisect.bisect_right(offsets, max(0, position)))


def _pack(text: str, pieces: list[tuple[int, int, bool]], tokens: list[int], size: int, overlap: int,
          count: TokenCounter) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    first = 0  # the first whole piece of the chunk being built
    start = pieces[0][0]  # where that chunk starts (inside the piece before `first` when it carries a partial overlap)
    carried = 0  # tokens of that partial overlap
    n = len(pieces)
    while first < n:
        total, last, paragraph_end = carried, first, None
        while last < n and total + tokens[last] <= size:
            if last > first and pieces[last][2]:
                paragraph_end = (last, total)
            total += tokens[last]
            last += 1
        if last == first:  # the carried overlap leaves no room for the next piece: drop it
            start, carried = pieces[first][0], 0
            continue
        # End at the last paragraph boundary rather than mid-paragraph, if the chunk is then at least half full.
        if last < n and paragraph_end is not None and paragraph_end[1] >= size // 2:
            last = paragraph_end[0]
        spans.append((start, pieces[last - 1][1]))
        if last >= n:
            break
        first, start, carried = _overlap(text, pieces, tokens, first, last, overlap, count)
    return spans


def _overlap(text, pieces, tokens, first: int, last: int, overlap: int, count) -> tuple[int, int, int]:
    """Where the next chunk starts: whole sentences from the end of this one worth at most `overlap` tokens,
    else the tail of its last sentence from a word boundary, else right after it."""
    if overlap <= 0:
        return last, pieces[last][0], 0
    k, carried = last, 0
    while k - 1 > first and carried + tokens[k - 1] <= overlap:
        k -= 1
        carried += tokens[k]
    if k < last:
        return k, pieces[k][0], 0
    s, e, _ = pieces[last - 1]
    want = max(1, int((e - s) * overlap / max(1, tokens[last - 1])))
    space = text.find(" ", max(s, e - want), e)
    if space == -1 or space + 1 >= e:
        return last, pieces[last][0], 0
    tail = space + 1
    return last, tail, count(text[tail:e]) + 1
