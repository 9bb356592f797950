"""Cutting a film into segments of about K frames that end at scene changes.

A frame's bytes depend only on its scene and the filter's fixed chunk grid, never on
which frames were asked for before, so any cut gives the same output as one render.
Cutting at the filter's own scene changes means no worker decodes or computes context
across a cut that the filter would not cross anyway.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right


def scene_starts(clip, sc_threshold) -> list[int]:
    """Where the filter's scenes start for source `clip` (the one call into its scene logic)."""
    from ..frames.source import scan_luma
    from ..planning.scenes import SceneIndex
    return [a for a, _ in SceneIndex(scan_luma(clip), sc_threshold).all_bounds()]


def plan_segments(num_frames: int, starts, k: int) -> list[tuple[int, int]]:
    """[start, end) ranges covering `num_frames`, each about `k` frames long.

    Each cut is the scene start nearest to k frames after the previous cut, among those
    between k/2 and 3k/2 after it; where a scene runs past that, the cut falls k frames
    in. A remainder of at most 3k/2 frames is the last segment, so every segment is at
    most 3k/2 frames long and all but the last at least k/2.
    """
    if num_frames < 1 or k < 1:
        raise ValueError("num_frames and k must be at least 1")
    cuts = sorted({int(s) for s in starts if 0 < s < num_frames})
    bounds = [0]
    a = 0
    while num_frames - a > k + k // 2:
        target = a + k
        near = cuts[bisect_left(cuts, a + max(1, k // 2)):bisect_right(cuts, a + k + k // 2)]
        a = min(near, key=lambda s: (abs(s - target), s)) if near else target
        bounds.append(a)
    bounds.append(num_frames)
    return list(zip(bounds, bounds[1:]))
