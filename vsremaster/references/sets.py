"""Each scene's reference set and canvas, chosen the first time the scene is needed."""
from __future__ import annotations

import numpy as np

from ..engine.cache import LRU
from .canvas import place_on_canvas
from .selection import choose_set

#: Scenes (and canvases) remembered; a scene asked again after that is chosen again, the same.
KEEP = 64


class SceneReferences:
    """(scene start, scene stop) -> (reference ids, canvas [N, 3, H, W] or None)."""

    def __init__(self, bank, scenes, max_refs: int, ref_mindim: int):
        self.bank, self.scenes, self.max_refs, self.ref_mindim = bank, scenes, max_refs, ref_mindim
        self._sets = LRU(KEEP)
        self._canvases = LRU(8)

    def __call__(self, start: int, stop: int) -> tuple[tuple[int, ...], np.ndarray | None]:
        key = self._sets.get(start)
        if key is None:
            key = choose_set(self.bank, self.scenes, start, stop, self.max_refs)
            self._sets.put(start, key)
        if not key:
            return key, None
        canvas = self._canvases.get(key)
        if canvas is None:
            canvas = place_on_canvas([self.bank.images[i] for i in key], self.ref_mindim)
            self._canvases.put(key, canvas)
        return key, canvas
