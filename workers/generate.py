"""Question-answer generation, behind one interface (see "Generators" below). The offline extractive
generator needs no model: each factual sentence becomes the answer to a question formed from its subject."""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from workers.errors import Cancelled, ReadableError
from workers.llm import chat_text

_SENTENCE = re.compile(r"[^.!?\n]*[A-Za-z][^.!?\n]*[.!?]")
_COPULA = re.compile(r"^(?P<subject>[A-Z][^,;:()]{2,80}?) (?P<verb>is|are|was|were|has|have) (?P<rest>[^;]{3,})[.!?]$")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")
_STOP = {"the", "a", "an", "and", "or", "of", "to", "in", "on", "for", "with", "is", "are", "was", "were", "it",
         "this", "that", "these", "those", "by", "at", "as", "from", "be", "has", "have", "its", "their", "there"}


@dataclass
class QA:
    question: str
    answer: str
    chunk_index: int


def _lower_first(subject: str) -> str:
    first, _, rest = subject.partition(" ")
    # "The lake" -> "the lake"; keep proper nouns such as "Eldhavn" or "NASA" as written.
    if first in {"The", "A", "An", "Its", "Their", "Each", "Every"}:
        return " ".join([first.lower(), rest]).strip()
    return subject


def question_for(sentence: str) -> str | None:
    match = _COPULA.match(sentence)
    if match:
        subject, verb = _lower_first(match["subject"].strip()), match["verb"]
        if verb in {"has", "have"}:
            return f"What {'does' if verb == 'has' else 'do'} {subject} have?"
        return f"What {verb} {subject}?"
    keywords = [w for w in _WORD.findall(sentence) if w.lower() not in _STOP]
    if len(keywords) < 2:
        return None
    return f"What does the text say about the {keywords[0].lower()} {keywords[1]}?"


def extractive_pairs(chunks: list[str], *, max_pairs: int | None = None, min_words: int = 4) -> list[QA]:
    """One pair per distinct question, in document order. Sentences of fewer than `min_words` words are skipped."""
    pairs: list[QA] = []
    seen: set[str] = set()
    for index, chunk in enumerate(chunks):
        for raw in _SENTENCE.findall(chunk):
            sentence = " ".join(raw.split())
            if len(sentence.split()) < min_words:
                continue
            question = question_for(sentence)
            if question is None or question.lower() in seen:
                continue
            seen.add(question.lower())
            pairs.append(QA(question=question, answer=sentence, chunk_index=index))
            if max_pairs is not None and len(pairs) >= max_pairs:
                return pairs
    return pairs


# ---------------------------------------------------------------------------------------------------------
# Generators behind one interface. Each takes the chunks' texts and how many pairs each chunk should give,
# reports progress per chunk, and returns a GenerationOutput. The caller picks one per generation run:
#   ExtractiveGenerator   offline, no model (the default)
#   EndpointGenerator     any OpenAI-compatible chat endpoint, through workers.llm.ChatClient
#   LocalModelGenerator   a Hugging Face model on this worker (queue `gpu`)
# ---------------------------------------------------------------------------------------------------------

BACKENDS = ("extractive", "endpoint", "local_model")
# Pairs asked of a model per chunk when the user gave no total, and the most one request may ask for
# (long lists make models drift, repeat themselves, or run out of output tokens mid-JSON).
DEFAULT_PAIRS_PER_CHUNK = 3
MAX_PAIRS_PER_CHUNK = 20
MAX_QUESTION_CHARS = 2000
MAX_ANSWER_CHARS = 8000

SYSTEM_PROMPT = (
    "You write training data for fine-tuning a language model. You read a passage of a document and write "
    "question-answer pairs that a user of the fine-tuned model could ask, answered only from the passage. "
    "You answer with JSON and nothing else."
)


@dataclass
class GenerationOutput:
    pairs: list[QA]
    requested: int | None = None  # pairs asked for in total (None: as many as the text gives)
    malformed: int = 0  # items or whole answers that could not be read as a pair
    failed_chunks: int = 0  # chunks whose request failed for good
    errors: list[str] = field(default_factory=list)  # distinct readable errors of the failed chunks


