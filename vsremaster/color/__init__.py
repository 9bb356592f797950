"""Colour conversion between RGB and the model's Lab encoding (torch, on any device)."""
from .lab import ab_to_model, model_to_ab, model_to_rgb, rgb_to_model

__all__ = ["ab_to_model", "model_to_ab", "model_to_rgb", "rgb_to_model"]
