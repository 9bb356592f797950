"""The authors' way of running DeepRemaster, reimplemented for the benchmark.

What their inference script does, minus the disk I/O:
- consecutive blocks of `BLOCK` (5) frames, no overlap: a frame sees only the frames
  of its own block (those at block edges get almost no temporal context);
- NetworkR, then NetworkC called with the reference *images* for every block, so both
  reference encoders run again for every block;
- the authors' explicit matmul-softmax attention (memory grows with L*S);
- float32 throughout (`bench --baseline-precision ours` runs it in ours' precision);
- colour conversion per frame on the CPU with OpenCV: the decoded BGR frame to grey
  (used directly as L, as their script does for black-and-white input), and the output
  L + ab back to BGR. (Their script converts with scikit-image, which is slower than
  `cv2.cvtColor`: this baseline is, if anything, generous to the authors.)
Frames are uploaded per block and results downloaded per frame, as in their script.
The frames must already be at model size (both sides multiples of 16).

`measure` times it for the benchmark; `attention_memory` is its attention memory,
computed analytically (for the sweep, at sizes where it does not fit).
"""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np
import torch

from ..model import Attention, NetworkC, NetworkR
from .config import DTYPE_NAMES, Config
from .inputs import Inputs, warmup_input
from .measure import Keeper, MethodResult, measure_networks

BLOCK = 5

#: sink(i, l [H, W], ab [2, H, W] (model units, in [0, 1]), bgr [H, W, 3] in [0, 1])
Sink = Callable[[int, np.ndarray, np.ndarray, np.ndarray], None]


def blocks(num_frames: int, block: int = BLOCK) -> list[range]:
    """The authors' consecutive, non-overlapping blocks (the last one may be shorter)."""
    return [range(s, min(s + block, num_frames)) for s in range(0, num_frames, block)]


def grey_to_l(frame: np.ndarray) -> np.ndarray:
    """One grey frame [H, W] in [0, 1] -> model L, the authors' way: the decoder's BGR
    frame converted to grey with OpenCV and used directly as L."""
    bgr = cv2.merge([frame, frame, frame])
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)


def lab_to_bgr(l: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """Model L [H, W] and model ab [2, H, W] -> BGR [H, W, 3] in [0, 1] (OpenCV, float32)."""
    lab = np.empty(l.shape + (3,), np.float32)
    lab[..., 0] = l * 100.0
    lab[..., 1:] = np.clip(ab.transpose(1, 2, 0) * 255.0 - 128.0, -100.0, 100.0)
    return np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2BGR), 0.0, 1.0)


def run(model_r: NetworkR, model_c: NetworkC, frames: np.ndarray, refs: np.ndarray | None,
        *, device: torch.device, sink: Sink | None = None, block: int = BLOCK,
        dtype: torch.dtype = torch.float32) -> dict:
    """Remaster grey frames [N, H, W] (float32, [0, 1], model size) the authors' way.

    refs: the reference canvas, float32 RGB [R, 3, Hr, Wr] in [0, 1], or None.
    The models must be in `dtype` (their script: float32) and in eval mode. Returns
    counts of the work done.
    """
    device = torch.device(device)
    previous = Attention.matmul_softmax
    Attention.matmul_softmax = True
    counts = {"blocks": 0, "ref_encodings": 0}
    try:
        # The reference images go to the device once; NetworkC encodes them per call.
        ref_t = None if refs is None else torch.from_numpy(np.ascontiguousarray(refs))[None].to(device, dtype)
        with torch.no_grad():
            for blk in blocks(len(frames), block):
                ls = np.stack([grey_to_l(frames[i]) for i in blk])
                x = torch.from_numpy(ls)[None, None].to(device, dtype)     # [1, 1, T, H, W]
                out_l = model_r(x)
                out_ab = model_c(out_l, ref_t)
                counts["blocks"] += 1
                counts["ref_encodings"] += ref_t is not None
                for k, i in enumerate(blk):
                    l = out_l[0, 0, k].float().cpu().numpy()
                    ab = out_ab[0, :, k].float().cpu().numpy()
                    bgr = lab_to_bgr(l, ab)
                    if sink is not None:
                        sink(i, l, ab, bgr)
    finally:
        Attention.matmul_softmax = previous
    return counts


def measure(cfg: Config, inputs: Inputs, small: Inputs, weights, keep: set[int],
            frames: int | None = None, dtype: torch.dtype = torch.float32) -> MethodResult:
    """The baseline timed on `inputs` (its first `frames` frames if given) in `dtype`."""
    grey = inputs.frames if frames is None else inputs.frames[:frames]
    return measure_networks(
        cfg, MethodResult("baseline", precision=DTYPE_NAMES[dtype]), dtype, weights,
        warmup_input(cfg, inputs, small), Keeper(keep, bgr=True),
        lambda r, c, w: run(r, c, w.frames[:BLOCK], w.canvas, device=cfg.device, dtype=dtype),
        lambda r, c, sink: run(r, c, grey, inputs.canvas, device=cfg.device, sink=sink,
                               dtype=dtype))


def attention_memory(width: int, height: int, refs: int, ref_h: int, ref_w: int,
                     block: int = BLOCK) -> dict:
    """The baseline's L x S attention matrices for one block, analytically (float32).

    stattn1 at 1/8 (frames x refs), stattn2 at 1/16 (frames x refs), selfattn1 at 1/16
    and selfattn2 at 1/8 (frames x frames). The authors' matmul-softmax keeps the logits
    and the softmax output alive together: about twice the largest matrix at the peak.
    """
    l8 = block * (height // 8) * (width // 8)
    l16 = block * (height // 16) * (width // 16)
    s8 = refs * (ref_h // 8) * (ref_w // 8)
    s16 = refs * (ref_h // 16) * (ref_w // 16)
    sizes = {"stattn1": l8 * s8, "stattn2": l16 * s16, "selfattn1": l16 * l16, "selfattn2": l8 * l8}
    largest = max(sizes.values()) * 4
    return {"elements": sizes, "largest_matrix_bytes": largest, "peak_bytes": 2 * largest}