def spread(total: int, n_chunks: int) -> list[int]:
    """`total` pairs over `n_chunks` chunks as evenly as whole numbers allow, the remainder spread along
    the document rather than piled on its first chunks (so 2 pairs over 4 chunks come from chunks 2 and 4)."""
    if n_chunks <= 0:
        return []
    return [(i + 1) * total // n_chunks - i * total // n_chunks for i in range(n_chunks)]


def plan(num_pairs: int | None, n_chunks: int, *, per_chunk_default: int | None = DEFAULT_PAIRS_PER_CHUNK) -> list[int | None]:
    """How many pairs each chunk should give. None per chunk means "all it has" (the extractive default)."""
    if num_pairs is None:
        return [per_chunk_default] * n_chunks
    return spread(max(0, int(num_pairs)), n_chunks)


def build_messages(chunk: str, n: int, *, task_description: str = "", summary: str = "") -> list[dict]:
    """The chat request for one chunk: the user's task, the optional summary as context, the passage, and
    the instruction last (a model reads the end of a long prompt most reliably)."""
    parts = []
    if task_description.strip():
        parts.append(f"The fine-tuned model's task:\n{task_description.strip()}")
    if summary.strip():
        parts.append(f"Summary of the whole document, for context only:\n{summary.strip()}")
    parts.append(f"Passage:\n\"\"\"\n{chunk.strip()}\n\"\"\"")
    parts.append(
        f"Write {n} question-answer pair{'s' if n != 1 else ''} about the passage that serve this task. "
        "Each answer must be correct according to the passage and complete on its own. "
        'Answer with a JSON array only, like [{"question": "...", "answer": "..."}].'
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "\n\n".join(parts)}]


