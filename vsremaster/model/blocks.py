"""Building blocks of the DeepRemaster networks.

Attribute names (`conv3d`, `bn`, `query_conv`, ...) follow the released checkpoint's
keys, so its state_dicts load without renaming.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import gemm, winograd
from .confidence import attention_confidence, confidence_of

SPATIAL = (1, 3, 3)


def scaled(width: float):
    """Channel-count scaler: `c(64)` is 64*width rounded to a multiple of 8 (at least 8)."""
    def c(n: int) -> int:
        return n if width == 1.0 else max(8, int(round(n * width / 8)) * 8)
    return c


TEMPORAL = (3, 3, 3)


def spatial(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A block with a 1xKxK kernel applied to frames x [N, C, H, W] as 2-D operations
    (by Winograd when `winograd.attach` gave the block transformed weights and the
    frames suit them)."""
    conv, u = block.conv3d, getattr(block, "winograd", None)
    if u is not None and winograd.spatial_fits(x, u):
        y = winograd.conv2d(x, u, conv.bias)
    else:
        y = F.conv2d(x, conv.weight[:, :, 0], conv.bias, conv.stride[1:], conv.padding[1:])
    return F.elu(batch_norm(block.bn, y))


def elu(y: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """F.elu, written into `out` when given (y itself included): no extra pass to copy a
    call's result into a stream's output."""
    return F.elu(y) if out is None else torch._C._nn.elu(y, out=out)


def batch_norm(bn: nn.Module, y: torch.Tensor) -> torch.Tensor:
    """An eval-mode BatchNorm3d (or the Identity left by folding) on tensors of any rank."""
    if isinstance(bn, nn.Identity):
        return y
    return F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)


