"""The colorization at a smaller size than the restoration (`color_mindim`).

The restoration (convolutions only) gains from a large size; the colorization's self
attention costs the square of its pixels, and users of the authors' script report faded
colour above a short edge of about 450. So the restored L is brought down to the colour
size for the colorization network, and its outputs are brought back up to the model size,
where everything after it (caches, both finishes) works unchanged. The filter's engine
and the evaluation protocol share these two functions, so both measure the same thing.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def to_colour_size(l: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Restored L [N, 1, h, w] -> [N, 1, *size] (size (h', w') no larger), same dtype.

    Antialiased bilinear (a triangle filter as wide as the scale): any ratio, not only
    whole ones as an area average, and no aliasing of film grain a plain bilinear sample
    would fold into the attention's keys. Each frame alone, in float32."""
    if tuple(l.shape[-2:]) == tuple(size):
        return l
    out = F.interpolate(l.float(), size=tuple(size), mode="bilinear", antialias=True,
                        align_corners=False)
    return out.to(l.dtype)


def to_model_size(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Colour-size results [N, C, h', w'] -> [N, C, *size], bilinearly (as the finish
    upscales model size to full size), float32."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x.float(), size=tuple(size), mode="bilinear", align_corners=False)
