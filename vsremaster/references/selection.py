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

import threading

import cv2
import numpy as np

from ..planning.scenes import THUMB, SceneIndex, describe
from .sources import RefBank
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


def _loose_descriptors(bank: RefBank) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Descriptors of the bank's unanchored references, computed once per bank."""
    descs = getattr(bank, "_loose_descriptors", None)
    if descs is None:
        with _DESCS_LOCK:
            descs = getattr(bank, "_loose_descriptors", None)
            if descs is None:
                descs = {i: ref_descriptor(bank.images[i])
                         for i, a in enumerate(bank.anchors) if a is None}
                bank._loose_descriptors = descs     # the bank is not changed after loading
    return descs


def choose_set(bank: RefBank | SyncedRefs, scenes: SceneIndex, start: int, stop: int,
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
    anchored = [i for i, a in enumerate(bank.anchors) if a is not None]
    mid = (start + stop - 1) / 2
    inside = sorted((i for i in anchored if start <= bank.anchors[i] < stop),
                    key=lambda i: (abs(bank.anchors[i] - mid), i))
    if not inside and anchored:
        dist = {i: max(start - bank.anchors[i], bank.anchors[i] - (stop - 1), 0)
                for i in anchored}
        best = min(dist.values())
        inside = sorted(i for i in anchored if dist[i] == best)
    ranked: list[int] = []
    if len(inside) < max_refs:
        descs = _loose_descriptors(bank)
        if descs:
            scene = scenes.descriptor(start)
            ranked = sorted(descs, key=lambda i: (-similarity(descs[i], scene), i))
    return tuple((inside + ranked)[:max_refs])
