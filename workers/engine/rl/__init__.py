"""Reinforcement learning: GRPO training and its reward functions."""
