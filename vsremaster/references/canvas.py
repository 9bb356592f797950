"""Putting a reference set on one canvas, as the authors' pipeline does.

The canvas's short edge is `ref_mindim`, its aspect the mean aspect of the set, both
sides rounded down to multiples of 16; each reference is scaled to fit inside and
centred on black.
"""
from __future__ import annotations


import cv2
import numpy as np


def canvas_size(shapes: list[tuple[int, int]], ref_mindim: int) -> tuple[int, int]:
    """(height, width) of the canvas for references of the given (height, width)."""
    aspect = float(np.mean([w / h for h, w in shapes]))
    if aspect >= 1:
        h, w = ref_mindim, ref_mindim * aspect
    else:
        h, w = ref_mindim / aspect, ref_mindim
    return max(16, int(h) // 16 * 16), max(16, int(w) // 16 * 16)


def place_on_canvas(images: list[np.ndarray], ref_mindim: int) -> np.ndarray:
    """uint8 RGB images [H, W, 3] -> float32 [N, 3, Hc, Wc] in [0, 1]."""
    ch, cw = canvas_size([img.shape[:2] for img in images], ref_mindim)
    out = np.zeros((len(images), 3, ch, cw), np.float32)
    for i, img in enumerate(images):
        h, w = img.shape[:2]
        scale = min(ch / h, cw / w)
        nh, nw = max(1, min(ch, round(h * scale))), max(1, min(cw, round(w * scale)))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        small = cv2.resize(img, (nw, nh), interpolation=interp)
        top, left = (ch - nh) // 2, (cw - nw) // 2
        out[i, :, top:top + nh, left:left + nw] = small.transpose(2, 0, 1) / 255.0
    return np.clip(out, 0, 1)

