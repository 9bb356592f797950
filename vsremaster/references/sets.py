"""Each scene's reference set and canvas, chosen the first time the scene is needed."""
from __future__ import annotations

import numpy as np

from ..lru import LRU
from .canvas import canvas_size, place_on_canvas
from .selection import choose_set
from .sources import RefError

#: Scenes (and canvases) remembered; a scene asked again after that is chosen again, the same.
KEEP = 64
#: Canvases kept: at most this many, and about this many bytes (always the newest).
KEEP_CANVASES = 8
CANVAS_BYTES = 512 * 1000 * 1000


class SceneReferences:
    """(scene start, scene stop) -> (reference ids, canvas [N, 3, H, W] or None)."""

    def __init__(self, bank, scenes, max_refs: int, ref_mindim: int, max_pixels: int | None = None):
        """max_pixels: most canvas pixels of one set (references x canvas), checked
        before the canvas is made."""
        self.bank, self.scenes, self.max_refs, self.ref_mindim = bank, scenes, max_refs, ref_mindim
        self.max_pixels = max_pixels
        self._sets = LRU(KEEP)
        self._canvases = LRU(KEEP_CANVASES, CANVAS_BYTES, sizeof=lambda c: c.nbytes)

    def __call__(self, start: int, stop: int) -> tuple[tuple[int, ...], np.ndarray | None]:
        key = self._sets.get(start)
        if key is None:
            key = choose_set(self.bank, self.scenes, start, stop, self.max_refs)
            self._sets.put(start, key)
        if not key:
            return key, None
        canvas = self._canvases.get(key)
        if canvas is None:
            images = [self.bank.images[i] for i in key]    # a LazyBank reads them now
            ch, cw = canvas_size([img.shape[:2] for img in images], self.ref_mindim)
            pixels = len(images) * ch * cw
            if self.max_pixels is not None and pixels > self.max_pixels:
                raise RefError(
                    f"ref_mindim {self.ref_mindim} makes scene {start}'s {len(images)} "
                    f"references a {len(images)}x{cw}x{ch} canvas ({pixels / 1e6:.1f} "
                    f"megapixels); allowed: at most {self.max_pixels / 1e6:g} megapixels per "
                    f"scene (lower ref_mindim or max_refs {self.max_refs}, or use references "
                    "of a less extreme aspect)")
            canvas = place_on_canvas(images, self.ref_mindim)
            self._canvases.put(key, canvas)
        return key, canvas
