"""The fixed chunk grid: which frames each piece of work covers and which it reads.

Every scene is cut into cells of `size` frames starting at the scene's first frame (a
tail of less than half a cell joins the last full cell), so
the work that produces frame n is the same whatever order frames are requested in.
Context outside a scene is edge replication of the scene's first/last frame.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass


@dataclass(frozen=True)
class Cell:
    """Frames [start, stop) of scene `scene` (which spans [scene_start, scene_stop))."""

    scene: int
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

    def clipped(self, radius: int) -> range:
        """The cell with `radius` frames of context, clipped to the scene (no replication)."""
        return range(max(self.start - radius, self.scene_start),
                     min(self.stop + radius, self.scene_stop))


class Grid:
    """A grid of cells of `size` frames over scenes starting at `scene_starts`."""

    def __init__(self, scene_starts: list[int], num_frames: int, size: int):
        if not scene_starts or scene_starts[0] != 0:
            raise ValueError("scene_starts must begin with 0")
        self.starts = list(scene_starts)
        self.num_frames = num_frames
        self.size = size

    def scene_of(self, n: int) -> int:
        return bisect.bisect_right(self.starts, n) - 1

    def scene_bounds(self, scene: int) -> tuple[int, int]:
        stop = self.starts[scene + 1] if scene + 1 < len(self.starts) else self.num_frames
        return self.starts[scene], stop

    def cell_of(self, n: int) -> Cell:
        if not 0 <= n < self.num_frames:
            raise IndexError(n)
        scene = self.scene_of(n)
        s0, s1 = self.scene_bounds(scene)
        # a tail shorter than half a cell joins the cell before it: a short chunk would
        # cost a whole chunk's context for a few frames
        length = s1 - s0
        count = max(1, length // self.size + (length % self.size >= (self.size + 1) // 2))
        index = min((n - s0) // self.size, count - 1)
        start = s0 + index * self.size
        return Cell(scene, index, start, s1 if index == count - 1 else start + self.size, s0, s1)

    def cells_covering(self, frames) -> list[Cell]:
        """The distinct cells holding the given frame numbers, in frame order."""
        cells: list[Cell] = []
        for n in sorted(set(frames)):
            if not cells or not cells[-1].start <= n < cells[-1].stop:
                cells.append(self.cell_of(n))
        return cells
