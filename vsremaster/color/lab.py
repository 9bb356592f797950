"""The model's colour encoding: CIE L*a*b* of sRGB (D65), as the authors' pipeline uses.

Model L = L*/100; model ab = (ab + 128)/255, decoded with ab = out*255 - 128 clipped to
[-100, 100]. Tensors are channel-first: [..., C, H, W].
"""
from __future__ import annotations

import torch
from kornia.color import rgb_to_lab

AB_LIMIT = 100.0
WHITE = (0.950456, 1.0, 1.088754)            # D65, as OpenCV uses for Lab -> RGB
#: linear sRGB -> XYZ and the D65 white as kornia's rgb_to_lab uses them (row 1: luminance)
RGB_TO_XYZ = ((0.412453, 0.357580, 0.180423),
              (0.212671, 0.715160, 0.072169),
              (0.019334, 0.119193, 0.950227))
RGB_WHITE = (0.95047, 1.0, 1.08883)
XYZ_TO_RGB = ((3.2404813432005266, -1.5371515162713185, -0.4985363261688878),
               (-0.9692549499965682, 1.8759900014898907, 0.0415559265582928),
               (0.0556466391351772, -0.2040413383665112, 1.0573110696453443))


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """CIE Lab [..., 3, H, W] -> sRGB in [0, 1] (D65), clipped.

    The same formula as kornia's, written out so it runs as few passes over the pixels
    as possible (it runs on every output frame at full size).
    """
    l, a, b = lab.unbind(-3)
    fy = (l + 16.0) / 116.0
    f = torch.stack([fy + a / 500.0, fy, (fy - b / 200.0).clamp(min=0)], dim=-3)
    xyz = torch.where(f > 6.0 / 29.0, f ** 3, (f - 4.0 / 29.0) * (3.0 * (6.0 / 29.0) ** 2))
    m = torch.tensor(XYZ_TO_RGB, dtype=lab.dtype, device=lab.device) * \
        torch.tensor(WHITE, dtype=lab.dtype, device=lab.device)
    lin = torch.einsum("ij,...jhw->...ihw", m, xyz).clamp(0, 1)
    return torch.where(lin > 0.0031308, 1.055 * lin.pow(1 / 2.4) - 0.055, 12.92 * lin)


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
    return lab_to_rgb(lab)
