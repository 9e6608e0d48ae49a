"""Fine-tuning (LoRA and full) with Unsloth or TRL, and the tiny test model."""
