"""Which frames would most help as new references: the scenes whose colour is most a guess.

From each frame's mean match confidence (`vsremaster.Confidence`, `_RemasterConfidence`)
and its scene: scenes ranked by their mean confidence, weakest first, and in each the
frame with the lowest confidence (all frames of a clip have one size, so the lowest mean
is the lowest confidence mass). A colour version of that frame, added as a reference,
gives the scene a reference that resembles it where it resembles the others least.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class SceneScore:
    """A scene [start, stop), its mean confidence, and its weakest frame."""

    start: int
    stop: int
    mean: float
    frame: int
    frame_confidence: float

    def as_dict(self) -> dict:
        return {"scene": [self.start, self.stop - 1], "mean": round(self.mean, 6),
                "frame": self.frame, "frame_confidence": round(self.frame_confidence, 6)}


def rank_scenes(confidence: list[float], scene_of: list[int]) -> list[SceneScore]:
    """Scenes weakest first (ties: earlier first) from per-frame mean confidences and
    each frame's scene start (frames in order, every scene's frames consecutive)."""
    if len(confidence) != len(scene_of):
        raise ValueError("one confidence and one scene start per frame")
    scenes: dict[int, list[int]] = {}
    for n, start in enumerate(scene_of):
        scenes.setdefault(start, []).append(n)
    out = []
    for start, frames in scenes.items():
        values = np.array([confidence[n] for n in frames], np.float64)
        weakest = frames[int(np.argmin(values))]         # the first of equal minima
        out.append(SceneScore(start, frames[-1] + 1, float(values.mean()), weakest,
                              float(confidence[weakest])))
    return sorted(out, key=lambda s: (s.mean, s.start))


def contact_sheet(tiles: list[np.ndarray], labels: list[str], columns: int = 2,
                  gap: int = 8, label_height: int = 22) -> np.ndarray:
    """uint8 RGB tiles [h, w, 3] (any sizes) with a label under each, in rows of
    `columns`, on a dark grey sheet: uint8 RGB."""
    if not tiles:
        raise ValueError("no tiles")
    cell_w = max(t.shape[1] for t in tiles)
    cell_h = max(t.shape[0] for t in tiles) + label_height
    rows = -(-len(tiles) // columns)
    cols = min(columns, len(tiles))
    sheet = np.full((gap + rows * (cell_h + gap), gap + cols * (cell_w + gap), 3), 32, np.uint8)
    for i, (tile, label) in enumerate(zip(tiles, labels)):
        y = gap + (i // columns) * (cell_h + gap)
        x = gap + (i % columns) * (cell_w + gap)
        sheet[y:y + tile.shape[0], x:x + tile.shape[1]] = tile
        cv2.putText(sheet, label, (x + 2, y + tile.shape[0] + label_height - 7),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (235, 235, 235), 1, cv2.LINE_AA)
    return sheet


def beside(a: np.ndarray, b: np.ndarray, gap: int = 4) -> np.ndarray:
    """Two uint8 RGB images of one height side by side."""
    pad = np.full((a.shape[0], gap, 3), 32, np.uint8)
    return np.concatenate([a, pad, b], axis=1)


def heat(values: np.ndarray) -> np.ndarray:
    """A confidence map [h, w] in [0, 1] as uint8 RGB (inferno: black 0, yellow 1)."""
    v = np.clip(np.nan_to_num(values), 0.0, 1.0)
    bgr = cv2.applyColorMap(np.round(v * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)
    return np.ascontiguousarray(bgr[..., ::-1])