class ConvBlock(nn.Module):
    """Conv3d -> BatchNorm3d -> ELU. Default: spatial 1x3x3 kernel, padding 0x1x1."""

    def __init__(self, cin: int, cout: int, kernel=SPATIAL, stride=(1, 1, 1), padding=None):
        super().__init__()
        if padding is None:
            padding = tuple(k // 2 for k in kernel)
        self.conv3d = nn.Conv3d(cin, cout, kernel, stride=stride, padding=padding)
        self.bn = nn.BatchNorm3d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.elu(self.bn(self.conv3d(x)))


def temporal(cin: int, cout: int, **kw) -> ConvBlock:
    """A 3x3x3 conv block (padding 1 on T, H and W)."""
    return ConvBlock(cin, cout, kernel=TEMPORAL, **kw)


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """x2 spatial upsampling of [B, C, T, H, W] (trilinear x(1, 2, 2), as released) or of
    frames [N, C, H, W] (bilinear, the same values)."""
    if x.dim() == 4:
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    return F.interpolate(x, scale_factor=(1, 2, 2), mode="trilinear", align_corners=False)


class UpBlock(nn.Module):
    """Upsample x(1, 2, 2), then a 3x3x3 conv block (its conv and BN sit directly here)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv3d = nn.Conv3d(cin, cout, TEMPORAL, padding=(1, 1, 1))
        self.bn = nn.BatchNorm3d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.elu(self.bn(self.conv3d(upsample2x(x))))


class UpConcatBlock(nn.Module):
    """Upsample the first input, concatenate the skip input, then a 3x3x3 conv block."""

    def __init__(self, cin_up: int, cin_skip: int, cout: int):
        super().__init__()
        self.conv3d = temporal(cin_up + cin_skip, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv3d(torch.cat([upsample2x(x), skip], dim=1))


class Attention(nn.Module):
    """Source-reference attention; self attention when source is reference.

    q = query_conv(source) [C/8], k = key_conv(reference) [C/8],
    v = value_conv(reference) [C]; logits q.k are *not* scaled by 1/sqrt(d) (as released);
    result = gamma * attend(q, k, v) + source.
    `matmul_softmax = True` switches to the authors' explicit matmul-softmax (memory
    grows with L*S), for baselines.
    """

    matmul_softmax = False

    def __init__(self, cin_src: int, cin_ref: int):
        super().__init__()
        self.query_conv = nn.Conv3d(cin_src, cin_src // 8, 1)
        self.key_conv = nn.Conv3d(cin_ref, cin_ref // 8, 1)
        self.value_conv = nn.Conv3d(cin_ref, cin_ref, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def keys_values(self, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Project a reference [B, C, T, H, W] to keys [B, S, C/8] and values [B, S, C]."""
        # contiguous [B, S, E]: fused attention kernels need unit stride in the last dim
        k = self.key_conv(reference).flatten(2).transpose(1, 2).contiguous()
        v = self.value_conv(reference).flatten(2).transpose(1, 2).contiguous()
        return k, v

    def attend(self, source: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Attend from source [B, C, T, H, W] to projected keys/values; adds the residual."""
        b, c, t, h, w = source.shape
        q = self.query_conv(source).flatten(2).transpose(1, 2).contiguous()
        out = self.weigh(q, k, v).transpose(1, 2).reshape(b, c, t, h, w)
        return self.gamma * out + source

    def weigh(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, match=None):
        """softmax(q k^T) v for q [B, L, C/8], k [B, S, C/8], v [B, S, C] -> [B, L, C].
        Given `match` = (the keys' moments [B, S, 4], the queries' lightness [B, L])
        (model.confidence), also each query's match confidence [B, L]: (out, confidence).
        The output has the same bits either way."""
        k, v = k.to(q.dtype), v.to(q.dtype)
        if self.matmul_softmax:
            out = torch.bmm(torch.softmax(torch.bmm(q, k.transpose(1, 2)), -1), v)
        elif q.device.type == "cpu":
            return _blocked_attention(q, k, v, match)
        else:
            out = _fused_attention(q, k, v)
        # the fused kernels hide the weights: one more pass over the logits
        return out if match is None else (out, attention_confidence(q, k, *match))

    def project(self, conv: nn.Conv3d, x: torch.Tensor) -> torch.Tensor:
        """A 1x1x1 projection of frames x [T, C, H, W] -> [T, H*W, C'] (contiguous)."""
        y = F.conv2d(x, conv.weight[:, :, 0], conv.bias)
        return y.flatten(2).transpose(1, 2).contiguous()

    def attend_frame(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, match=None):
        """One frame x [1, C, H, W] attending keys/values [1, S, *]; adds the residual.
        Given `match` (see `weigh`): (that, the match confidence [1, 1, H, W]).

        One frame per call: the kernels then always see the same shapes, so a frame's
        result has the same bits whichever frames were computed with it.
        """
        out = self.weigh(self.project(self.query_conv, x), k, v, match)
        if match is None:
            return self.gamma * out.transpose(1, 2).reshape(x.shape) + x
        out, conf = out
        return (self.gamma * out.transpose(1, 2).reshape(x.shape) + x,
                conf.reshape(1, 1, *x.shape[2:]))

    def forward(self, source: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        return self.attend(source, *self.keys_values(reference))


#: Query rows per block on the CPU: keeps the logits block near 64 MiB whatever L is.
_BLOCK_ELEMENTS = 16 << 20
#: Split v into this many heads sharing q and k on CUDA (0: one head): flash kernels
#: need head sizes <= 256, and two heads of 256 were the fastest split on an H100
#: (benchmarks/attention_backends.py; RESULTS.md "Figures moved out of the code's
#: comments").
CUDA_VALUE_HEADS = 2


def _blocked_attention(q, k, v, match=None):
    """softmax(q k^T) v, a block of query rows at a time: memory linear in L. Given
    `match` (see `Attention.weigh`): (that, the match confidence [B, L]) from the same
    weights.

    On the CPU this beats scaled_dot_product_attention, which materialises L x S. The
    logits block is exponentiated in place and normalised after the product with v (S
    times fewer divisions). Float32 products go to oneDNN (model.gemm; RESULTS.md "Float32
    products by oneDNN"); elsewhere the logits block is one reused buffer.
    """
    rows = min(q.shape[1], max(1, _BLOCK_ELEMENTS // max(1, k.shape[1])))
    if torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v)):
        # training: autograd cannot see through the in-place buffer below
        kt = k.transpose(1, 2)
        out = torch.cat([torch.bmm(torch.softmax(torch.bmm(q[:, i:i + rows], kt), -1), v)
                         for i in range(0, q.shape[1], rows)], 1)
        return out if match is None else (out, attention_confidence(q, k, *match))
    dnn = gemm.onednn(q, k, v)
    buf = None if dnn else torch.empty(rows, k.shape[1], dtype=q.dtype, device=q.device)
    out = torch.empty(q.shape[0], q.shape[1], v.shape[2], dtype=v.dtype, device=v.device)
    keys, moments = None, None
    if match is not None:
        keys = match[0].to(q.dtype)
        moments = torch.empty(q.shape[0], q.shape[1], keys.shape[2], dtype=torch.float32,
                              device=q.device)
    for b in range(q.shape[0]):
        for i in range(0, q.shape[1], rows):
            n = min(rows, q.shape[1] - i)
            # oneDNN's products return fresh tensors (see model.gemm); torch's fill buf
            logits = (gemm.linear(q[b, i:i + n], k[b]) if dnn
                      else torch.mm(q[b, i:i + n], k[b].t(), out=buf[:n]))
            logits.sub_(logits.amax(-1, keepdim=True)).exp_()
            total = logits.sum(-1, keepdim=True)
            if keys is not None:
                # the attended pixels' moments: four more columns on the same weights
                moments[b, i:i + n] = torch.mm(logits, keys[b]).div_(total)
            if dnn:
                torch.div(gemm.linear(logits, v[b].t()), total, out=out[b, i:i + n])
            else:
                torch.mm(logits, v[b], out=out[b, i:i + n]).div_(total)
    return out if match is None else (out, confidence_of(moments, match[1]))


def _fused_attention(q, k, v):
    """scaled_dot_product_attention with scale 1.0 (as released), optionally in heads."""
    heads = CUDA_VALUE_HEADS
    if not heads:
        return F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None], scale=1.0)[:, 0]
    b, s, c = v.shape
    d = c // heads
    q4 = F.pad(q[:, None].expand(b, heads, -1, -1), (0, d - q.shape[-1]))
    k4 = F.pad(k[:, None].expand(b, heads, -1, -1), (0, d - k.shape[-1]))
    out = F.scaled_dot_product_attention(q4, k4, v.view(b, s, heads, d).transpose(1, 2),
                                         scale=1.0)
    return out.transpose(1, 2).reshape(b, -1, c)


def attention_reference(module: Attention, source: torch.Tensor,
                        reference: torch.Tensor) -> torch.Tensor:
    """Matmul-softmax attention exactly as the authors' code computes it.

    Memory grows with L*S; used as the baseline and as a test oracle for `Attention`.
    """
    b, c, t, h, w = source.shape
    q = module.query_conv(source).flatten(2).transpose(1, 2)      # [B, L, C/8]
    k = module.key_conv(reference).flatten(2)                     # [B, C/8, S]
    v = module.value_conv(reference).flatten(2)                   # [B, C, S]
    attn = torch.softmax(torch.bmm(q, k), dim=-1)                 # [B, L, S]
    out = torch.bmm(v, attn.transpose(1, 2)).reshape(b, c, t, h, w)
    return module.gamma * out + source
