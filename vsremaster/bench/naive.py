"""Full temporal context the naive way: a centred 15-frame window per output frame.

For every output frame n, frames n-7 .. n+7 (edge-replicated at the ends of the clip)
go through NetworkR and then NetworkC, and only the middle frame is kept, so every
frame is computed about 15 times over. This is what giving each frame the model's full
15-frame context costs without our engine.

Choice: the references are encoded *once* (not per window). Re-encoding them per window
would add a fixed cost per output frame (the authors re-encode per block); leaving it
out makes this figure the cost of the window alone, and the naive method as fast as it
can be without sharing work between windows. Attention is the library's default
(`scaled_dot_product_attention`), the precision that of `ours`, and colour conversion
runs on the device with the project's Lab code, like ours. `measure` times it for the
benchmark.
"""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import torch

from ..color.lab import model_to_rgb
from ..model import NetworkC, NetworkR
from .config import DTYPE_NAMES, Config
from .inputs import Inputs, warmup_input
from .measure import Keeper, MethodResult, measure_networks

WINDOW = 15

#: sink(n, l [H, W], ab [2, H, W] (model units), rgb [3, H, W] in [0, 1])
Sink = Callable[[int, np.ndarray, np.ndarray, np.ndarray], None]


def window(n: int, num_frames: int, size: int = WINDOW) -> list[int]:
    """Frame numbers of the window centred on n, edge-replicated at the clip's ends."""
    half = size // 2
    return [min(max(i, 0), num_frames - 1) for i in range(n - half, n + half + 1)]


def run(model_r: NetworkR, model_c: NetworkC, frames: np.ndarray, refs: np.ndarray | None,
        *, device: torch.device, dtype: torch.dtype = torch.float32,
        sink: Sink | None = None, only: Iterable[int] | None = None) -> dict:
    """Remaster grey frames [N, H, W] (float32, [0, 1], model size) window by window.

    refs: reference canvas float32 RGB [R, 3, Hr, Wr] or None; `only`: the output frames
    to compute (default all; the cost per output frame is the same for every frame).
    The models must already be on `device` in `dtype`, in eval mode.
    """
    device = torch.device(device)
    num = len(frames)
    mid = WINDOW // 2
    counts = {"windows": 0, "ref_encodings": 0}
    with torch.inference_mode():
        enc = None
        if refs is not None:
            enc = model_c.encode_refs(torch.from_numpy(np.ascontiguousarray(refs))[None]
                                      .to(device, dtype))
            counts["ref_encodings"] += 1
        for n in (range(num) if only is None else only):
            x = torch.from_numpy(frames[window(n, num)]).to(device)       # [15, H, W]
            x = x.clamp(0, 1)[None, None].to(dtype)                        # [1, 1, 15, H, W]
            l = model_r(x)
            ab = model_c.decode(model_c.encode_frames(l, enc))
            counts["windows"] += 1
            l_mid, ab_mid = l[0, :, mid].float(), ab[0, :, mid].float()
            rgb = model_to_rgb(l_mid, ab_mid)
            if sink is not None:
                sink(n, l_mid[0].cpu().numpy(), ab_mid.cpu().numpy(), rgb.cpu().numpy())
    return counts


def measure(cfg: Config, inputs: Inputs, small: Inputs, weights, keep: set[int],
            dtype: torch.dtype, only: list[int] | None) -> MethodResult:
    """The naive window timed on `inputs` (output frames `only`, default all) in `dtype`."""
    res = measure_networks(
        cfg, MethodResult("naive", precision=DTYPE_NAMES[dtype]), dtype, weights,
        warmup_input(cfg, inputs, small), Keeper(keep, chw=True),
        lambda r, c, w: run(r, c, w.frames, w.canvas, device=cfg.device, dtype=dtype,
                            only=[len(w.frames) // 2]),
        lambda r, c, sink: run(r, c, inputs.frames, inputs.canvas, device=cfg.device,
                               dtype=dtype, sink=sink, only=only))
    res.info["output_frames_timed"] = res.frames
    return res
