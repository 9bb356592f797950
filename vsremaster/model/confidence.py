"""How much each position's colour is a guess: the match confidence of the attention.

The source-reference attention at H/8 (`stattn1`) gives every source position weights
p_1..p_S over the S reference positions, and it takes its colour information from
them. The colours it draws on then have a spread, Var_p(ab) = E_p[|ab|^2] - |E_p[ab]|^2
(a*b* of the reference pixels under each key position, in CIE Lab): 0 when the position
matched one reference region closely (or regions that all have one colour), large
when it mixes unlike colours, because nothing in the references resembles it. The
confidence is 1 / (1 + Var_p / AGREEMENT_SCALE^2) in [0, 1]: 1 = matched a reference
closely, 0 = no reference resembles this.

Chosen by measurement (README, "Where colour is a guess"): with the bundled model the
attention is nearly uniform, so its own shape (largest weight, entropy) correlated
*positively* with the per-frame colour error on the evaluation clips, while the spread
of the attended colours correlated negatively.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from kornia.color import rgb_to_lab

#: Standard deviation of the attended colours (CIE a*b* units) that gives confidence 0.5:
#: two colours 40 apart (red against orange) weighed alike.
AGREEMENT_SCALE = 20.0
#: Query rows per block of the explicit pass: keeps the logits block near 64 MiB.
_BLOCK_ELEMENTS = 16 << 20


@torch.no_grad()
def reference_colours(refs: torch.Tensor, factor: int = 8) -> torch.Tensor:
    """RGB references [B, N, 3, Hr, Wr] in [0, 1] -> colour moments [B, N*Hr/f*Wr/f, 3]
    (float32): each key position's mean a*/100, b*/100 and (a*^2 + b*^2)/100^2 over its
    f x f pixels, in the order of the attention's keys (reference, row, column)."""
    b, n = refs.shape[:2]
    lab = rgb_to_lab(refs.flatten(0, 1).float().clamp(0, 1))
    ab = lab[:, 1:] / 100.0
    moments = torch.cat([ab, (ab * ab).sum(1, keepdim=True)], 1)
    pooled = F.avg_pool2d(moments, factor)                        # [B*N, 3, h, w]
    return pooled.unflatten(0, (b, n)).permute(0, 1, 3, 4, 2).reshape(b, -1, 3).contiguous()


def agreement(moments: torch.Tensor) -> torch.Tensor:
    """Attended colour moments [..., 3] (E_p of the `reference_colours`) -> confidence [...]."""
    m = moments.float()
    var = (m[..., 2] - m[..., 0] * m[..., 0] - m[..., 1] * m[..., 1]).clamp_(min=0.0)
    return 1.0 / (1.0 + var * (100.0 / AGREEMENT_SCALE) ** 2)


def attention_confidence(q: torch.Tensor, k: torch.Tensor, colours: torch.Tensor) -> torch.Tensor:
    """The confidence [B, L] of softmax(q k^T) for q [B, L, E], k [B, S, E] and colours
    [B, S, 3], on any device, in float32 and a block of query rows at a time (where the
    fused attention kernels do not give the weights)."""
    rows = min(q.shape[1], max(1, _BLOCK_ELEMENTS // max(1, k.shape[1])))
    kt = k.float().transpose(1, 2)
    colours = colours.float()
    out = []
    for i in range(0, q.shape[1], rows):
        p = torch.bmm(q[:, i:i + rows].float(), kt).softmax(-1)
        out.append(agreement(torch.bmm(p, colours)))
    return torch.cat(out, 1)
