"""Did a real model learn a document? Recall, unseen facts and control, base model beside tuned model.

    python bench/learning.py data DOCUMENT OUT.json          # extract, make facts, hold out, on this machine
    python bench/learning.py run DATA.json [MODEL] [BACKEND] # train and evaluate (any machine, GPU or CPU)

`data` runs the engine's extraction, chunking and offline generator on DOCUMENT and freezes the result the way a
dataset version is frozen (workers.common.splits): training pairs, recall phrasings (new phrasings of trained facts),
unseen facts (never trained on) and the document passages training reads. It needs no database, so the JSON can
travel to a GPU machine that has only the engine's packages.

`run` fine-tunes MODEL (default pypi/SmolLM2-135M-Instruct; any catalogue id or model folder) with the settings the
platform recommends for it (workers.common.recommend, without a CPU time budget; passages and replay on) and evaluates
the base and the tuned model on the recall and unseen questions and the shipped control set (workers.engine.evaluate.heldout). It prints one JSON line with
recall/unseen/control token F1 before (the base model: the baseline, measured in the same run) and after, and the
seconds each stage took. The same measures on the CPU through the product's own path: `garage pipeline DOCUMENT
--json` (see bench/RESULTS.md).

The document used in bench/RESULTS.md: "A Brief History of Debian" (Debian package debian-history, GPL-2+,
/usr/share/doc/debian-history/docs/project-history.en.pdf; `apt-get install debian-history`)."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

UNSEEN_RATIO, RECALL_RATIO = 0.1, 0.3  # the platform's defaults (GARAGE_HELDOUT_RATIO, GARAGE_RECALL_RATIO)


def make_data(document: str, out: str) -> None:
    from workers.engine.data.chunking import chunk_text
    from workers.engine.extract import extract_file
    from workers.engine.data.generate import extractive_pairs
    from workers.common.splits import HELDOUT, RECALL, evaluation_splits, passages_without

    extracted = extract_file(document)
    chunks = [chunk.text for chunk in chunk_text(extracted.text)]
    pairs = extractive_pairs(chunks)
    splits = evaluation_splits([(p.question, p.fact) for p in pairs], unseen_ratio=UNSEEN_RATIO, recall_ratio=RECALL_RATIO)
    groups = {"train": [], "recall": [], "unseen": []}
    for position, pair in enumerate(pairs):
        split = splits.get(position, "train")
        group = {RECALL: "recall", HELDOUT: "unseen"}.get(split, "train")
        groups[group].append({"question": pair.question, "answer": pair.answer, "fact": pair.fact})
    passages = passages_without(chunks, [p["answer"] for p in groups["unseen"]])
    data = {"document": Path(document).name, "pages": extracted.pages, **groups, "passages": passages}
    Path(out).write_text(json.dumps(data, indent=1))
    print(json.dumps({"document": data["document"], "pages": extracted.pages, "pairs": len(pairs),
                      **{k: len(v) for k, v in groups.items()}, "passages": len(passages)}))


def run(data_file: str, model: str, backend: str) -> None:
    import torch

    from workers.engine.weights import model_source
    from workers.engine.evaluate.heldout import evaluate_heldout, load_control_set
    from workers.engine.inference import ModelRef, clear_cache, generate
    from workers.engine.train.device import measure_device
    from workers.common.recommend import example_tokens, model_facts_for, recommend
    from workers.engine.reporting import RecordingReporter
    from workers.engine.train.train import TrainConfig, load_replay_prompts, train

    data = json.loads(Path(data_file).read_text())
    started = time.monotonic()
    cache = ROOT / "var" / "bench-models"
    base_path = model_source(model, cache_dir=cache)
    facts = model_facts_for(model, base_path)
    lengths = [example_tokens(len(p["question"]) + len(p["answer"]), facts.chat_template) for p in data["train"]]
    advice = recommend(model=facts, method="lora", token_lengths=lengths,
                       passage_characters=[len(p) for p in data["passages"]], device=measure_device(), backend=backend)
    output = ROOT / "var" / "bench-learning" / f"{model.replace('/', '--')}-{backend}"
    # As the platform trains by default: the pairs, the document's passages, and replay of the base model's answers.
    config = TrainConfig(base_model=model, output_dir=str(output), pairs=data["train"], passages=data["passages"],
                         replay_prompts=load_replay_prompts(), backend=backend, model_cache_dir=str(cache),
                         evaluate=False, **advice.options)
    result = train(config, RecordingReporter())
    trained = time.monotonic()

    base, tuned = ModelRef(path=base_path), ModelRef(path=base_path, adapter=str(output / "model"))
    asked = ([{**p, "group": "recall"} for p in data["recall"]] + [{**p, "group": "unseen"} for p in data["unseen"]]
             + load_control_set())
    batch = 64 if torch.cuda.is_available() else 16
    report = evaluate_heldout(asked, lambda c, **k: generate(base, c, **{**k, "batch_size": batch}),
                              lambda c, **k: generate(tuned, c, **{**k, "batch_size": batch}), RecordingReporter())
    clear_cache()
    figures = {}
    for group in ("recall", "unseen", "control"):
        values = report["groups"].get(group)
        figures[f"{group}_before"] = round(values["base"]["token_f1"], 3) if values else None
        figures[f"{group}_after"] = round(values["tuned"]["token_f1"], 3) if values else None
        figures[f"{group}_n"] = values["n"] if values else 0
    print(json.dumps({"model": model, "backend": result["backend"], "device": torch.cuda.get_device_name(0)
                      if torch.cuda.is_available() else "cpu", "train_pairs": len(data["train"]),
                      "passages": len(data["passages"]), "steps": result["train_steps"],
                      "options": {k: advice.options[k] for k in ("learning_rate", "batch_size", "max_length")},
                      **figures, "loss_first": round(result["loss_first"], 3), "loss_last": round(result["loss_last"], 3),
                      "train_seconds": round(trained - started, 1), "evaluate_seconds": round(time.monotonic() - trained, 1),
                      "recall_samples": [{"question": a["question"], "reference": a["answer"],
                                          "base": r["base_answer"][:80], "tuned": r["tuned_answer"][:80]}
                                         for a, r in zip(asked, report["items"]) if a["group"] == "recall"][:5]}))


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "data":
        make_data(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 3 and sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "pypi/SmolLM2-135M-Instruct",
            sys.argv[4] if len(sys.argv) > 4 else "auto")
    else:
        raise SystemExit(__doc__)
