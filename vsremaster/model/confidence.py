"""How much each position's colour is a guess: the match confidence of the attention.

The source-reference attention at H/8 (`stattn1`) gives every source position weights
p_1..p_S over the S reference positions, and takes its colour from them. How far those
reference pixels are from the position, in CIE Lab units:

    D = (E_p[L*] - L*_source)^2 + Var_p(a*, b*)

their mean lightness against the position's own, and the spread of their colours
(E_p[|ab|^2] - |E_p[ab]|^2). D is 0 when the position drew on pixels of its lightness
that agree on one colour, and large when they are unlike it or mix unlike colours. The
confidence is 1 / (1 + D / MATCH_SCALE^2) in [0, 1]: 1 = matched a reference closely,
0 = no reference resembles this. Moments of each key position are means over its 8x8
reference pixels; the source lightness is the mean over the position's 8x8 pixels.

Chosen by measurement (README, "Where colour is a guess"): with the bundled model the
attention is nearly uniform, so its own shape (largest weight, entropy) correlated
*positively* with the per-frame colour error on the evaluation clips; the colour spread
alone correlated best, negatively, but cannot see a scene whose reference set is of
one colour and unlike it; D does both.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from kornia.color import rgb_to_lab

#: The distance sqrt(D) (CIE Lab units) that gives confidence 0.5: a lightness 20 off, or
#: two colours 40 apart (red against orange) weighed alike.
MATCH_SCALE = 20.0
#: Query rows per block of the explicit pass: keeps the logits block near 64 MiB.
_BLOCK_ELEMENTS = 16 << 20


@torch.no_grad()
def reference_moments(refs: torch.Tensor, factor: int = 8) -> torch.Tensor:
    """RGB references [B, N, 3, Hr, Wr] in [0, 1] -> [B, N*Hr/f*Wr/f, 4] (float32): each
    key position's mean L*, a*, b* and a*^2 + b*^2 over its f x f pixels (Lab / 100), in
    the order of the attention's keys (reference, row, column)."""
    b, n = refs.shape[:2]
    lab = rgb_to_lab(refs.flatten(0, 1).float().clamp(0, 1)) / 100.0
    ab = lab[:, 1:]
    moments = torch.cat([lab, (ab * ab).sum(1, keepdim=True)], 1)
    pooled = F.avg_pool2d(moments, factor)                        # [B*N, 4, h, w]
    return pooled.unflatten(0, (b, n)).permute(0, 1, 3, 4, 2).reshape(b, -1, 4).contiguous()


def source_lightness(l: torch.Tensor, factor: int = 8) -> torch.Tensor:
    """Model L [N, 1, H, W] (L*/100) -> each position's mean [N, H/f * W/f] (float32)."""
    return F.avg_pool2d(l.float(), factor).flatten(1)


def confidence_of(moments: torch.Tensor, lightness: torch.Tensor) -> torch.Tensor:
    """Attended moments [..., 4] (E_p of `reference_moments`) and the source lightness
    [...] -> the confidence [...] (float32)."""
    m = moments.float()
    var = (m[..., 3] - m[..., 1] * m[..., 1] - m[..., 2] * m[..., 2]).clamp_(min=0.0)
    off = m[..., 0] - lightness.float()
    return 1.0 / (1.0 + (off * off + var) * (100.0 / MATCH_SCALE) ** 2)


def attention_confidence(q: torch.Tensor, k: torch.Tensor, moments: torch.Tensor,
                         lightness: torch.Tensor) -> torch.Tensor:
    """The confidence [B, L] of softmax(q k^T) for q [B, L, E], k [B, S, E], the keys'
    moments [B, S, 4] and the queries' lightness [B, L], on any device, in float32 and a
    block of query rows at a time (where the fused attention kernels hide the weights)."""
    rows = min(q.shape[1], max(1, _BLOCK_ELEMENTS // max(1, k.shape[1])))
    kt = k.float().transpose(1, 2)
    moments = moments.float()
    out = []
    for i in range(0, q.shape[1], rows):
        p = torch.bmm(q[:, i:i + rows].float(), kt).softmax(-1)
        out.append(confidence_of(torch.bmm(p, moments), lightness[:, i:i + rows]))
    return torch.cat(out, 1)
