"""R'G'B' <-> Y'CbCr and integer quantisation (torch, any device).

Matrices by their VapourSynth `_Matrix` number, given as (Kr, Kb). Float samples keep
Y and RGB in [0, 1] and chroma in [-0.5, 0.5]; integer ones are scaled to full or
limited range as the resizer (zimg) does.
"""
from __future__ import annotations

import torch

#: (Kr, Kb) of the matrices the filter converts with; others fall back to BT.709.
KR_KB = {1: (0.2126, 0.0722), 4: (0.30, 0.11), 5: (0.299, 0.114), 6: (0.299, 0.114),
         7: (0.212, 0.087), 9: (0.2627, 0.0593)}
BT709 = 1


def supported_matrix(matrix: int) -> int:
    """The matrix the filter writes for a source's `_Matrix` (BT.709 when not in KR_KB)."""
    return matrix if matrix in KR_KB else BT709


def rgb_to_ycbcr(rgb: torch.Tensor, matrix: int) -> torch.Tensor:
    """R'G'B' [..., 3, H, W] in [0, 1] -> Y'CbCr [..., 3, H, W] (Y in [0, 1], C in +-0.5)."""
    kr, kb = KR_KB[supported_matrix(matrix)]
    r, g, b = rgb.unbind(-3)
    y = kr * r + (1 - kr - kb) * g + kb * b
    return torch.stack([y, (b - y) / (2 * (1 - kb)), (r - y) / (2 * (1 - kr))], dim=-3)


def quantize(x: torch.Tensor, bits: int, full_range: bool, chroma: bool = False) -> torch.Tensor:
    """Samples in [0, 1] (chroma: [-0.5, 0.5]) -> integers of `bits` bits, rounded and
    clamped, as int32 (the caller casts to the plane's type)."""
    top = (1 << bits) - 1
    if full_range:
        scale, offset = float(top), float(1 << (bits - 1)) if chroma else 0.0
    else:
        unit = float(1 << (bits - 8))
        scale, offset = (224.0 if chroma else 219.0) * unit, (128.0 if chroma else 16.0) * unit
    return torch.round(x * scale + offset).clamp_(0, top).to(torch.int32)


def dequantize(x: torch.Tensor, bits: int, full_range: bool) -> torch.Tensor:
    """Integer luma or RGB samples -> float32 in [0, 1] (limited range expanded)."""
    if full_range:
        return x.float() / float((1 << bits) - 1)
    unit = float(1 << (bits - 8))
    return (x.float() - 16.0 * unit) / (219.0 * unit)
