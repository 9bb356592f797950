"""VapourSynth frames in: the float working clips the engine reads, and frame -> array."""
from __future__ import annotations

import numpy as np
import vapoursynth as vs


def processing_size(width: int, height: int, mindim: int) -> tuple[int, int]:
    """(width, height) with the short edge at `mindim`, both rounded down to multiples of 16."""
    scale = mindim / min(width, height)
    return (max(16, int(width * scale) // 16 * 16), max(16, int(height * scale) // 16 * 16))


def working_clip(clip: vs.VideoNode) -> vs.VideoNode:
    """Full-size float clip the model reads: luma (GRAYS) for GRAY/YUV, RGBS for RGB.

    Integer luma is expanded from its range (`_Range`, or the deprecated `_ColorRange`;
    limited by default) to [0, 1].
    """
    if clip.format.color_family == vs.RGB:
        return vs.core.resize.Point(clip, format=vs.RGBS)
    luma = clip if clip.format.color_family == vs.GRAY else vs.core.std.ShufflePlanes(clip, 0, vs.GRAY)
    return vs.core.resize.Point(luma, format=vs.GRAYS)


def scan_luma(work: vs.VideoNode) -> vs.VideoNode:
    """A GRAYS luma clip of the working clip, for scene analysis."""
    if work.format.color_family == vs.RGB:
        return vs.core.resize.Bilinear(work, format=vs.GRAYS, matrix_s="709")
    return work


def frame_array(f: vs.VideoFrame) -> np.ndarray:
    """A float frame as [H, W] (one plane) or [3, H, W].

    NaN reads as 0, +inf as 1 and -inf as 0, so damaged float frames render (documented).
    """
    if f.format.num_planes == 1:
        data = np.array(f[0], copy=True)
    else:
        data = np.stack([np.asarray(f[p]) for p in range(f.format.num_planes)])
    return np.nan_to_num(data, copy=False, nan=0.0, posinf=1.0, neginf=0.0)


def frame_at(clip: vs.VideoNode, i: int, n: int) -> vs.VideoNode:
    """A clip whose frame n is frame i of `clip` (so a request for n fetches i)."""
    if i >= n:
        return clip[i - n:]
    return clip[0] * (n - i) + clip
