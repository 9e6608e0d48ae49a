"""The shapes of a model that decide its memory and compute: what the catalogue records for each entry (or reads
from a config.json) and what the pre-flight planner (workers.common.planner) estimates from. A module of its own,
below both: the catalogue asks the planner for the device a GPU worker recorded, so the planner must not need the
catalogue."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Architecture:
    """The shapes that decide memory and compute; the field names follow transformers' configs."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    vocab_size: int
    tie_word_embeddings: bool = True

    @classmethod
    def from_config(cls, config: dict) -> "Architecture":
        """From a config.json's contents (a multimodal model's text part when it has one)."""
        text = config.get("text_config") or config
        intermediate = text["intermediate_size"]
        if isinstance(intermediate, list):  # Gemma 3n gives one per layer
            intermediate = max(intermediate)
        heads = text["num_attention_heads"]
        return cls(hidden_size=text["hidden_size"], intermediate_size=intermediate,
                   num_hidden_layers=text["num_hidden_layers"], num_attention_heads=heads,
                   num_key_value_heads=text.get("num_key_value_heads") or heads,
                   head_dim=text.get("head_dim") or text["hidden_size"] // heads, vocab_size=text["vocab_size"],
                   tie_word_embeddings=config.get("tie_word_embeddings", text.get("tie_word_embeddings", True)))

    def linear_parameters(self) -> int:
        """Weights of the projections LoRA adapts (attention and MLP), over all layers."""
        attention = self.hidden_size * self.head_dim * (2 * self.num_attention_heads + 2 * self.num_key_value_heads)
        mlp = 3 * self.hidden_size * self.intermediate_size
        return self.num_hidden_layers * (attention + mlp)

    def parameters(self) -> int:
        """All weights but the norms (a fraction of a percent): embeddings, output head when untied, projections."""
        return self.vocab_size * self.hidden_size * (1 if self.tie_word_embeddings else 2) + self.linear_parameters()

    def lora_parameters(self, rank: int) -> int:
        """Trainable parameters of a rank-`rank` LoRA on every projection: r × (in + out) per projection."""
        q_out, kv_out = self.num_attention_heads * self.head_dim, self.num_key_value_heads * self.head_dim
        h, i = self.hidden_size, self.intermediate_size
        per_layer = (h + q_out) * 2 + (h + kv_out) * 2 + (h + i) * 3
        return rank * per_layer * self.num_hidden_layers
