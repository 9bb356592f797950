"""Kx3x3 convolutions (stride 1, zero padding 1 in space, none in time; K = 1 or 3) by
Winograd's F(2x2, 3x3) in space: per 2x2 output tile 16 multiplications per input
channel and time tap instead of 36, as 16 GEMMs (Lavin & Gray, 2016).

Frames are channels last, x [T, H, W, C] (H and W even). The result equals the
convolution's up to float rounding (about 1e-6 relative in float32). A call's GEMMs have
one shape for a given number of output frames, so a frame's bits do not depend on its
place in a call or on the other frames (tests/test_winograd.py, test_streaming.py).

The transformed inputs are several times the frames' size; they live in reused scratch
buffers (`Scratch`): fresh allocations of tens of MB per call cost page faults that ate
the GEMMs' gain (measured, RESULTS.md). A call needing more than `SCRATCH_BYTES` goes in
bands of tile rows, so memory stays bounded at any frame size.
"""
from __future__ import annotations

import math
import threading
from contextlib import contextmanager

import torch
from torch import nn

from . import gemm

# F(2, 3): y = A^T [(G g G^T) * (B^T d B)] A for a 4x4 input tile d and a 3x3 kernel g
_G = ((1.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0.0, 0.0, 1.0))
#: Most scratch bytes one call may use: larger frames go in bands of tile rows; a layer
#: whose one row of tiles needs more takes the direct convolution.
SCRATCH_BYTES = 256 << 20
#: Fewest input and output channels of a 1x3x3 layer for Winograd to pay, and fewest
#: 2x2 tiles per frame: below either the direct conv2d was faster (RESULTS.md
#: "Winograd on the CPU in float32").
SPATIAL_MIN_CHANNELS = 256
SPATIAL_MIN_TILES = 100


def weight_transform(w: torch.Tensor) -> torch.Tensor:
    """A Conv3d weight [Co, Ci, K, 3, 3] -> G g G^T: [16 (tile positions), Co, K (time
    taps), Ci], computed in float64 and rounded once to w's dtype. Per tile position a
    [Co, K * Ci] matrix: one product covers every tap (see `convolve`)."""
    g = torch.tensor(_G, dtype=torch.float64, device=w.device)
    u = torch.einsum("ai,oktij,bj->abotk", g, w.double(), g)
    return u.reshape(16, w.shape[0], w.shape[2], w.shape[1]).to(w.dtype).contiguous()


def cached_weight(conv: nn.Conv3d) -> torch.Tensor:
    """weight_transform of conv's weight, kept on the module: every stream built over a
    shared network (each clip, each script reload) then shares one copy."""
    w = conv.weight
    key = (w.data_ptr(), w.dtype, w.device, w._version)
    cached = conv.__dict__.get("_winograd")
    if cached is None or cached[0] != key:
        cached = conv.__dict__["_winograd"] = (key, weight_transform(w.detach()))
    return cached[1]


def scratch_bytes(frames: int, h: int, w: int, cin: int, cout: int, taps: int,
                  itemsize: int) -> int:
    """Memory a call of `frames` output frames of h x w needs (see `convolve`: scratch
    for the padded and transformed inputs, and one output frame's products)."""
    t = frames + taps - 1
    return itemsize * (t * (h + 2) * (w + 2) * cin + 4 * t * h * w * cin + 4 * h * w * cout)


