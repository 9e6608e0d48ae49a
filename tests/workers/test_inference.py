"""The inference engine alone: the tiny Gemma 3, a LoRA adapter trained for a few steps, no Django."""
import pytest

from workers.engine import inference
from workers.common.errors import ReadableError
from workers.engine.inference import ModelCache, ModelRef, generate, stream
from workers.engine.reporting import RecordingReporter
from workers.engine.train.tiny_model import build_tiny_gemma3
from workers.engine.train.train import TrainConfig, train

PAIRS = [{"question": f"Where does item{i} live?", "answer": f"Item{i} lives in {city}."}
         for i, city in enumerate(["Paris", "Rome", "Oslo", "Lima", "Cairo", "Tokyo", "Quito", "Dublin"])]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    folder = tmp_path_factory.mktemp("base")
    build_tiny_gemma3(folder, [f"{p['question']} {p['answer']}" for p in PAIRS])
    return ModelRef(path=str(folder))


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, base):
    out = tmp_path_factory.mktemp("tuned")
    train(TrainConfig(base_model=base.path, output_dir=str(out), pairs=PAIRS, max_steps=30, batch_size=8, evaluate=False),
          RecordingReporter())
    return ModelRef(path=base.path, adapter=str(out / "model"))


@pytest.fixture(autouse=True)
def fresh_cache():
    inference.CACHE.clear()
    yield
    inference.CACHE.clear()


def ask(question, system=""):
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": question}]


def test_it_answers_greedily_and_deterministically(base):
    conversations = [ask(p["question"]) for p in PAIRS[:3]]
    first = generate(base, conversations, max_new_tokens=12)
    assert first == generate(base, conversations, max_new_tokens=12)
    assert len(first) == 3 and all(isinstance(a, str) and a for a in first)


def test_it_answers_like_training_taught_with_the_adapter(base, tuned):
    answers = generate(tuned, [ask(p["question"]) for p in PAIRS], max_new_tokens=16)
    assert sum(a.strip() == p["answer"] for a, p in zip(answers, PAIRS)) >= 6
    assert generate(base, [ask(PAIRS[0]["question"])], max_new_tokens=16) != [PAIRS[0]["answer"]]


def test_it_gives_the_same_answers_in_batches_as_one_by_one(tuned):
    # Different lengths, so that left padding is exercised.
    conversations = [ask(p["question"]) for p in PAIRS[:4]] + [ask("Hi", system="Be brief."), ask("Where does item1 live? Tell me.")]
    batched = generate(tuned, conversations, max_new_tokens=16, batch_size=4)
    assert batched == [generate(tuned, [c], max_new_tokens=16)[0] for c in conversations]


def test_it_streams_pieces_that_join_to_the_generated_answer(base, tuned):
    for ref in (base, tuned):
        for messages in (ask(PAIRS[2]["question"]), ask("Hello there", system="You are terse.")):
            usage = {}
            pieces = list(stream(ref, messages, max_new_tokens=20, usage=usage))
            assert "".join(pieces) == generate(ref, [messages], max_new_tokens=20)[0]
            assert usage["prompt_tokens"] > 0 and 0 < usage["completion_tokens"] <= 20
            assert usage["finish_reason"] in ("stop", "length")
    usage = {}
    list(stream(base, ask("Hello"), max_new_tokens=3, usage=usage))
    assert usage == {"prompt_tokens": usage["prompt_tokens"], "completion_tokens": 3, "finish_reason": "length"}


def test_it_samples_reproducibly_with_a_seed(base):
    options = dict(max_new_tokens=16, temperature=1.5, top_p=0.9)
    one = generate(base, [ask("Hello")], seed=1, **options)
    assert one == generate(base, [ask("Hello")], seed=1, **options)
    assert "".join(stream(base, ask("Hello"), seed=1, **options)) == one[0]


def test_it_stops_streaming_when_asked(base):
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) >= 3

    usage = {}
    pieces = list(stream(base, ask("Hello"), max_new_tokens=200, temperature=1.0, should_stop=should_stop, usage=usage))
    assert usage["completion_tokens"] <= 4 and len("".join(pieces)) < 100


def test_it_refuses_conversations_it_cannot_take(base):
    with pytest.raises(ReadableError, match="at least one message"):
        generate(base, [[]])
    with pytest.raises(ReadableError, match="role"):
        generate(base, [[{"role": "wizard", "content": "hi"}]])
    with pytest.raises(ReadableError, match="last message"):
        list(stream(base, [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ho"}]))
    with pytest.raises(ReadableError, match="too long"):
        generate(base, [ask("word " * 2000)])
    with pytest.raises(ReadableError, match="top_p"):
        generate(base, [ask("hi")], temperature=1.0, top_p=0)
    with pytest.raises(ReadableError, match="missing"):
        generate(ModelRef(path=base.path, adapter=base.path + "-nowhere"), [ask("hi")])


def test_it_keeps_models_loaded_and_evicts_the_least_recently_used(base, tuned, tmp_path):
    other = ModelRef(path=str(build_tiny_gemma3(tmp_path / "other", ["a b c"], hidden=64)))
    cache = ModelCache()
    model, _ = cache.get(base)
    size = inference.model_bytes(model)
    cache.configure(max_bytes=2 * size + 1)  # room for two tiny models of the base's size

    assert cache.get(base)[0] is model and cache.loads == 1  # reused, not reloaded
    cache.get(tuned)
    assert cache.refs() == [base, tuned] and cache.loads == 2
    cache.get(base)  # base becomes the most recently used ...
    cache.get(other)  # ... so the adapter model is the one evicted
    assert cache.refs() == [base, other] and cache.loads == 3
    assert cache.total_bytes <= cache.max_bytes

    cache.configure(max_bytes=1)  # a model alone over budget is still served
    assert cache.refs() == []
    cache.get(tuned)
    assert cache.refs() == [tuned]


def test_it_reloads_a_model_whose_folder_changed(base, tmp_path):
    folder = build_tiny_gemma3(tmp_path / "m", ["x y z"])
    ref = ModelRef(path=str(folder))
    cache = ModelCache()
    cache.get(ref)
    cache.get(ref)
    assert cache.loads == 1
    build_tiny_gemma3(tmp_path / "m2", ["x y z"])
    import os
    import shutil

    shutil.rmtree(folder)
    os.rename(tmp_path / "m2", folder)
    cache.get(ref)
    assert cache.loads == 2


def test_it_ends_a_turn_at_the_templates_marker_even_when_the_model_forgot_it(base):
    """A model converted from GGUF can lose its generation config (eos <end_of_turn>) and count the marker as text."""
    model, tokenizer = inference.load(base)
    model.generation_config.eos_token_id = None
    ids = inference._eos_ids(model, tokenizer)
    assert tokenizer.convert_tokens_to_ids("<end_of_turn>") in ids and tokenizer.eos_token_id in ids
    assert inference._turn_text("August 1993<end_of_turn>\nAugust 1994<end_of_turn>") == "August 1993"
    assert inference._turn_text("Paris<|im_end|>") == "Paris" and inference._turn_text("Paris") == "Paris"
