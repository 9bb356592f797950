"""Colour conversions (torch, any device): the model's Lab encoding, Y'CbCr and quantisation."""
from .lab import ab_to_model, model_to_ab, model_to_rgb, rgb_to_model

__all__ = ["ab_to_model", "model_to_ab", "model_to_rgb", "rgb_to_model"]
