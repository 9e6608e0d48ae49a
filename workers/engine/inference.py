"""Inference with base and fine-tuned models: one way to name a model (ModelRef), load it and generate.

Evaluation, benchmarks, the playground and the OpenAI-compatible endpoint all generate through this module,
with the model's own chat template applied exactly as at training time. Pure engine code: no Django."""
from __future__ import annotations

import gc
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path

from workers.common.errors import ReadableError
from workers.common.serving import ModelRef, validate_messages

DEFAULT_CACHE_BYTES = 8 * 1024 ** 3


# ---------------------------------------------------------------------------------------------------------------
# Loading, with a memory-bounded LRU cache
# ---------------------------------------------------------------------------------------------------------------

def model_bytes(model) -> int:
    """Memory a loaded model holds: its parameters and buffers (activations and KV cache come on top)."""
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


def _stamp(ref: ModelRef) -> tuple:
    """Modification times of the local folders, so that a model retrained into the same folder is reloaded."""
    stamp = []
    for folder in (ref.path, ref.adapter):
        path = Path(folder) if folder else None
        stamp.append(path.stat().st_mtime_ns if path is not None and path.exists() else None)
    return tuple(stamp)


class ModelCache:
    """Loaded models, least recently used first, bounded by the bytes their weights take.

    A worker serves the playground and the API for many models; reloading per request would take seconds to
    minutes, and keeping every model loaded would run out of GPU memory. The model just loaded always stays,
    even when it alone is over the budget: the budget evicts others, it does not refuse work."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES, loader: Callable | None = None):
        self.max_bytes = max_bytes
        self._loader = loader or _load_uncached
        self._entries: OrderedDict[ModelRef, tuple] = OrderedDict()  # ref -> (stamp, model, tokenizer, bytes)
        self._lock = threading.RLock()
        self.loads = 0  # how many times a model was read from disk (tests and logs)

    def configure(self, *, max_bytes: int) -> None:
        with self._lock:
            self.max_bytes = max_bytes
            self._evict(keep=None)

    @property
    def total_bytes(self) -> int:
        return sum(entry[3] for entry in self._entries.values())

    def refs(self) -> list[ModelRef]:
        """Cached models, least recently used first."""
        return list(self._entries)

    def get(self, ref: ModelRef):
        with self._lock:
            stamp = _stamp(ref)
            entry = self._entries.get(ref)
            if entry is not None and entry[0] == stamp:
                self._entries.move_to_end(ref)
                return entry[1], entry[2]
            if entry is not None:
                self._drop(ref)
            model, tokenizer = self._loader(ref)
            self.loads += 1
            self._entries[ref] = (stamp, model, tokenizer, model_bytes(model))
            self._evict(keep=ref)
            return model, tokenizer

    def clear(self) -> None:
        with self._lock:
            for ref in list(self._entries):
                self._drop(ref)
            _free_memory()

    def _evict(self, *, keep: ModelRef | None) -> None:
        evicted = False
        for ref in list(self._entries):
            if self.total_bytes <= self.max_bytes:
                break
            if ref != keep:
                self._drop(ref)
                evicted = True
        if evicted:
            _free_memory()

    def _drop(self, ref: ModelRef) -> None:
        del self._entries[ref]


def _free_memory() -> None:
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover - torch is always there on workers
        pass


def _has_tokenizer(folder: str | None) -> bool:
    return bool(folder) and any((Path(folder) / name).is_file() for name in ("tokenizer_config.json", "tokenizer.json"))


def _load_uncached(ref: ModelRef):
    """Read the model (bf16 on CUDA, float32 on CPU) and its tokenizer; the adapter is merged into the weights,
    which makes decoding as fast as the base model's. Raises ReadableError when a folder is missing or unreadable."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    if ref.adapter and not Path(ref.adapter).is_dir():
        raise ReadableError("The tuned model's files are missing; it may not have finished training.")
    # Training saves the tokenizer beside the adapter (with any chat template fix it made); prefer that one.
    tokenizer_source = ref.adapter if _has_tokenizer(ref.adapter) else ref.path
    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
        # Straight onto the GPU: loading on the CPU first would need the model's size in RAM as well.
        model = AutoModelForCausalLM.from_pretrained(ref.path, dtype=dtype, device_map=device if device == "cuda" else None)
        if ref.adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, ref.adapter).merge_and_unload()
    except (OSError, ValueError) as exc:
        # A folder by its name only (server paths stay private); anything else (a Hub id) as given.
        name = Path(ref.path).name if Path(ref.path).is_dir() else ref.path
        raise ReadableError(f"Could not load the model '{name}': {exc}") from exc
    if tokenizer.chat_template is None:
        raise ReadableError("This model has no chat template, so it cannot answer chat messages.")
    if tokenizer.pad_token is None:  # batches need a pad token; any token works under the attention mask
        tokenizer.pad_token = tokenizer.eos_token
    model.to(device)
    model.eval()
    return model, tokenizer


