"""Input augmentations of the paper's Table 3, as reconstructed, and the full degradation.

The paper lists the degradations applied to the clean grey clip to make the network's
input (besides the film-noise bank of Sec. 4.4). Its exact parameters are not reproduced
here; this is our reconstruction, each applied with its own probability and with one
parameter draw per clip (the same lens/print for all five frames), except noise and
JPEG which vary per frame:

| augmentation            | p    | parameters                              |
| ----------------------- | ---- | --------------------------------------- |
| down- then up-scaling   | 0.3  | factor U(0.4, 0.9), area down, cubic up |
| Gaussian blur           | 0.5  | sigma U(0.3, 1.5) px                    |
| contrast change         | 0.5  | (L - mean) * U(0.6, 1.4) + mean         |
| brightness change       | 0.5  | + U(-0.15, 0.15)                        |
| film deterioration bank | 1.0  | `deterioration.Settings.sample`         |
| Gaussian noise          | 0.3  | sigma U(0, 0.04), per frame             |
| JPEG compression        | 0.3  | quality U(15, 60), per frame            |

Geometric augmentation (random crop, scale, flips, synthetic camera motion) happens where
the clips are made (`data.py`) and acts on input and target alike.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .deterioration import Deteriorator, Settings


@dataclass
class Table3:
    """Probabilities and ranges of the reconstructed Table 3 augmentations."""

    rescale_p: float = 0.3
    rescale: tuple[float, float] = (0.4, 0.9)
    blur_p: float = 0.5
    blur: tuple[float, float] = (0.3, 1.5)
    contrast_p: float = 0.5
    contrast: tuple[float, float] = (0.6, 1.4)
    brightness_p: float = 0.5
    brightness: tuple[float, float] = (-0.15, 0.15)
    noise_p: float = 0.3
    noise: tuple[float, float] = (0.0, 0.04)
    jpeg_p: float = 0.3
    jpeg: tuple[int, int] = (15, 60)


TABLE3 = Table3()


def rescale(frame: np.ndarray, factor: float) -> np.ndarray:
    h, w = frame.shape
    small = cv2.resize(frame, (max(1, int(w * factor)), max(1, int(h * factor))),
                       interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def jpeg(frame: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", np.uint8(np.clip(frame, 0, 1) * 255 + 0.5),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0


def augment_before(clip: np.ndarray, rng: np.random.Generator, t3: Table3 = TABLE3) -> np.ndarray:
    """Resolution loss, blur, contrast and brightness (one draw per clip)."""
    out = np.array(clip, np.float32, copy=True)
    if rng.random() < t3.rescale_p:
        f = rng.uniform(*t3.rescale)
        out = np.stack([rescale(x, f) for x in out])
    if rng.random() < t3.blur_p:
        s = rng.uniform(*t3.blur)
        out = np.stack([cv2.GaussianBlur(x, (0, 0), s) for x in out])
    if rng.random() < t3.contrast_p:
        m = out.mean()
        out = (out - m) * rng.uniform(*t3.contrast) + m
    if rng.random() < t3.brightness_p:
        out = out + rng.uniform(*t3.brightness)
    return np.clip(out, 0, 1)


def augment_after(clip: np.ndarray, rng: np.random.Generator, t3: Table3 = TABLE3) -> np.ndarray:
    """Sensor-like noise and compression (drawn per frame)."""
    out = np.array(clip, np.float32, copy=True)
    if rng.random() < t3.noise_p:
        s = rng.uniform(*t3.noise)
        out = out + rng.normal(0, s, out.shape).astype(np.float32)
    if rng.random() < t3.jpeg_p:
        out = np.stack([jpeg(x, int(rng.integers(t3.jpeg[0], t3.jpeg[1] + 1))) for x in out])
    return np.clip(out, 0, 1)


def degrade(clip: np.ndarray, rng: np.random.Generator, deteriorator: Deteriorator,
            settings: Settings | None = None, t3: Table3 | None = TABLE3) -> np.ndarray:
    """The training input made from a clean grey clip [T, H, W]: Table 3 + film deterioration.

    `t3=None` skips the Table 3 augmentations (film deterioration only).
    """
    out = clip if t3 is None else augment_before(clip, rng, t3)
    out = deteriorator.deteriorate(out, rng, settings)
    return out if t3 is None else augment_after(out, rng, t3)
