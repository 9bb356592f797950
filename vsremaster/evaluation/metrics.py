"""Image-quality metrics: PSNR and CIEDE2000 (Sharma, Wu & Dalal 2005), torch or numpy in."""
from __future__ import annotations

import math

import numpy as np
import torch


def _t(x) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def mse(a, b) -> float:
    a, b = _t(a).double(), _t(b).double()
    return float(torch.mean((a - b) ** 2))


def psnr(a, b, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB over all elements; `inf` when a == b."""
    m = mse(a, b)
    return math.inf if m == 0 else 10.0 * math.log10(peak * peak / m)


def mean_abs_error(a, b) -> float:
    """Mean absolute difference over all elements."""
    return float(torch.mean(torch.abs(_t(a).double() - _t(b).double())))


def psnr_from_mse(m: float, peak: float = 1.0) -> float:
    return math.inf if m == 0 else 10.0 * math.log10(peak * peak / m)


def ciede2000(lab1, lab2, dim: int = -1) -> torch.Tensor:
    """CIEDE2000 colour difference between CIE L*a*b* colours (kL = kC = kH = 1).

    `lab1`, `lab2`: tensors or arrays with L*, a*, b* along `dim` (broadcastable);
    returns the per-colour difference (float64) with `dim` removed.
    """
    lab1, lab2 = _t(lab1).double(), _t(lab2).double()
    l1, a1, b1 = lab1.unbind(dim)
    l2, a2, b2 = lab2.unbind(dim)
    c1 = torch.hypot(a1, b1)
    c2 = torch.hypot(a2, b2)
    cbar7 = ((c1 + c2) / 2) ** 7
    g = 0.5 * (1 - torch.sqrt(cbar7 / (cbar7 + 25.0 ** 7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = torch.hypot(a1p, b1), torch.hypot(a2p, b2)
    h1p = torch.rad2deg(torch.atan2(b1, a1p)) % 360
    h2p = torch.rad2deg(torch.atan2(b2, a2p)) % 360
    zero = (c1p * c2p) == 0
    h1p = torch.where((a1p == 0) & (b1 == 0), torch.zeros_like(h1p), h1p)
    h2p = torch.where((a2p == 0) & (b2 == 0), torch.zeros_like(h2p), h2p)

    dlp = l2 - l1
    dcp = c2p - c1p
    dh = h2p - h1p
    dh = torch.where(dh > 180, dh - 360, torch.where(dh < -180, dh + 360, dh))
    dh = torch.where(zero, torch.zeros_like(dh), dh)
    dhp = 2 * torch.sqrt(c1p * c2p) * torch.sin(torch.deg2rad(dh) / 2)

    lbar = (l1 + l2) / 2
    cbarp = (c1p + c2p) / 2
    hsum = h1p + h2p
    hbar = torch.where((h1p - h2p).abs() <= 180, hsum / 2,
                       torch.where(hsum < 360, (hsum + 360) / 2, (hsum - 360) / 2))
    hbar = torch.where(zero, hsum, hbar)
    rad = torch.deg2rad
    t = (1 - 0.17 * torch.cos(rad(hbar - 30)) + 0.24 * torch.cos(rad(2 * hbar))
         + 0.32 * torch.cos(rad(3 * hbar + 6)) - 0.20 * torch.cos(rad(4 * hbar - 63)))
    dtheta = 30 * torch.exp(-(((hbar - 275) / 25) ** 2))
    cbarp7 = cbarp ** 7
    rc = 2 * torch.sqrt(cbarp7 / (cbarp7 + 25.0 ** 7))
    sl = 1 + 0.015 * (lbar - 50) ** 2 / torch.sqrt(20 + (lbar - 50) ** 2)
    sc = 1 + 0.045 * cbarp
    sh = 1 + 0.015 * cbarp * t
    rt = -torch.sin(rad(2 * dtheta)) * rc
    return torch.sqrt((dlp / sl) ** 2 + (dcp / sc) ** 2 + (dhp / sh) ** 2
                      + rt * (dcp / sc) * (dhp / sh))


def mean_ciede2000(lab1, lab2, dim: int = -1) -> float:
    return float(ciede2000(lab1, lab2, dim).mean())
