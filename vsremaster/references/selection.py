"""Choosing each scene's reference set (at most `max_refs` images).

`choose_set` picks one scene's set when the scene is first needed (scenes from a lazy
`SceneIndex`); the tests hold it against `choose_sets` (`tests/oracles.py`), which picks
every scene's at once from a whole-clip scan by the same rules.

Synchronised refs: the scene's own frame. Otherwise, in order: references anchored
inside the scene (nearest the scene's middle first); if none, the anchored references
nearest to the scene; then unanchored references ranked by similarity to the scene.
Similarity is luminance-only, since the source is grey: the cosine similarity of
zero-mean 16x16 luma thumbnails (layout) plus the histogram intersection of 16-bin luma
histograms (tonal statistics), each in [0, 1] after scaling, summed.
"""
from __future__ import annotations

import heapq
import threading

import cv2
import numpy as np

from ..planning.scenes import THUMB, SceneIndex, describe
from .synced import SyncedRefs

_DESCS_LOCK = threading.Lock()


def ref_descriptor(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 RGB -> (thumbnail, histogram) of its L*/100, comparable with scene luma."""
    lab = cv2.cvtColor(img.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    thumb = cv2.resize(lab[..., 0] / 100.0, (THUMB, THUMB), interpolation=cv2.INTER_AREA)
    return describe(thumb)


def similarity(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    ta, tb = a[0] - a[0].mean(), b[0] - b[0].mean()
    denom = np.linalg.norm(ta) * np.linalg.norm(tb)
    cosine = float((ta * tb).sum() / denom) if denom > 1e-12 else 0.0
    return 0.5 * (cosine + 1.0) + float(np.minimum(a[1], b[1]).sum())


def _loose_descriptors(bank) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Descriptors of the bank's unanchored references, computed once per bank.

    Each image is read once for it (`bank.read`: a LazyBank's images are not kept).
    """
    descs = getattr(bank, "_loose_descriptors", None)
    if descs is None:
        with _DESCS_LOCK:
            descs = getattr(bank, "_loose_descriptors", None)
            if descs is None:
                descs = {i: ref_descriptor(bank.read(i))
                         for i, a in enumerate(bank.anchors) if a is None}
                bank._loose_descriptors = descs     # the bank is not changed after loading
    return descs


def _anchor_index(bank) -> tuple[np.ndarray, np.ndarray]:
    """(anchors, bank indices) of the anchored references, ordered by (anchor, index):
    a scene's anchored references are found by bisection, not by a pass over the bank."""
    index = getattr(bank, "_anchor_index", None)
    if index is None:
        ids = np.array([i for i, a in enumerate(bank.anchors) if a is not None], np.int64)
        values = np.array([bank.anchors[i] for i in ids], np.int64)
        order = np.lexsort((ids, values))
        index = bank._anchor_index = (values[order], ids[order])
    return index


def _anchored(bank, start: int, stop: int, max_refs: int) -> list[int]:
    """The first `max_refs` anchored references of the scene [start, stop): inside it
    nearest its middle first, else those of the nearest anchor(s) by index."""
    values, ids = _anchor_index(bank)
    lo, hi = np.searchsorted(values, [start, stop])
    if hi > lo:
        mid = (start + stop - 1) / 2
        return heapq.nsmallest(max_refs, ids[lo:hi].tolist(),
                               key=lambda i: (abs(bank.anchors[i] - mid), i))
    near = []                  # (distance, first, stop) of the nearest anchor each side
    if lo > 0:
        a = values[lo - 1]
        near.append((start - int(a), int(np.searchsorted(values, a)), int(lo)))
    if hi < len(values):
        a = values[hi]
        near.append((int(a) - (stop - 1), int(hi), int(np.searchsorted(values, a, "right"))))
    if not near:
        return []
    best = min(d for d, _, _ in near)
    found = [i for d, a, b in near if d == best for i in ids[a:b].tolist()]
    return heapq.nsmallest(max_refs, found)


def choose_set(bank, scenes: SceneIndex, start: int, stop: int,
               max_refs: int) -> tuple[int, ...]:
    """The reference set of the scene [start, stop) of `scenes`.

    Ids are bank indices; for `SyncedRefs` the id is the refs frame read (the scene
    start), absent when that frame is blank. Reads the scene's descriptor only when
    the bank has unanchored references.
    """
    if max_refs == 0:
        return ()
    if isinstance(bank, SyncedRefs):
        return (start,) if bank.image(start) is not None else ()
    if not len(bank):
        return ()
    inside = _anchored(bank, start, stop, max_refs)
    ranked: list[int] = []
    if len(inside) < max_refs:
        descs = _loose_descriptors(bank)
        if descs:
            scene = scenes.descriptor(start)
            ranked = sorted(descs, key=lambda i: (-similarity(descs[i], scene), i))
    return tuple((inside + ranked)[:max_refs])
