"""The fixed chunk grid: which frames each piece of work covers.

Every scene is cut into cells of `size` frames starting at the scene's first frame (a
tail of less than half a cell joins the last full cell), so
the work that produces frame n is the same whatever order frames are requested in.
Context outside a scene is edge replication of the scene's first/last frame.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cell:
    """Frames [start, stop), cell `index` of the scene [scene_start, scene_stop)."""

    index: int
    start: int
    stop: int
    scene_start: int
    scene_stop: int

    @property
    def frames(self) -> range:
        return range(self.start, self.stop)

    def context(self, radius: int) -> list[int]:
        """Frame numbers of the cell with `radius` frames of context, edge-replicated."""
        lo, hi = self.scene_start, self.scene_stop - 1
        return [min(max(i, lo), hi) for i in range(self.start - radius, self.stop + radius)]


class Grid:
    """Cells of `size` frames over the scenes that `bounds(n) -> (start, stop)` gives."""

    def __init__(self, bounds, num_frames: int, size: int):
        self.bounds, self.num_frames, self.size = bounds, num_frames, size

    def cell_of(self, n: int) -> Cell:
        if not 0 <= n < self.num_frames:
            raise IndexError(n)
        s0, s1 = self.bounds(n)
        # a tail shorter than half a cell joins the cell before it: a short cell would
        # cost as much planning and warm-up as a whole one for a few frames
        length = s1 - s0
        count = max(1, length // self.size + (length % self.size >= (self.size + 1) // 2))
        index = min((n - s0) // self.size, count - 1)
        start = s0 + index * self.size
        return Cell(index, start, s1 if index == count - 1 else start + self.size, s0, s1)