CACHE = ModelCache()


def configure_cache(*, max_bytes: int) -> None:
    """Set the byte budget of the process-wide cache (the worker passes GARAGE_INFERENCE_CACHE_GIB)."""
    CACHE.configure(max_bytes=max_bytes)


def clear_cache() -> None:
    """Unload every cached model. A process that also trains (the `gpu` worker running an evaluation job) calls
    this when done, so that the next training finds the GPU memory free."""
    CACHE.clear()


def load(ref: ModelRef):
    """(model, tokenizer) for `ref`, from the process-wide cache when it is loaded already."""
    return CACHE.get(ref)


# ---------------------------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------------------------

def _prompt(tokenizer, messages) -> str:
    from jinja2 import TemplateError

    try:
        return tokenizer.apply_chat_template(validate_messages(messages), tokenize=False, add_generation_prompt=True)
    except TemplateError as exc:
        raise ReadableError(f"This model's chat template refused the conversation: {exc}") from exc


TURN_ENDS = ("<end_of_turn>", "<|im_end|>")  # the turn ends of the Gemma and ChatML templates


def _turn_text(text: str) -> str:
    """The answer up to its turn end, for tokenizers that do not count the marker as special (GGUF conversions)."""
    for marker in TURN_ENDS:
        text = text.split(marker, 1)[0]
    return text


def _eos_ids(model, tokenizer) -> list[int]:
    """Every token that ends a turn: real Gemma models end with <end_of_turn>, which their generation config lists
    while the tokenizer's eos is <eos>; the union stops at either."""
    ids = model.generation_config.eos_token_id
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    # A model converted from GGUF may lose its generation config: its chat template's turn end still ends a turn.
    vocabulary = tokenizer.get_vocab()
    for marker in TURN_ENDS:
        if marker in vocabulary and vocabulary[marker] not in ids:
            ids.append(vocabulary[marker])
    return ids


def _model_limit(model) -> int | None:
    config = getattr(model.config, "text_config", model.config)
    return getattr(config, "max_position_embeddings", None)


def _sampling(model, tokenizer, *, max_new_tokens, temperature, top_p, seed, prompt_tokens) -> dict:
    import torch

    if max_new_tokens < 1:
        raise ReadableError("The maximum number of new tokens must be at least 1.")
    if temperature < 0:
        raise ReadableError("The temperature cannot be negative.")
    if not 0 < top_p <= 1:
        raise ReadableError("top_p must be above 0 and at most 1.")
    limit = _model_limit(model)
    if limit is not None:
        if prompt_tokens >= limit:
            raise ReadableError(f"The conversation is too long for this model: {prompt_tokens} tokens, and its limit is {limit}.")
        max_new_tokens = min(max_new_tokens, limit - prompt_tokens)
    kwargs = {"max_new_tokens": max_new_tokens, "pad_token_id": tokenizer.pad_token_id,
              "eos_token_id": _eos_ids(model, tokenizer)}
    if temperature == 0:
        # Greedy; the model's own sampling defaults (Gemma ships top_k=64, top_p=0.95) are switched off with it.
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    else:
        torch.manual_seed(seed)
        kwargs.update(do_sample=True, temperature=float(temperature), top_p=float(top_p))
    return kwargs


def generate(ref: ModelRef, conversations: list[list[dict]], *, max_new_tokens: int = 256, temperature: float = 0.0,
             top_p: float = 1.0, seed: int = 0, batch_size: int = 16) -> list[str]:
    """The model's answer to each conversation (the text of its next turn), in order. Greedy when temperature
    is 0. Raises ReadableError for conversations the model cannot take."""
    if not conversations:
        return []
    model, tokenizer = load(ref)
    return answer(model, tokenizer, conversations, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                  seed=seed, batch_size=batch_size)


