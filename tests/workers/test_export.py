"""The export engine alone (no Django): merged model, GGUF files and model card from tiny fine-tunes."""
import json
import shutil
import zipfile

import pytest
import torch
from django.conf import settings

from workers.common.errors import ReadableError
from workers.engine.export import ExportConfig, convert_gguf, export, model_card
from workers.engine.reporting import RecordingReporter
from workers.engine.train.train import TrainConfig, train

PAIRS = [{"question": f"Where does item{i} live?", "answer": f"Item{i} lives in {city}."}
         for i, city in enumerate(["Paris", "Rome", "Oslo", "Lima", "Cairo", "Tokyo", "Quito", "Dublin"] * 2)]
PROMPTS = ["Where does item3 live?", "Item5 lives in", "<start_of_turn>user\nWhere does item0 live?<end_of_turn>\n"]
FACTS = {"name": "Valley model", "base_model": "tiny-gemma3", "method": "lora", "method_display": "LoRA adapter",
         "dataset": {"name": "Valley notes", "version": 2, "examples": len(PAIRS), "code": "4b0c2c1e"},
         "hyperparameters": {"max_steps": 30, "learning_rate": 0.01, "lora_r": 16, "batch_size": 16},
         "metrics": {"em_before": 0.0, "em_after": 0.9375, "loss_first": 6.1, "loss_last": 0.4, "backend": "trl",
                     "code_version": "0.1.0+abc1234", "train_steps": 30}}


def converter_dir() -> str:
    return str(settings.GARAGE_GGUF_CONVERTER_DIR)


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    """A LoRA fine-tune of the tiny model, then every export of it (merged, f16, q8_0, card)."""
    out = tmp_path_factory.mktemp("lora")
    train(TrainConfig(base_model="tiny-gemma3", output_dir=str(out), pairs=PAIRS, max_steps=20, evaluate=False),
          RecordingReporter())
    reporter = RecordingReporter()
    result = export(ExportConfig(output_dir=str(out), kinds=["card", "gguf_q8_0", "merged", "gguf_f16"], card=FACTS,
                                 converter_dir=converter_dir(), stem="valley"), reporter)
    return out, result, reporter


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    train(TrainConfig(base_model="tiny-gemma3", output_dir=str(out), pairs=PAIRS, method="full", max_steps=10,
                      learning_rate=3e-3, evaluate=False), RecordingReporter())
    return out


def logits(model, tokenizer) -> list[torch.Tensor]:
    with torch.no_grad():
        return [model(**tokenizer(text, return_tensors="pt")).logits[0] for text in PROMPTS]


def test_it_merges_the_adapter_into_weights_that_match_base_plus_adapter(lora_run):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out, result, reporter = lora_run
    tokenizer = AutoTokenizer.from_pretrained(out / "exports" / "merged")
    base = AutoModelForCausalLM.from_pretrained(out / "base")
    plain = logits(base, tokenizer)
    with_adapter = logits(PeftModel.from_pretrained(base, str(out / "model")), tokenizer)
    merged = logits(AutoModelForCausalLM.from_pretrained(out / "exports" / "merged"), tokenizer)
    assert all(torch.allclose(a, m, atol=1e-4) for a, m in zip(with_adapter, merged))
    assert not all(torch.allclose(p, m, atol=1e-2) for p, m in zip(plain, merged))  # the adapter changed something
    assert tokenizer.chat_template and "<start_of_turn>" in tokenizer.chat_template
    with zipfile.ZipFile(out / result["outputs"]["merged"]["path"]) as archive:
        names = set(archive.namelist())
    assert {"model.safetensors", "config.json", "tokenizer.json", "chat_template.jinja", "README.md"} <= names
    assert not any(name.startswith("adapter") for name in names)
    assert reporter.phases == ["merging", "converting to GGUF", "writing model card", "zipping"]
    assert reporter.progress_values[-1] == 1.0


