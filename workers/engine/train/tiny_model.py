"""A tiny Gemma 3 (about a million parameters) whose tokenizer is trained on the data at hand.

It is the base model of the test suite and of the offline demo: built in about a second, it learns a
small set of question-answer pairs on a CPU in under a minute. Real models come from the catalogue."""
from __future__ import annotations

from pathlib import Path

from workers.common.catalogue import GEMMA_CHAT_TEMPLATE

SPECIAL_TOKENS = ["<pad>", "<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"]


def build_tiny_gemma3(out_dir: str | Path, corpus: list[str], *, hidden: int = 128, vocab: int = 2048, seed: int = 0) -> Path:
    """Train a byte-level BPE tokenizer on `corpus`, initialise a tiny Gemma 3 and save both to `out_dir`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, PreTrainedTokenizerFast

    out_dir = Path(out_dir)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(list(corpus) + ["user model question answer"], trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<bos>", eos_token="<end_of_turn>",
                                        pad_token="<pad>", chat_template=GEMMA_CHAT_TEMPLATE)
    # Initialisation of 0.1 at this width keeps LoRA learning fast; embeddings stay untied so that an
    # adapter on them can be merged.
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=4 * hidden, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=512, sliding_window=128,
        initializer_range=0.1, tie_word_embeddings=False, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    model = Gemma3ForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
