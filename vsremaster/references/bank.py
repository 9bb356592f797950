"""Banks of reference images: one held whole, or one read image by image when used.

A film coloured one frame per shot has thousands of references, but a scene uses at
most `max_refs` of them. So choosing keeps only each reference's anchor (and, for the
unanchored ones, a small descriptor computed when first needed, see `selection`), and
a `LazyBank` reads an image when a chosen set needs it, keeping the recent ones in an
LRU bounded in entries and bytes (`limits.REF_CACHE_IMAGES`, `limits.REF_CACHE_BYTES`).
A bank that fits that cache is read whole when the filter is created (a `RefBank`), so
small folders behave as they always did: every file decoded, and checked, at creation.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from .. import limits
from ..lru import LRU


@dataclass
class RefBank:
    """Reference images (uint8 RGB [H, W, 3]) and their anchors (None: unanchored)."""

    images: list[np.ndarray] = field(default_factory=list)
    anchors: list[int | None] = field(default_factory=list)
    synced: ClassVar[bool] = False          # a synchronised refs clip is a SyncedRefs

    def __len__(self) -> int:
        return len(self.images)

    def read(self, i: int) -> np.ndarray:
        """Image i (held: nothing is read)."""
        return self.images[i]


def fits_cache(count: int, nbytes: int) -> bool:
    """Whether a bank of `count` images taking `nbytes` kept is read whole at creation."""
    return count <= limits.REF_CACHE_IMAGES and nbytes <= limits.REF_CACHE_BYTES


class LazyBank:
    """References read when used: `read(i)` gives image i (uint8 RGB, at most
    KEEP_SHORT_EDGE on its short edge, RefError when it cannot be read); `images[i]`
    goes through the LRU. Holds one anchor per reference and what `read` needs."""

    synced = False

    def __init__(self, anchors: list[int | None], read: Callable[[int], np.ndarray]):
        self.anchors = anchors
        self.read = read
        self.cache = LRU(limits.REF_CACHE_IMAGES, limits.REF_CACHE_BYTES,
                         sizeof=lambda img: img.nbytes)
        self.images = _Images(self)

    def __len__(self) -> int:
        return len(self.anchors)

    def image(self, i: int) -> np.ndarray:
        if not 0 <= i < len(self.anchors):
            raise IndexError(f"reference {i} is outside the bank (0-{len(self.anchors) - 1})")
        img = self.cache.get(i)
        if img is None:
            # two threads may read the same image at once: the same bits, one kept
            img = self.read(i)
            img.flags.writeable = False         # shared by every set that uses it
            self.cache.put(i, img)
        return img


class _Images:
    """`bank.images[i]` of a LazyBank, as for a RefBank."""

    def __init__(self, bank: LazyBank):
        self._bank = bank

    def __getitem__(self, i: int) -> np.ndarray:
        return self._bank.image(i)

    def __len__(self) -> int:
        return len(self._bank)
