"""Bringing model-resolution results back to the frame's full size.

Luma: the restoration's *change* is upscaled and added to the full-size input luma,
so detail the restoration left alone keeps its full resolution. Chroma: the model's
ab is upscaled bilinearly and joined with that luma in Lab, then converted to sRGB.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .lab import model_to_rgb, rgb_to_model


def upscale(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of [C, h, w] or [T, C, h, w] to size (H, W)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if x.dim() == 3:
        return upscale(x.unsqueeze(0), size)[0]
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


def full_luma(l_full: torch.Tensor, l_in: torch.Tensor, l_out: torch.Tensor) -> torch.Tensor:
    """Full-size restored L [1, H, W] = input L + upscaled (restored - input) at model size."""
    return (l_full + upscale(l_out - l_in, l_full.shape[-2:])).clamp(0, 1)


def compose(full: torch.Tensor, l_in: torch.Tensor, l_out: torch.Tensor,
            ab: torch.Tensor | None, rgb_input: bool) -> torch.Tensor:
    """Output frames at full size (any leading batch dims, e.g. [T, C, H, W]).

    full: the input frames, model L [..., 1, H, W] (GRAY/YUV) or sRGB [..., 3, H, W] (RGB);
    l_in, l_out: model L [..., 1, h, w] before/after restoration; ab: model ab
    [..., 2, h, w] or None. Returns sRGB [..., 3, H, W] when there is ab or the input
    is RGB, else L [..., 1, H, W].
    """
    if rgb_input:
        l_full, ab_full = rgb_to_model(full)
    else:
        l_full, ab_full = full, None
    l_new = full_luma(l_full, l_in, l_out)
    if ab is not None:
        return model_to_rgb(l_new, upscale(ab, l_full.shape[-2:]))
    if ab_full is not None:
        return model_to_rgb(l_new, ab_full)
    return l_new
