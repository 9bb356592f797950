"""Synchronised refs read lazily: a refs clip of the source's length whose frame at each
scene start is that scene's reference, read when that scene is first needed.

`load_bank` reads such a clip at every scene start when the filter is created; this
reads one frame per scene, on demand, with a synchronous request (safe from inside a
frame request, see planning.scenes). A blank frame (flatter than BLANK_RANGE levels)
means the scene has no reference, as in `load_bank`. Images are kept in a small LRU
(a 512-pixel image is about 1 MB); which frames were blank is remembered for good.
"""
from __future__ import annotations

import threading

import numpy as np
import vapoursynth as vs

from ..frames.formats import SUPPORTED, to_rgb24
from ..lru import LRU
from .sources import RefError, _frame_rgb, _is_blank

#: Reference images kept (each at most KEEP_SHORT_EDGE on its short edge).
KEEP_IMAGES = 8


class SyncedRefs:
    """A synchronised refs clip; a reference is named by its frame number (the scene start)."""

    synced = True

    def __init__(self, refs: vs.VideoNode, keep: int = KEEP_IMAGES):
        """Reads no frame. `refs` must have the source's length (the caller checks)."""
        self.num_frames = refs.num_frames
        self._rgb = to_rgb24(refs)
        self._images = LRU(keep)                # uint8 RGB by frame number
        self._blank: set[int] = set()
        self._lock = threading.Lock()           # reads one frame at a time

    def image(self, start: int) -> np.ndarray | None:
        """uint8 RGB reference of the scene starting at `start`; None when that frame is blank."""
        if not 0 <= start < self.num_frames:
            raise IndexError(f"refs frame {start} is outside the clip (0-{self.num_frames - 1})")
        with self._lock:
            if start in self._blank:
                return None
            img = self._images.get(start)
            if img is None:
                try:
                    img = _frame_rgb(self._rgb.get_frame(start))
                except vs.Error as e:
                    raise RefError(f"refs clip frame {start} cannot be read as RGB ({e}); "
                                   f"allowed: frames in {SUPPORTED}") from None
                if _is_blank(img):
                    self._blank.add(start)
                    return None
                self._images.put(start, img)
        return img

    @property
    def images(self) -> "SyncedRefs._Images":
        """`images[start]` as for a RefBank (KeyError when that frame is blank)."""
        return SyncedRefs._Images(self)

    class _Images:
        def __init__(self, refs: "SyncedRefs"):
            self._refs = refs

        def __getitem__(self, start: int) -> np.ndarray:
            img = self._refs.image(start)
            if img is None:
                raise KeyError(f"refs frame {start} is blank")
            return img
