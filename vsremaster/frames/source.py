"""VapourSynth frames in: the clips the engine and the finishing read, and frame -> array."""
from __future__ import annotations

import numpy as np
import vapoursynth as vs

from .formats import PropError, check_color_props


def processing_size(width: int, height: int, mindim: int) -> tuple[int, int]:
    """(width, height) with the short edge at `mindim`, both rounded down to multiples of 16."""
    scale = mindim / min(width, height)
    return (max(16, int(width * scale) // 16 * 16), max(16, int(height * scale) // 16 * 16))


def checked(clip: vs.VideoNode) -> vs.VideoNode:
    """The clip, each frame's colour props checked before anything reads the frame: a
    prop the filter or the resizer cannot use is `vs.Error("Remaster: clip frame N: ...")`
    instead of a resizer's message (the check costs a dict lookup per frame)."""
    family = clip.format.color_family

    def check(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        try:
            check_color_props(f.props, family)
        except PropError as e:
            raise vs.Error(f"Remaster: clip frame {n}: {e}") from None
        return f
    return vs.core.std.ModifyFrame(clip, clip, check)


def luma(clip: vs.VideoNode) -> vs.VideoNode:
    """The clip's luma plane (GRAY/YUV) in its own sample type."""
    if clip.format.color_family == vs.GRAY:
        return clip
    return vs.core.std.ShufflePlanes(clip, 0, vs.GRAY)


def model_input(clip: vs.VideoNode, width: int, height: int) -> vs.VideoNode:
    """What the networks read, at model size: GRAYS luma (GRAY/YUV input; integer luma
    expanded to [0, 1] from each frame's range, limited when unset) or RGBS (RGB)."""
    if clip.format.color_family == vs.RGB:
        return vs.core.resize.Bicubic(clip, width, height, format=vs.RGBS)
    return vs.core.resize.Bicubic(luma(clip), width, height, format=vs.GRAYS)


def full_size_l(clip: vs.VideoNode) -> vs.VideoNode:
    """GRAYS luma at full size in [0, 1] (the input L the finishing adds the change to)."""
    return vs.core.resize.Point(luma(clip), format=vs.GRAYS)


def scan_luma(clip: vs.VideoNode) -> vs.VideoNode:
    """A GRAYS luma clip for scene analysis (any size)."""
    if clip.format.color_family == vs.RGB:
        return vs.core.resize.Bilinear(clip, format=vs.GRAYS, matrix_s="709")
    return vs.core.resize.Point(luma(clip), format=vs.GRAYS)


def frame_array(f: vs.VideoFrame) -> np.ndarray:
    """A float frame as [H, W] (one plane) or [3, H, W] (a copy).

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