def band_rows(frames: int, h: int, w: int, cin: int, cout: int, taps: int,
              itemsize: int) -> int:
    """Rows of 2x2 tiles a call computes at once: all of a frame's, or as many as keep
    the scratch within SCRATCH_BYTES (0: not even one row fits). A function of the
    shapes only, so every frame of a clip is cut into the same bands."""
    one = scratch_bytes(frames, 2, w, cin, cout, taps, itemsize)
    per_row = scratch_bytes(frames, 4, w, cin, cout, taps, itemsize) - one  # affine in h
    if one > SCRATCH_BYTES:
        return 0
    return min(h // 2, 1 + (SCRATCH_BYTES - one) // per_row)


def fits(frames: int, h: int, w: int, cin: int, cout: int, taps: int, itemsize: int) -> bool:
    """Whether such a call can run here: even sizes, one row of tiles within
    SCRATCH_BYTES (larger frames go in bands of rows)."""
    return (h % 2 == 0 and w % 2 == 0
            and band_rows(frames, 2, w, cin, cout, taps, itemsize) == 1)


def suits(conv: nn.Conv3d, min_channels: int) -> bool:
    """Whether a Kx3x3 convolution is one this module computes (stride 1, padding 1 in
    space, no groups or dilation) with at least `min_channels` in and out."""
    return (tuple(conv.kernel_size[1:]) == (3, 3) and tuple(conv.stride) == (1, 1, 1)
            and tuple(conv.padding[1:]) == (1, 1) and conv.groups == 1
            and tuple(conv.dilation) == (1, 1, 1)
            and min(conv.in_channels, conv.out_channels) >= min_channels)


def attach(net: nn.Module) -> nn.Module:
    """Give net's wide 1x3x3 conv blocks (stride 1, padding 1) their transformed weights
    as `winograd`, which `blocks.spatial` then uses. Call after the last cast of net."""
    for m in net.modules():
        conv = getattr(m, "conv3d", None)
        if (isinstance(conv, nn.Conv3d) and conv.kernel_size[0] == 1 and conv.padding[0] == 0
                and suits(conv, SPATIAL_MIN_CHANNELS)):
            m.winograd = cached_weight(conv)
    return net


def spatial_fits(x: torch.Tensor, u: torch.Tensor) -> bool:
    """Whether conv2d of frames x [N, C, H, W] with u pays and fits (see SPATIAL_*)."""
    h, w = x.shape[-2:]
    return (h * w >= 4 * SPATIAL_MIN_TILES
            and fits(1, h, w, u.shape[3], u.shape[1], 1, x.element_size()))


class Scratch:
    """Named buffers reused across calls (contents undefined), one set per concurrent
    user: `with SCRATCH.use() as s:` then `s.get(name, shape, like)`."""

    def __init__(self):
        self._free: list[dict] = []
        self._lock = threading.Lock()

    @contextmanager
    def use(self):
        with self._lock:
            buffers = self._free.pop() if self._free else {}
        try:
            yield _Buffers(buffers)
        finally:
            with self._lock:
                self._free.append(buffers)

    def clear(self) -> None:
        """Free the idle buffers (the networks' owners call this when they are freed)."""
        with self._lock:
            self._free.clear()


class _Buffers:
    def __init__(self, store: dict):
        self.store = store

    def get(self, name: str, shape: tuple, like: torch.Tensor) -> torch.Tensor:
        n = math.prod(shape)
        # inference tensors cannot be written outside inference mode, nor others inside
        key = (name, like.dtype, like.device, torch.is_inference_mode_enabled())
        buf = self.store.get(key)
        if buf is None or buf.numel() < n:
            self.store.pop(key, None)       # free the smaller one before allocating
            buf = self.store[key] = torch.empty(n, dtype=like.dtype, device=like.device)
        return buf[:n].view(shape)


SCRATCH = Scratch()


def input_transform(x: torch.Tensor, s: _Buffers, r0: int, r1: int) -> torch.Tensor:
    """Frames [T, H, W, C] -> B^T d B of the 4x4 tiles (stride 2, zero padded by one) of
    tile rows r0..r1: [16, (r1 - r0) * W/2, T, C] (time inside a tile: a tile's K
    consecutive frames are one row of a product's input), in scratch."""
    t, h, w, c = x.shape
    rows = 2 * (r1 - r0)
    xp = s.get("pad", (t, rows + 2, w + 2, c), x)            # rows 2 r0 - 1 .. 2 r1
    top, bottom = max(0, 2 * r0 - 1), min(h, 2 * r1 + 1)
    at = top - (2 * r0 - 1)
    xp[:, :at] = 0
    xp[:, at + bottom - top:] = 0
    xp[:, :, [0, -1]] = 0
    xp[:, at:at + bottom - top, 1:-1] = x[:, top:bottom]
    tiles = s.get("v", (16, rows // 2, w // 2, t, c), x)
    # frame by frame: whole-clip ops writing this layout were slower (cache misses)
    for f in range(t):
        v = tiles[:, :, :, f]
        d = [xp[f, i:i + rows:2] for i in range(4)]
        rws = (d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3])
        for a, r in enumerate(rws):
            e = [r[:, j:j + w:2] for j in range(4)]
            torch.sub(e[0], e[2], out=v[4 * a])
            torch.add(e[1], e[2], out=v[4 * a + 1])
            torch.sub(e[2], e[1], out=v[4 * a + 2])
            torch.sub(e[1], e[3], out=v[4 * a + 3])
    return tiles.flatten(1, 2)


def output_transform(m: list, h: int, w: int, bias: torch.Tensor | None,
                     out: torch.Tensor) -> torch.Tensor:
    """Tile products m, 16 tensors [N, H/2 * W/2, Co] (tile positions row by row) ->
    A^T m A (+ bias) into out [N, H, W, Co]."""
    m = [p.unflatten(1, (h // 2, w // 2)) for p in m]
    rows = (tuple(m[c] + m[4 + c] + m[8 + c] for c in range(4)),
            tuple(m[4 + c] - m[8 + c] - m[12 + c] for c in range(4)))
    for i, r in enumerate(rows):
        torch.add(r[0], r[1], out=out[:, i::2, 0::2]).add_(r[2])
        torch.sub(r[1], r[2], out=out[:, i::2, 1::2]).sub_(r[3])
    if bias is not None:
        out += bias
    return out


def convolve(x: torch.Tensor, u: torch.Tensor, bias: torch.Tensor | None,
             out: torch.Tensor) -> torch.Tensor:
    """The n = T - K + 1 output frames of frames x [T, H, W, Ci] (any strides) with
    weights u [16, Co, K, Ci] (see weight_transform), into out [n, H, W, Co]; in bands
    of tile rows (band_rows) when a whole frame would need too much scratch.

    Per tile position and output frame one product [tiles, K * Ci] x [K * Ci, Co]
    (model.gemm: oneDNN's in float32 on a CPU): all taps in one pass."""
    t, h, w, ci = x.shape
    _, co, k, _ = u.shape
    n = t - k + 1
    rows = band_rows(n, h, w, ci, co, k, x.element_size())
    if not rows:
        raise ValueError("a row of Winograd tiles needs more than SCRATCH_BYTES")
    weights = u.flatten(2)                                     # [16, Co, K * Ci]
    with SCRATCH.use() as s:
        for r0 in range(0, h // 2, rows):
            r1 = min(h // 2, r0 + rows)
            v = input_transform(x, s, r0, r1)                  # [16, P, T, Ci]
            for j in range(n):
                m = [gemm.linear(v[a, :, j:j + k].flatten(1), weights[a])[None]
                     for a in range(16)]
                output_transform(m, 2 * (r1 - r0), w, bias, out[j:j + 1, 2 * r0:2 * r1])
    return out


def conv2d(x: torch.Tensor, u: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """A 3x3 convolution (stride 1, padding 1) of frames x [N, C, H, W] (any layout) with
    weights u [16, Co, 1, Ci], one frame per call -> [N, Co, H, W] (channels last)."""
    n, _, h, w = x.shape
    y = x.new_empty(n, h, w, u.shape[1])
    xh = x.permute(0, 2, 3, 1)
    for i in range(n):
        convolve(xh[i:i + 1], u, bias, y[i:i + 1])
    return y.permute(0, 3, 1, 2)
