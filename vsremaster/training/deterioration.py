"""Procedural film deterioration (the paper's Sec. 4.4, with generated instead of scanned noise).

The paper collects a bank of film-noise images and adds them to clean grey frames with
random scale, flip, rotation and sign. Scanned film noise is not available under an open
licence here, so the bank is generated: grain, dust (specks and hairs), scratches,
blotches, fractal (uneven density) noise, flicker and vignetting. Every bank image is a
float32 [S, S] array; `Deteriorator` places bank images on the frames additively.

All randomness comes from a `numpy.random.Generator`, so a seed fixes the result.
Luminance is model L in [0, 1] (L*/100), shape [T, H, W] (a clip) or [H, W].
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

KINDS = ("grain", "dust", "scratches", "blotches", "fractal", "vignette", "flicker")
BANK_SIZE = 256


# --------------------------------------------------------------------------- the bank

def _grain(rng: np.random.Generator, s: int) -> np.ndarray:
    img = rng.standard_normal((s, s)).astype(np.float32)
    sigma = rng.uniform(0.0, 1.5)
    if sigma > 0.3:
        img = cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    img /= img.std() + 1e-6
    return np.clip(img / 3.0, -1.0, 1.0)


def _dust(rng: np.random.Generator, s: int) -> np.ndarray:
    img = np.zeros((s, s), np.float32)
    for _ in range(int(rng.integers(5, 60))):
        c = (int(rng.integers(0, s)), int(rng.integers(0, s)))
        axes = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        cv2.ellipse(img, c, axes, float(rng.uniform(0, 180)), 0, 360,
                    float(rng.uniform(0.5, 1.0)), -1, cv2.LINE_AA)
    for _ in range(int(rng.integers(0, 4))):          # hairs: short random walks
        n = int(rng.integers(4, 12))
        p = rng.uniform(0, s, 2)
        d = rng.uniform(-1, 1, 2)
        pts = []
        for _ in range(n):
            d = d + rng.normal(0, 0.5, 2)
            d /= np.linalg.norm(d) + 1e-6
            p = p + d * rng.uniform(2, 6)
            pts.append(p.copy())
        cv2.polylines(img, [np.int32(pts)], False, float(rng.uniform(0.5, 1.0)), 1, cv2.LINE_AA)
    return cv2.GaussianBlur(img, (0, 0), 0.6)


def _scratches(rng: np.random.Generator, s: int) -> np.ndarray:
    img = np.zeros((s, s), np.float32)
    for _ in range(int(rng.integers(1, 5))):
        x = rng.uniform(0, s)
        y0, y1 = sorted(rng.uniform(-0.2 * s, 1.2 * s, 2))
        if rng.random() < 0.6:                           # most run over the whole frame
            y0, y1 = -1.0, s + 1.0
        ys = np.linspace(y0, y1, 16)
        xs = x + np.cumsum(rng.normal(0, 0.4, 16)) + (ys - y0) * rng.normal(0, 0.02)
        pts = np.int32(np.stack([xs, ys], 1))
        cv2.polylines(img, [pts], False, float(rng.uniform(0.4, 1.0)),
                      int(rng.integers(1, 3)), cv2.LINE_AA)
    return cv2.GaussianBlur(img, (0, 0), 0.5)


def _blotches(rng: np.random.Generator, s: int) -> np.ndarray:
    img = np.zeros((s, s), np.float32)
    for _ in range(int(rng.integers(1, 6))):
        c = rng.uniform(0, s, 2)
        r = rng.uniform(4, 30)
        n = int(rng.integers(6, 14))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = r * rng.uniform(0.5, 1.2, n)
        pts = np.int32(np.stack([c[0] + rad * np.cos(ang), c[1] + rad * np.sin(ang)], 1))
        cv2.fillPoly(img, [pts], float(rng.uniform(0.3, 1.0)), cv2.LINE_AA)
    return cv2.GaussianBlur(img, (0, 0), rng.uniform(1.0, 4.0))


def _fractal(rng: np.random.Generator, s: int) -> np.ndarray:
    img = np.zeros((s, s), np.float32)
    beta = rng.uniform(0.5, 1.5)
    size = 4
    while size <= s:
        octave = rng.standard_normal((size, size)).astype(np.float32)
        img += cv2.resize(octave, (s, s), interpolation=cv2.INTER_CUBIC) * (size ** -beta)
        size *= 2
    img -= img.mean()
    return img / (np.abs(img).max() + 1e-6)


def _vignette(rng: np.random.Generator, s: int) -> np.ndarray:
    y, x = np.mgrid[0:s, 0:s].astype(np.float32) / (s - 1) - 0.5
    cx, cy = rng.uniform(-0.15, 0.15, 2)
    r2 = ((x - cx) ** 2 + (y - cy) ** 2) / 0.5
    return np.clip(r2 ** rng.uniform(1.0, 2.5), 0, 1).astype(np.float32)


def _flicker(rng: np.random.Generator, s: int) -> np.ndarray:
    return np.ones((s, s), np.float32)


GENERATORS = {"grain": _grain, "dust": _dust, "scratches": _scratches, "blotches": _blotches,
              "fractal": _fractal, "vignette": _vignette, "flicker": _flicker}


def make_bank(per_kind: int = 8, size: int = BANK_SIZE, seed: int = 0) -> dict[str, list[np.ndarray]]:
    """Generate the deterioration bank: `per_kind` [size, size] float32 images of each kind."""
    rng = np.random.default_rng(seed)
    return {kind: [GENERATORS[kind](rng, size) for _ in range(per_kind if kind != "flicker" else 1)]
            for kind in KINDS}


# --------------------------------------------------------------------------- placing

def place(img: np.ndarray, h: int, w: int, rng: np.random.Generator,
          scale: tuple[float, float] = (0.5, 2.0), quarter_turns: bool = True) -> np.ndarray:
    """A bank image with random rotation (x90), flips and scale, tiled/cropped to [h, w].

    `quarter_turns=False` allows only 0/180 degree turns (scratches stay vertical).
    """
    img = np.rot90(img, int(rng.integers(0, 4)) if quarter_turns else 2 * int(rng.integers(0, 2)))
    if rng.random() < 0.5:
        img = img[:, ::-1]
    if rng.random() < 0.5:
        img = img[::-1]
    s = rng.uniform(*scale) * max(h, w) / img.shape[0]
    size = max(4, int(round(img.shape[0] * s)))
    img = cv2.resize(np.ascontiguousarray(img), (size, size), interpolation=cv2.INTER_LINEAR)
    if size < h or size < w:
        img = np.pad(img, ((0, max(0, h - size)), (0, max(0, w - size))), mode="wrap")
    y = int(rng.integers(0, img.shape[0] - h + 1))
    x = int(rng.integers(0, img.shape[1] - w + 1))
    return img[y:y + h, x:x + w]


@dataclass
class Settings:
    """Amplitudes (in L units) and probabilities of each deterioration for one clip.

    Training draws these per clip from `Settings.sample`; evaluation uses `EVALUATION`.
    """

    grain: float = 0.04          # std of grain
    dust_p: float = 0.7          # probability of a dust layer per frame
    dust: float = 0.5
    scratch_p: float = 0.5       # probability of a persistent scratch layer per clip
    scratch: float = 0.3
    blotch_p: float = 0.3        # per frame
    blotch: float = 0.3
    fractal: float = 0.05        # amplitude of slowly varying density noise
    flicker: float = 0.02        # std of per-frame brightness offsets
    vignette: float = 0.15       # darkening at the corners
    signs: tuple[float, ...] = field(default=(-1.0, 1.0))

    @staticmethod
    def sample(rng: np.random.Generator, strength: float = 1.0) -> "Settings":
        u = rng.uniform
        return Settings(grain=u(0.0, 0.08) * strength, dust_p=u(0.0, 1.0), dust=u(0.2, 0.9) * strength,
                        scratch_p=u(0.0, 1.0), scratch=u(0.1, 0.6) * strength,
                        blotch_p=u(0.0, 0.6), blotch=u(0.1, 0.5) * strength,
                        fractal=u(0.0, 0.1) * strength, flicker=u(0.0, 0.05) * strength,
                        vignette=u(0.0, 0.3) * strength if rng.random() < 0.5 else 0.0)


#: The fixed evaluation settings (with a fixed seed: `evaluation_rng`).
EVALUATION = Settings(grain=0.05, dust_p=0.8, dust=0.6, scratch_p=1.0, scratch=0.35,
                      blotch_p=0.3, blotch=0.3, fractal=0.05, flicker=0.02, vignette=0.15)
EVALUATION_SEED = 20191117


class Deteriorator:
    """Adds bank images to grey clips: `deteriorate(clip [T, H, W], rng, settings)`."""

    def __init__(self, bank: dict[str, list[np.ndarray]] | None = None, seed: int = 0):
        self.bank = bank if bank is not None else make_bank(seed=seed)

    def _pick(self, kind: str, rng: np.random.Generator) -> np.ndarray:
        images = self.bank[kind]
        return images[int(rng.integers(0, len(images)))]

    def layers(self, t: int, h: int, w: int, rng: np.random.Generator,
               settings: Settings) -> np.ndarray:
        """The additive deterioration [T, H, W] for a clip of that shape."""
        out = np.zeros((t, h, w), np.float32)
        sign = lambda: float(rng.choice(settings.signs))  # noqa: E731
        # Per clip: persistent scratches (drifting sideways), density noise, vignetting.
        if settings.scratch > 0 and rng.random() < settings.scratch_p:
            layer = place(self._pick("scratches", rng), h, w + 16, rng, (1.0, 1.5),
                          quarter_turns=False) * sign()
            x = rng.uniform(0, 16)
            for i in range(t):
                x = float(np.clip(x + rng.normal(0, 1.0), 0, 16))
                out[i] += layer[:, int(x):int(x) + w] * settings.scratch
        if settings.fractal > 0:
            a, b = (place(self._pick("fractal", rng), h, w, rng, (1.0, 3.0)) for _ in range(2))
            for i in range(t):
                mix = i / max(1, t - 1) * rng.uniform(0, 0.5)
                out[i] += ((1 - mix) * a + mix * b) * settings.fractal
        if settings.vignette > 0:
            out -= place(self._pick("vignette", rng), h, w, rng, (1.0, 1.2)) * settings.vignette
        for i in range(t):
            if settings.grain > 0:
                out[i] += place(self._pick("grain", rng), h, w, rng, (0.5, 1.5)) * (3 * settings.grain)
            if settings.dust > 0 and rng.random() < settings.dust_p:
                for _ in range(int(rng.integers(1, 3))):
                    out[i] += place(self._pick("dust", rng), h, w, rng) * settings.dust * sign()
            if settings.blotch > 0 and rng.random() < settings.blotch_p:
                out[i] += place(self._pick("blotches", rng), h, w, rng) * settings.blotch * sign()
            if settings.flicker > 0:
                out[i] += rng.normal(0, settings.flicker)
        return out

    def deteriorate(self, clip: np.ndarray, rng: np.random.Generator,
                    settings: Settings | None = None) -> np.ndarray:
        """Return a deteriorated copy of grey `clip` ([T, H, W] or [H, W]) in [0, 1]."""
        clip = np.asarray(clip, np.float32)
        single = clip.ndim == 2
        frames = clip[None] if single else clip
        settings = settings if settings is not None else Settings.sample(rng)
        out = np.clip(frames + self.layers(*frames.shape, rng, settings), 0.0, 1.0)
        return out[0] if single else out


def evaluation_rng() -> np.random.Generator:
    return np.random.default_rng(EVALUATION_SEED)
