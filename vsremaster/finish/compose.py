"""Bringing model-size results back to the frame's full size (torch, any device).

Luma: the restoration's *change* is upscaled and added to the full-size input L, so
detail the restoration left alone keeps its full resolution. Chroma: the model's ab is
upscaled bilinearly and laid over that luma.

Two tones for GRAY and YUV input (`settings.TONES`):
- "keep" (default): the output's luma is the luma the model read, restored; the
  chroma is that of Lab(L* of an sRGB grey of that luma, a*, b*), so a neutral a*b*
  gives back exactly the luma. A colourist lays new chroma over the picture's luma.
- "lab": the authors' round trip: the luma read as L*/100 and composed in Lab. The L*
  curve is not a video transfer curve, so mid-greys come back about 5 levels darker.
RGB input has its L from linear light and always takes the exact Lab round trip.

`saturation` scales the model's a*b* about neutral before the conversion (RGB input: the
model's ab, which replace the input's); 1.0 adds no operation at all.
"""
from __future__ import annotations

import torch

from ..color.lab import AB_LIMIT, model_to_rgb, rgb_to_model
from ..color.ycbcr import rgb_to_ycbcr
from ..model.sizes import to_model_size
from ..references.fallback import NEUTRAL_AB

#: The model ab the conversion keeps (a*, b* clipped to +-AB_LIMIT, `color.lab.model_to_ab`)
_AB_LOW, _AB_HIGH = NEUTRAL_AB - AB_LIMIT / 255.0, NEUTRAL_AB + AB_LIMIT / 255.0


def upscale(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of [C, h, w] or [T, C, h, w] to size (H, W)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if x.dim() == 3:
        return upscale(x.unsqueeze(0), size)[0]
    return to_model_size(x, size)


def saturated(ab: torch.Tensor, saturation: float) -> torch.Tensor:
    """Model ab [..., 2, H, W] with a*, b* scaled by `saturation` about neutral, clipped
    as the conversion clips them (+-AB_LIMIT), so what is scored is what is shown.
    1.0 returns `ab` itself: the model's colour bit for bit. (`finish.expr` has the same
    formula for the CPU finish; `vsremaster evaluate --saturation` scores with this.)"""
    if saturation == 1.0:
        return ab
    return ((ab - NEUTRAL_AB) * saturation + NEUTRAL_AB).clamp(_AB_LOW, _AB_HIGH)


def grey_lightness(y: torch.Tensor) -> torch.Tensor:
    """Model L (L*/100) of the sRGB grey whose code value is y in [0, 1] (any shape)."""
    lin = torch.where(y > 0.04045, ((y + 0.055) / 1.055) ** 2.4, y / 12.92)
    e = 6.0 / 29.0
    f = torch.where(lin > e ** 3, lin.clamp(min=0) ** (1.0 / 3.0), lin / (3 * e * e) + 4.0 / 29.0)
    return (116.0 * f - 16.0) / 100.0


def compose(l_in: torch.Tensor, delta: torch.Tensor | None, ab: torch.Tensor | None,
            matrix: int | None, tone: str = "keep", rgb: torch.Tensor | None = None,
            saturation: float = 1.0) -> torch.Tensor:
    """One output frame at full size, in [0, 1] (Y'CbCr chroma in [-0.5, 0.5]).

    l_in: the input's model L [..., 1, H, W] (GRAY/YUV: the luma; ignored when `rgb` is
    given); rgb: an RGB input's sR'G'B' [..., 3, H, W] or None; delta: the restoration's
    change [..., 1, h, w] or None; ab: model ab [..., 2, h, w] or None (RGB input: its
    own); matrix: the Y'CbCr matrix of YUV output, None for R'G'B' output; saturation:
    the factor on the model's a*b* (`saturated`; not on an RGB input's own). Returns
    [..., 3, H, W], or the restored L [..., 1, H, W] when there is no colour at all.
    """
    if rgb is not None:
        l_in, ab_in = rgb_to_model(rgb)
        tone = "lab"                              # L from linear light: exact round trip
    else:
        ab_in = None
    size = l_in.shape[-2:]
    l_new = l_in if delta is None else l_in + upscale(delta, size)
    l_new = l_new.clamp(0, 1)
    # scaled after the upscale, as the graph finish does: the clip is not linear
    ab = saturated(upscale(ab, size), saturation) if ab is not None else ab_in
    if ab is None:
        return l_new
    lightness = grey_lightness(l_new) if tone == "keep" else l_new
    out = model_to_rgb(lightness, ab)
    if matrix is None:
        return out
    out = rgb_to_ycbcr(out, matrix)
    if tone == "keep":
        out = torch.cat([l_new, out[..., 1:, :, :]], dim=-3)
    return out
