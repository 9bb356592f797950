"""The model's colour encoding: CIE L*a*b* of sRGB (D65), as the authors' pipeline uses.

Model L = L*/100; model ab = (ab + 128)/255, decoded with ab = out*255 - 128 clipped to
[-100, 100]. Tensors are channel-first: [..., C, H, W].
"""
from __future__ import annotations

import torch
from kornia.color import lab_to_rgb, rgb_to_lab

AB_LIMIT = 100.0


def ab_to_model(ab: torch.Tensor) -> torch.Tensor:
    """Lab a*b* [..., 2, H, W] -> model ab in [0, 1]."""
    return (ab + 128.0) / 255.0


def model_to_ab(ab: torch.Tensor) -> torch.Tensor:
    """Model ab [..., 2, H, W] in [0, 1] -> Lab a*b*, clipped to +-100 as released."""
    return (ab * 255.0 - 128.0).clamp(-AB_LIMIT, AB_LIMIT)


def rgb_to_model(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """sRGB [..., 3, H, W] in [0, 1] -> (model L [..., 1, H, W], model ab [..., 2, H, W])."""
    lab = rgb_to_lab(rgb.clamp(0, 1))
    return lab[..., :1, :, :] / 100.0, ab_to_model(lab[..., 1:, :, :])


def model_to_rgb(l: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """(model L [..., 1, H, W], model ab [..., 2, H, W]) -> sRGB [..., 3, H, W] in [0, 1]."""
    lab = torch.cat([l.clamp(0, 1) * 100.0, model_to_ab(ab)], dim=-3)
    return lab_to_rgb(lab, clip=True)