def test_it_writes_gguf_files_that_reload_in_transformers_with_matching_logits(lora_run):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out, result, reporter = lora_run
    gguf = out / "exports" / "gguf"
    assert sorted(p.name for p in gguf.iterdir()) == ["valley-f16.gguf", "valley-q8_0.gguf"]
    tokenizer = AutoTokenizer.from_pretrained(out / "exports" / "merged")
    reference = logits(AutoModelForCausalLM.from_pretrained(out / "exports" / "merged"), tokenizer)
    f16 = logits(AutoModelForCausalLM.from_pretrained(gguf, gguf_file="valley-f16.gguf", dtype=torch.float32), tokenizer)
    q8 = logits(AutoModelForCausalLM.from_pretrained(gguf, gguf_file="valley-q8_0.gguf", dtype=torch.float32), tokenizer)
    assert all(torch.allclose(r, g, atol=2e-2) for r, g in zip(reference, f16))  # 16-bit rounding only
    assert all((r - q).abs().max() < 0.5 for r, q in zip(reference, q8))  # 8-bit blocks: close, not equal
    from_gguf = AutoTokenizer.from_pretrained(gguf, gguf_file="valley-f16.gguf")
    assert from_gguf(PROMPTS[0])["input_ids"] == tokenizer(PROMPTS[0])["input_ids"]
    for kind, name in (("gguf_f16", "valley-f16.gguf"), ("gguf_q8_0", "valley-q8_0.gguf")):
        with zipfile.ZipFile(out / result["outputs"][kind]["path"]) as archive:
            assert sorted(archive.namelist()) == ["README.md", name]
            assert archive.getinfo(name).file_size == (gguf / name).stat().st_size
    assert {"Wrote valley-f16.gguf", "Wrote valley-q8_0.gguf"} <= set(reporter.lines)


def test_it_writes_a_model_card_with_the_base_model_data_and_metrics(lora_run):
    out, result, _ = lora_run
    card = (out / result["outputs"]["card"]["path"]).read_text()
    # The card is written last, and describes what this export made.
    assert card == model_card({**FACTS, "stem": "valley", "outputs": ["gguf_f16", "gguf_q8_0", "merged"]})
    assert "# Valley model" in card and "**tiny-gemma3**" in card
    assert "| Valley notes | 2 | 16 |" in card
    assert "| Exact match on the training questions | 0.000 | 0.938 |" in card
    assert "| learning rate | 0.01 |" in card and "| lora r | 16 |" in card and "| Backend | trl |" in card
    assert "0.1.0+abc1234" in card and "## License" in card
    assert "PeftModel.from_pretrained(base" in card and "llama-cli -m valley-q8_0.gguf" in card
    assert "AutoPeftModelForCausalLM" not in card  # it would look for tiny-gemma3 on the Hub
    assert (out / "exports" / "merged" / "README.md").read_text() == card
    assert "base_model:" not in card.split("---")[1]  # the tiny model is no Hub repository
    hub = model_card({**FACTS, "base_model": "google/gemma-3-1b-it"})
    assert "base_model: google/gemma-3-1b-it" in hub and "Gemma Terms of Use" in hub


def test_it_exports_a_full_fine_tune_to_gguf_and_refuses_to_merge_it(full_run):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with pytest.raises(ReadableError, match="fully fine-tuned"):
        export(ExportConfig(output_dir=str(full_run), kinds=["merged"], converter_dir=converter_dir()), RecordingReporter())
    result = export(ExportConfig(output_dir=str(full_run), kinds=["gguf_f16"], converter_dir=converter_dir()),
                    RecordingReporter())
    assert set(result["outputs"]) == {"gguf_f16"} and not (full_run / "exports" / "merged").exists()
    tokenizer = AutoTokenizer.from_pretrained(full_run / "model")
    reference = logits(AutoModelForCausalLM.from_pretrained(full_run / "model"), tokenizer)
    gguf = logits(AutoModelForCausalLM.from_pretrained(full_run / "exports" / "gguf", gguf_file="model-f16.gguf",
                                                       dtype=torch.float32), tokenizer)
    assert all(torch.allclose(r, g, atol=2e-2) for r, g in zip(reference, gguf))


def test_it_explains_an_architecture_the_converter_does_not_know(lora_run, tmp_path):
    out, _, _ = lora_run
    model = tmp_path / "model"
    shutil.copytree(out / "exports" / "merged", model)
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "architectures": ["PlanetaryLMForCausalLM"]}))
    with pytest.raises(ReadableError, match=r"does not support this model's architecture \(PlanetaryLMForCausalLM\)"):
        convert_gguf(model, [("f16", tmp_path / "x.gguf")], converter_dir=converter_dir(), reporter=RecordingReporter())


@pytest.mark.parametrize("kinds,converter,message", [
    ([], "", "Choose what to export"),
    (["safetensors"], "", "Choose what to export"),
    (["gguf_f16"], "/nowhere", "needs llama.cpp's converter"),
])
def test_it_refuses_what_it_cannot_make_before_any_work(lora_run, kinds, converter, message):
    out, _, _ = lora_run
    reporter = RecordingReporter()
    with pytest.raises(ReadableError, match=message):
        export(ExportConfig(output_dir=str(out), kinds=kinds, converter_dir=converter), reporter)
    assert reporter.phases == []


def test_it_refuses_a_folder_without_trained_weights(tmp_path):
    with pytest.raises(ReadableError, match="no trained weights"):
        export(ExportConfig(output_dir=str(tmp_path), kinds=["card"]), RecordingReporter())