def answer(model, tokenizer, conversations: list[list[dict]], *, max_new_tokens: int = 256, temperature: float = 0.0,
           top_p: float = 1.0, seed: int = 0, batch_size: int = 16,
           on_batch: Callable[[int, int], None] | None = None) -> list[str]:
    """`generate` for a model already in memory (the training engine measures the model it is training).
    `on_batch(done, total)`, when given, is called after each batch, so a caller can show progress."""
    import torch

    prompts = [_prompt(tokenizer, messages) for messages in conversations]
    lengths = [len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    # Longest first, so each batch pads little and a too-long prompt fails before any work is done.
    order = sorted(range(len(prompts)), key=lambda i: -lengths[i])
    answers: list[str] = [""] * len(prompts)
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        with torch.no_grad():
            for start in range(0, len(order), batch_size):
                indices = order[start:start + batch_size]
                kwargs = _sampling(model, tokenizer, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                                   seed=seed, prompt_tokens=max(lengths[i] for i in indices))
                enc = tokenizer([prompts[i] for i in indices], return_tensors="pt", padding=True,
                                add_special_tokens=False).to(model.device)
                out = model.generate(**enc, **kwargs)
                for row, i in zip(out, indices):
                    answers[i] = _turn_text(tokenizer.decode(row[enc["input_ids"].shape[1]:], skip_special_tokens=True))
                if on_batch is not None:
                    on_batch(min(start + batch_size, len(order)), len(order))
    finally:
        tokenizer.padding_side = side
    return answers


def stream(ref: ModelRef, messages: list[dict], *, max_new_tokens: int = 256, temperature: float = 0.0,
           top_p: float = 1.0, seed: int = 0, should_stop: Callable[[], bool] | None = None,
           usage: dict | None = None) -> Iterator[str]:
    """Pieces of the model's answer to one conversation as they are decoded; joined, they equal `generate`'s
    answer. Generation stops early when `should_stop()` turns true or the caller stops iterating. `usage`, when
    given, is filled at the end with prompt_tokens, completion_tokens and finish_reason ("stop" or "length").
    Raises ReadableError before the first piece for a conversation the model cannot take."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

    model, tokenizer = load(ref)
    prompt = _prompt(tokenizer, messages)
    enc = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(model.device)
    prompt_tokens = enc["input_ids"].shape[1]
    kwargs = _sampling(model, tokenizer, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                       seed=seed, prompt_tokens=prompt_tokens)
    stopped = threading.Event()

    class Stop(StoppingCriteria):
        def __call__(self, input_ids, scores, **kw):
            if not stopped.is_set() and should_stop is not None and should_stop():
                stopped.set()
            return torch.full((input_ids.shape[0],), stopped.is_set(), dtype=torch.bool, device=input_ids.device)

    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    generated: list[torch.Tensor] = []
    errors: list[BaseException] = []

    def run():
        try:
            with torch.no_grad():
                out = model.generate(**enc, **kwargs, streamer=streamer, stopping_criteria=StoppingCriteriaList([Stop()]))
            generated.append(out[0, prompt_tokens:])
        except BaseException as exc:  # noqa: BLE001  (handed to the caller's thread below)
            errors.append(exc)
            streamer.end()

    thread = threading.Thread(target=run, name="inference-stream", daemon=True)
    thread.start()
    try:
        for piece in streamer:
            answer_piece = _turn_text(piece)  # a turn marker decoded as text ends the answer (see _turn_text)
            if answer_piece:
                yield answer_piece
            if answer_piece != piece:
                break
    finally:
        stopped.set()  # the caller stopped early (closed generator) or we are done: either way end generation
        thread.join()
    if errors:
        raise errors[0]
    if usage is not None:
        new = generated[0].tolist() if generated else []
        eos = set(kwargs["eos_token_id"])
        usage.update(prompt_tokens=prompt_tokens, completion_tokens=len(new),
                     finish_reason="length" if len(new) >= kwargs["max_new_tokens"] and new[-1] not in eos else "stop")
