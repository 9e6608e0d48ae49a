"""Token-aware chunking: exact spans, size and overlap in tokens, paragraph and sentence boundaries, pages."""
import random
import time

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers

from workers.engine.data.chunking import approx_tokens, chunk_text, load_tokenizer_counter, tokenizer_counter


def prose(paragraphs: int, sentences: int = 5, seed: int = 0, words: tuple[int, int] = (6, 18)) -> str:
    rng = random.Random(seed)
    vocabulary = "river valley goat herder cheese market ridge snow pasture lantern bridge mill harvest".split()
    return "\n\n".join(
        " ".join(" ".join(rng.choice(vocabulary) for _ in range(rng.randint(*words))).capitalize() + "."
                 for _ in range(sentences))
        for _ in range(paragraphs)
    )


def word_tokenizer(text: str) -> Tokenizer:
    """A real `tokenizers` word-level tokenizer: one token per word or punctuation mark."""
    vocab = {"[UNK]": 0}
    for word in set(text.replace(".", " . ").split()):
        vocab.setdefault(word, len(vocab))
    vocab["."] = len(vocab)
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return tokenizer


def test_it_keeps_every_chunk_an_exact_slice_within_the_size_and_covers_the_text():
    text = prose(40)
    chunks = chunk_text(text, size=120, overlap=20)
    assert len(chunks) > 5
    for chunk in chunks:
        assert text[chunk.char_start:chunk.char_end] == chunk.text
        assert chunk.token_count == approx_tokens(chunk.text) <= 120
    assert chunks[0].char_start == 0 and chunks[-1].char_end == len(text.rstrip())
    for before, after in zip(chunks, chunks[1:]):
        assert before.char_start < after.char_start <= before.char_end  # overlapping or touching, never a gap


def test_it_overlaps_by_about_the_asked_number_of_tokens_at_sentence_starts():
    text = prose(30, words=(4, 10))  # sentences of at most ~20 tokens
    chunks = chunk_text(text, size=150, overlap=30)
    overlaps = [approx_tokens(text[after.char_start:before.char_end]) for before, after in zip(chunks, chunks[1:])]
    assert all(0 < n <= 31 for n in overlaps), overlaps
    # Sentences here are short enough that the overlap is whole sentences: each chunk starts a sentence.
    assert all(text[c.char_start].isupper() for c in chunks)


def test_it_prefers_paragraph_ends_then_sentence_ends():
    text = prose(12, sentences=3)
    chunks = chunk_text(text, size=100, overlap=0)
    ends = [c.text[-1] for c in chunks]
    assert ends == ["."] * len(chunks)
    paragraph_ends = {i for i in range(len(text)) if text.startswith("\n\n", i)} | {len(text)}
    assert sum(c.char_end in paragraph_ends for c in chunks) >= len(chunks) // 2


def test_it_cuts_a_sentence_longer_than_a_chunk_between_words_and_a_wordless_run_anywhere():
    long_sentence = " ".join(f"word{i}" for i in range(2000))
    chunks = chunk_text(long_sentence, size=50, overlap=10)
    assert all(c.token_count <= 50 for c in chunks)
    assert all(not c.text.startswith(" ") and not c.text.endswith(" ") for c in chunks)
    assert all(c.text.split()[0].startswith("word") for c in chunks)
    assert chunks[-1].text.endswith("word1999")
    blob = chunk_text("x" * 5000, size=100, overlap=0)
    assert "".join(c.text for c in blob) == "x" * 5000 and all(c.token_count <= 100 for c in blob)


def test_it_gives_each_chunk_its_first_and_last_page():
    pages = [prose(3, seed=i) for i in range(6)]
    text = "\n\n".join(pages)
    offsets, position = [], 0
    for page in pages:
        offsets.append(position)
        position += len(page) + 2
    chunks = chunk_text(text, size=200, overlap=20, page_offsets=offsets)
    for chunk in chunks:
        first = max(i for i, o in enumerate(offsets) if o <= chunk.char_start) + 1
        last = max(i for i, o in enumerate(offsets) if o <= chunk.char_end - 1) + 1
        assert (chunk.page, chunk.page_end) == (first, last)
    assert chunks[0].page == 1 and chunks[-1].page_end == 6
    assert any(c.page_end > c.page for c in chunks)


def test_it_counts_with_a_real_tokenizer_when_given_one(tmp_path):
    text = prose(20)
    tokenizer = word_tokenizer(text)
    count = tokenizer_counter(tokenizer)
    chunks = chunk_text(text, size=64, overlap=8, count_tokens=count)
    for chunk in chunks:
        assert chunk.token_count == len(tokenizer.encode(chunk.text).ids) <= 64
    # Saved as tokenizer.json, it is found by folder (as a model's folder holds it).
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    loaded = load_tokenizer_counter(str(tmp_path))
    assert loaded("goat cheese .") == 3 == count("goat cheese .")
    assert load_tokenizer_counter(str(tmp_path / "missing")) is None
    assert load_tokenizer_counter("no-such-org/no-such-model") is None


def test_it_refuses_impossible_sizes_and_returns_nothing_for_blank_text():
    with pytest.raises(ValueError):
        chunk_text("text", size=100, overlap=100)
    with pytest.raises(ValueError):
        chunk_text("text", size=4, overlap=0)
    assert chunk_text("  \n\n  ", size=100, overlap=10) == []


def test_it_chunks_a_300_page_document_in_well_under_a_second():
    text = prose(2400, sentences=6)  # about 300 pages of 8 paragraphs
    assert len(text) > 900_000
    started = time.perf_counter()
    chunks = chunk_text(text, size=300, overlap=40)
    assert time.perf_counter() - started < 1.0
    assert len(chunks) > 700


def test_it_ends_chunks_at_sentence_ends_that_abbreviations_do_not_fake():
    """Chunks end where question generation's splitter ends sentences (workers.common.sentences): "Dr.", "U.S.",
    "p.m." and "Corp." end no chunk."""
    text = ("Dr. Smith met the U.S. delegation at 3 p.m. on Monday in the hall. The talks lasted two hours and ended "
            "well. Mr. Jones of Acme Corp. signed the deal with Ms. Lee. Everyone went home after that.")
    chunks = [chunk.text for chunk in chunk_text(text, size=20, overlap=0)]
    assert chunks == ["Dr. Smith met the U.S. delegation at 3 p.m. on Monday in the hall.",
                      "The talks lasted two hours and ended well.",
                      "Mr. Jones of Acme Corp. signed the deal with Ms. Lee.", "Everyone went home after that."]