# -- reading what models answer ---------------------------------------------------------------------------

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)(?:```|$)", re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*([\]}])")
_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL)
_QA_TEXT = re.compile(
    r"(?:^|\n)\s*(?:[-*\d.)\s]*)(?:\*\*)?(?:Q|Question)\s*\d*\s*[:.)](?:\*\*)?\s*(?P<q>.+?)\s*"
    r"\n?\s*(?:\*\*)?(?:A|Answer)\s*\d*\s*[:.)](?:\*\*)?\s*(?P<a>.+?)"
    r"(?=\n\s*(?:[-*\d.)\s]*)(?:\*\*)?(?:Q|Question)\s*\d*\s*[:.)]|\Z)",
    re.DOTALL | re.IGNORECASE,
)
_QUESTION_KEYS = ("question", "q", "prompt", "instruction", "query", "input")
_ANSWER_KEYS = ("answer", "a", "response", "output", "completion", "reply")
_LIST_KEYS = ("pairs", "qa_pairs", "questions", "items", "data", "results", "examples")


def _field(item: dict, keys: tuple[str, ...]) -> str | None:
    lowered = {str(k).strip().lower(): v for k, v in item.items()}
    for key in keys:
        value = lowered.get(key)
        if isinstance(value, (str, int, float)) and str(value).strip():
            return str(value).strip()
    return None


def _pair(item) -> tuple[str, str] | None:
    if not isinstance(item, dict):
        return None
    question, answer = _field(item, _QUESTION_KEYS), _field(item, _ANSWER_KEYS)
    if not question or not answer or len(question) > MAX_QUESTION_CHARS or len(answer) > MAX_ANSWER_CHARS:
        return None
    return question, answer


def _items(value) -> list | None:
    """The list of candidate pairs inside a parsed JSON value, whatever wrapper the model put around it."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        for key in _LIST_KEYS:
            for k, v in value.items():
                if str(k).lower() == key and isinstance(v, list):
                    return v
        if _field(value, _QUESTION_KEYS) or _field(value, _ANSWER_KEYS):
            return [value]
    return None


def _scan_objects(text: str) -> tuple[list, int]:
    """Every JSON object that can be decoded from the text, and how many started but could not be
    (a truncated last object, say). Objects nested in a decoded one are not counted twice."""
    decoder = json.JSONDecoder()
    found, broken, position = [], 0, 0
    while True:
        start = text.find("{", position)
        if start < 0:
            return found, broken
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            broken += 1
            # Skip to the next object start that is not inside this broken one's first line of keys.
            position = start + 1
            next_close = text.find("}", start)
            next_open = text.find("{", start + 1)
            if 0 <= next_close < next_open:
                position = next_close + 1
            elif next_open < 0:
                return found, broken
            continue
        found.append(value)
        position = end


def parse_pairs(raw: str, limit: int | None = None) -> tuple[list[tuple[str, str]], int]:
    """Salvage (question, answer) pairs from a model's answer; returns them and how many items were unusable.

    Accepts a JSON array or an object wrapping one, inside code fences or prose, with trailing commas,
    cut off in the middle, or no JSON at all but "Q: ... A: ..." lines. An answer with nothing usable counts
    as one malformed item. Pairs beyond `limit` are dropped without counting as malformed."""
    text = _THINK.sub("", raw or "").strip()
    fenced = _FENCE.findall(text)
    candidates = [f for f in fenced if f.strip()] + [text] if fenced else [text]
    pairs: list[tuple[str, str]] = []
    malformed = 0
    items = None
    for candidate in candidates:
        cleaned = _TRAILING_COMMA.sub(r"\1", candidate.strip())
        for attempt in (cleaned, cleaned[cleaned.find("["): cleaned.rfind("]") + 1] if "[" in cleaned else ""):
            if not attempt:
                continue
            try:
                items = _items(json.loads(attempt))
            except ValueError:
                continue
            if items is not None:
                break
        if items is not None:
            break
    if items is None:
        # Not one valid JSON document: take every object that decodes, and count the ones that do not.
        cleaned = _TRAILING_COMMA.sub(r"\1", candidates[0])
        objects, broken = _scan_objects(cleaned)
        items = []
        for value in objects:
            inner = _items(value)
            items.extend(inner if inner is not None and inner is not value else [value])
        malformed += broken
    if not items and not malformed:
        for match in _QA_TEXT.finditer(text):
            question = " ".join(match["q"].replace("**", "").split())
            answer = " ".join(match["a"].replace("**", "").split())
            items.append({"question": question, "answer": answer})
    for item in items:
        pair = _pair(item)
        if pair is None:
            malformed += 1
        else:
            pairs.append(pair)
    if not pairs and not malformed:
        malformed = 1  # an answer with nothing in it that looks like a pair
    if limit is not None:
        pairs = pairs[:limit]
    return pairs, malformed


def _dedupe(pairs: list[QA], seen: set[str] | None = None) -> list[QA]:
    seen = set() if seen is None else seen
    unique = []
    for qa in pairs:
        key = " ".join(qa.question.lower().split())
        if key not in seen:
            seen.add(key)
            unique.append(qa)
    return unique


def _check_stop(reporter) -> None:
    if reporter is not None and reporter.should_stop():
        raise Cancelled()


class ExtractiveGenerator:
    """The offline generator: one pair per factual sentence, no model, nothing leaves the machine."""

    name = "extractive"

    def generate(self, chunks: list[str], counts: list[int | None], reporter) -> GenerationOutput:
        seen: set[str] = set()
        per_chunk: list[list[QA]] = []
        for index, chunk in enumerate(chunks):
            _check_stop(reporter)
            # The seen set is shared across chunks: overlapping chunks repeat their border sentences.
            found = _dedupe([QA(qa.question, qa.answer, index) for qa in extractive_pairs([chunk])], seen)
            per_chunk.append(found)
            reporter.progress((index + 1) / len(chunks), f"Chunk {index + 1} of {len(chunks)}")
        if all(count is None for count in counts):
            return GenerationOutput(pairs=[qa for found in per_chunk for qa in found])
        requested = sum(count or 0 for count in counts)
        chosen = [found[: count or 0] for found, count in zip(per_chunk, counts)]
        shortfall = requested - sum(len(c) for c in chosen)
        # Chunks with fewer sentences than their share leave a shortfall; others' spare sentences fill it.
        for index, (found, count) in enumerate(zip(per_chunk, counts)):
            if shortfall <= 0:
                break
            spare = found[count or 0: (count or 0) + shortfall]
            chosen[index].extend(spare)
            shortfall -= len(spare)
        return GenerationOutput(pairs=[qa for c in chosen for qa in c], requested=requested)


class EndpointGenerator:
    """Asks an OpenAI-compatible chat endpoint for pairs, one request per chunk, `client.concurrency` at a time.

    `scrubber` (workers.pii.PiiScrubber) cleans every text before it is sent; `on_call(result, pii_replacements)`
    is called in this thread after each request, for the audit log."""

    name = "endpoint"

    def __init__(self, client, *, task_description: str = "", summary: str = "", scrubber=None,
                 on_call: Callable | None = None, temperature: float = 0.7, max_tokens: int = 2048):
        self.client = client
        self.task_description = task_description
        self.summary = summary
        self.scrubber = scrubber
        self.on_call = on_call
        self.params = {"temperature": temperature, "max_tokens": max_tokens}
        self.pii_replacements = 0

    def _clean(self, text: str) -> tuple[str, int]:
        if self.scrubber is None or not text:
            return text, 0
        result = self.scrubber.scrub(text)
        return result.text, result.replacements

    def generate(self, chunks: list[str], counts: list[int | None], reporter) -> GenerationOutput:
        task, task_hits = self._clean(self.task_description)
        summary, summary_hits = self._clean(self.summary)
        jobs = []  # (chunk index, pairs wanted, messages, replacements)
        for index, (chunk, count) in enumerate(zip(chunks, counts)):
            if not count:
                continue
            text, hits = self._clean(chunk)
            n = min(count, MAX_PAIRS_PER_CHUNK)
            jobs.append((index, n, build_messages(text, n, task_description=task, summary=summary), hits + task_hits + summary_hits))
        self.pii_replacements = sum(job[3] for job in jobs)
        if not jobs:
            return GenerationOutput(pairs=[], requested=0)
        output = GenerationOutput(pairs=[], requested=sum(job[1] for job in jobs))
        by_chunk: dict[int, list[QA]] = {}
        done = 0

        def on_result(result) -> None:
            nonlocal done
            index, n, _, hits = jobs[result.index]
            if self.on_call is not None:
                self.on_call(result, hits)
            done += 1
            if result.ok:
                found, bad = parse_pairs(chat_text(result.text), limit=n)
                output.malformed += bad
                by_chunk[index] = [QA(question=q, answer=a, chunk_index=index) for q, a in found]
                message = f"Chunk {index + 1}: {len(found)} pairs" + (f", {bad} malformed" if bad else "")
            else:
                output.failed_chunks += 1
                if result.error not in output.errors:
                    output.errors.append(result.error)
                    reporter.log(f"Chunk {index + 1} failed: {result.error}")
                message = f"Chunk {index + 1} failed"
            reporter.progress(done / len(jobs), f"{message} ({done} of {len(jobs)} chunks)")
            _check_stop(reporter)

        self.client.complete_many([job[2] for job in jobs], on_result=on_result, **self.params)
        # Pairs in document order, whatever order the requests finished in.
        output.pairs = _dedupe([qa for index in sorted(by_chunk) for qa in by_chunk[index]])
        return output


class LocalModelGenerator:
    """Runs a Hugging Face causal LM on this worker (queue `gpu`), prompting it through its chat template.

    `model_path` is a local folder, a Hub id (when the worker is online), or workers.tiny_model.TINY_MODEL_ID,
    which builds the tiny test model from the chunks themselves: its answers are noise, which is what the
    tests need to check that unusable output is counted rather than fatal."""

    name = "local_model"

    def __init__(self, model_path: str, *, task_description: str = "", summary: str = "", max_new_tokens: int = 1024,
                 temperature: float = 0.7, batch_size: int = 4, seed: int = 0, work_dir: str | None = None):
        self.model_path = model_path
        self.task_description = task_description
        self.summary = summary
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.batch_size = max(1, batch_size)
        self.seed = seed
        self.work_dir = work_dir

    def _load(self, chunks: list[str], scratch: str):

        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from workers.tiny_model import TINY_MODEL_ID, build_tiny_gemma3

        path = self.model_path
        if path == TINY_MODEL_ID:
            path = str(build_tiny_gemma3(scratch, chunks, seed=self.seed))
        cuda = torch.cuda.is_available()
        try:
            tokenizer = AutoTokenizer.from_pretrained(path)
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16 if cuda else torch.float32)
        except (OSError, ValueError) as exc:
            raise ReadableError(f"Could not load the model '{self.model_path}': it is not a model folder this worker "
                                f"can read, or a Hub id while the worker is offline ({type(exc).__name__}).") from exc
        if tokenizer.chat_template is None:
            raise ReadableError(f"The model '{self.model_path}' has no chat template; choose an instruction-tuned model.")
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"  # generation continues from the right end of every row
        model.to("cuda" if cuda else "cpu").eval()
        return model, tokenizer

    def _prompt(self, tokenizer, chunk: str, n: int, limit: int | None) -> tuple[str, int]:
        """The templated prompt and its new-token budget. A prompt that leaves the model no room to answer
        is shortened by cutting the passage, never the instruction."""
        budget = self.max_new_tokens
        for _ in range(8):
            messages = build_messages(chunk, n, task_description=self.task_description, summary=self.summary)
            # One user turn: several chat templates (Gemma's among them) refuse a system turn.
            messages = [{"role": "user", "content": messages[0]["content"] + "\n\n" + messages[1]["content"]}]
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            length = len(tokenizer(text, add_special_tokens=False)["input_ids"])
            if limit is None or length + 32 <= limit:
                return text, budget if limit is None else min(budget, limit - length)
            chunk = chunk[: int(len(chunk) * 0.6)]
            if len(chunk) < 20:
                break
        raise ReadableError(f"The model '{self.model_path}' accepts too few tokens for the generation prompt.")

    def generate(self, chunks: list[str], counts: list[int | None], reporter) -> GenerationOutput:
        import tempfile

        # The tiny model is built in a scratch folder that goes away with the run.
        with tempfile.TemporaryDirectory(prefix="generator-", dir=self.work_dir) as scratch:
            return self._generate(chunks, counts, reporter, scratch)

    def _generate(self, chunks: list[str], counts: list[int | None], reporter, scratch: str) -> GenerationOutput:
        import torch

        reporter.phase("loading model", f"Loading {self.model_path}")
        model, tokenizer = self._load(chunks, scratch)
        limit = getattr(model.config, "max_position_embeddings", None)
        work = [(i, min(c, MAX_PAIRS_PER_CHUNK)) for i, c in enumerate(counts) if c]
        output = GenerationOutput(pairs=[], requested=sum(n for _, n in work))
        reporter.phase("generating", f"{len(work)} chunks with {self.model_path}")
        torch.manual_seed(self.seed)
        done = 0
        pairs: list[QA] = []
        for start in range(0, len(work), self.batch_size):
            _check_stop(reporter)
            batch = work[start: start + self.batch_size]
            prompts = [self._prompt(tokenizer, chunks[i], n, limit) for i, n in batch]
            inputs = tokenizer([p for p, _ in prompts], return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
            sampling = {"do_sample": True, "temperature": self.temperature} if self.temperature > 0 else {"do_sample": False}
            with torch.no_grad():
                generated = model.generate(**inputs, max_new_tokens=max(1, min(b for _, b in prompts)),
                                           pad_token_id=tokenizer.pad_token_id, **sampling)
            answers = tokenizer.batch_decode(generated[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
            for (index, n), answer in zip(batch, answers):
                found, bad = parse_pairs(chat_text(answer), limit=n)
                output.malformed += bad
                pairs.extend(QA(question=q, answer=a, chunk_index=index) for q, a in found)
                done += 1
                reporter.progress(done / len(work), f"Chunk {index + 1}: {len(found)} pairs"
                                  + (f", {bad} malformed" if bad else "") + f" ({done} of {len(work)} chunks)")
        output.pairs = _dedupe(pairs)
        return output


def generate_pairs(chunks: list[str], generator, *, num_pairs: int | None = None, reporter) -> GenerationOutput:
    """Run `generator` over the chunks with `num_pairs` spread over them. Without a number, the extractive
    generator takes every sentence and model generators ask DEFAULT_PAIRS_PER_CHUNK per chunk."""
    if not chunks:
        raise ReadableError("There is no extracted text to make questions from.")
    if num_pairs is not None and num_pairs < 1:
        raise ReadableError("Ask for at least one question-answer pair.")
    per_chunk_default = None if generator.name == "extractive" else DEFAULT_PAIRS_PER_CHUNK
    counts = plan(num_pairs, len(chunks), per_chunk_default=per_chunk_default)
    reporter.phase("generating", f"{len(chunks)} chunks with the {generator.name.replace('_', ' ')} generator")
    output = generator.generate(chunks, counts, reporter)
    if output.requested is not None and output.requested > 0 and num_pairs is not None:
        output.pairs = output.pairs[:num_pairs]
    return output
