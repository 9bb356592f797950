"""Temporal-consistency metrics of a colorized clip: chroma change, seam figure, CDC.

Inputs are channel-first numpy arrays: `ab` [T, 2, H, W] in CIE L*a*b* a*/b* units,
`rgb` [T, 3, H, W] sRGB in [0, 1]. `starts` lists the first frame of every scene
(`[0]`: the whole clip is one scene); a pair of frames on either side of a scene cut is
never compared.

- `chroma_changes`: per consecutive pair, the mean |delta ab| over pixels and both
  channels; `mean_change` averages them over all pairs inside scenes.
- `local_steps` / `seam`: a pair's change divided by the mean of its four neighbouring
  pairs' changes (t-2, t-1, t+1, t+2), over the interior of each scene (pairs with two
  neighbours on each side inside the scene); the seam figure is the largest. Uniform
  motion gives about 1; a colour step at one boundary gives a large value there.
- `cdc`: the Color Distribution Consistency index of Liu et al., "Temporally consistent
  video colorization with deep feature propagation and self-regularization learning"
  (arXiv:2110.04562, 2021; Computational Visual Media 10(2), 2024), as their evaluation
  code computes it (github.com/lyh-18/TCVC-Temporally-Consistent-Video-Colorization,
  codes/eval_results.py, also the NTIRE 2023 video colorization challenge's CDC track):
  each frame quantised to 8 bits, a 256-bin histogram per R, G, B channel normalised
  by the pixel count; the Jensen-Shannon divergence (natural log, so in [0, ln 2])
  between frames t and t+d per channel, averaged over pairs and channels for each
  d in (1, 2, 4), and the three averaged with equal weights. Lower is steadier. One
  departure, for clips with cuts: pairs (t, t+d) that straddle a cut are left out.
"""
from __future__ import annotations

import math

import numpy as np

DILATIONS = (1, 2, 4)
BINS = 256


def scene_bounds(num_frames: int, starts=(0,)) -> list[tuple[int, int]]:
    """[(first, end)] of every scene (end exclusive) from the scene starts."""
    cuts = sorted({int(s) for s in starts if 0 < s < num_frames} | {0})
    return list(zip(cuts, cuts[1:] + [num_frames]))


def chroma_changes(ab: np.ndarray) -> np.ndarray:
    """ab [T, 2, H, W] -> [T-1]: mean |ab[t+1] - ab[t]| over pixels and channels."""
    ab = np.asarray(ab, np.float64)
    return np.abs(np.diff(ab, axis=0)).reshape(len(ab) - 1, -1).mean(axis=1) if len(ab) > 1 \
        else np.zeros(0)


def _scene_changes(ab: np.ndarray, starts) -> list[tuple[int, np.ndarray]]:
    """(first frame, its pairs' changes) per scene."""
    changes = chroma_changes(ab)
    return [(a, changes[a:b - 1]) for a, b in scene_bounds(len(ab), starts)]


def mean_change(ab: np.ndarray, starts=(0,)) -> float:
    """Mean |delta ab| per consecutive pair over every pair inside a scene (NaN: none)."""
    pairs = np.concatenate([c for _, c in _scene_changes(ab, starts)] + [np.zeros(0)])
    return float(pairs.mean()) if len(pairs) else math.nan


def local_steps(changes: np.ndarray) -> np.ndarray:
    """One scene's pair changes [P] -> local steps [P-4] of pairs 2 .. P-3: change[t] over
    the mean of change[t-2], change[t-1], change[t+1], change[t+2] (1 where both are 0,
    inf where only the neighbours are)."""
    d = np.asarray(changes, np.float64)
    if len(d) < 5:
        return np.zeros(0)
    centre = d[2:-2]
    around = (d[:-4] + d[1:-3] + d[3:-1] + d[4:]) / 4
    with np.errstate(divide="ignore", invalid="ignore"):
        steps = centre / around
    steps[(around == 0) & (centre == 0)] = 1.0
    return steps


def seam(ab: np.ndarray, starts=(0,)) -> tuple[float, int | None]:
    """The seam figure: (largest local step over the interior of every scene, t) where
    the step is the change from frame t to t+1; (NaN, None) when no scene has an
    interior (6 frames or more)."""
    best, where = math.nan, None
    for first, changes in _scene_changes(ab, starts):
        steps = local_steps(changes)
        if len(steps) and not steps.max() <= best:
            best, where = float(steps.max()), first + 2 + int(steps.argmax())
    return best, where


def histograms(rgb: np.ndarray) -> np.ndarray:
    """rgb [T, 3, H, W] in [0, 1] -> [T, 3, 256]: per-channel histograms of the frames
    quantised to 8 bits, each normalised to sum 1."""
    q = np.clip(np.rint(np.asarray(rgb, np.float64) * 255), 0, 255).astype(np.int64)
    t, c = q.shape[:2]
    flat = q.reshape(t * c, -1)
    offsets = (np.arange(t * c) * BINS)[:, None]
    counts = np.bincount((flat + offsets).ravel(), minlength=t * c * BINS)
    return (counts.reshape(t, c, BINS) / flat.shape[1]).astype(np.float64)


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence (natural log) of distributions along the last axis."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    m = (p + q) / 2

    def kl(a):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(a > 0, a * np.log(a / m), 0.0).sum(axis=-1)

    return 0.5 * kl(p) + 0.5 * kl(q)


def cdc(rgb: np.ndarray, starts=(0,), dilations=DILATIONS) -> dict:
    """{"cdc": the mean over `dilations`, "cdc_d1": ..., ...}; a dilation no pair inside a
    scene reaches is left out (NaN where none is reached)."""
    hist = histograms(rgb)
    out, per_d = {}, []
    for d in dilations:
        js = [js_divergence(hist[a:b - d], hist[a + d:b])
              for a, b in scene_bounds(len(hist), starts) if b - a > d]
        if js:
            value = float(np.concatenate([j.ravel() for j in js]).mean())
            out[f"cdc_d{d}"] = value
            per_d.append(value)
        else:
            out[f"cdc_d{d}"] = math.nan
    out["cdc"] = float(np.mean(per_d)) if per_d else math.nan
    return out


def rgb_to_ab(rgb: np.ndarray) -> np.ndarray:
    """rgb [T, 3, H, W] in [0, 1] -> CIE a*b* [T, 2, H, W] (D65, as the model's Lab)."""
    import torch
    from kornia.color import rgb_to_lab
    lab = rgb_to_lab(torch.as_tensor(np.asarray(rgb, np.float32)).clamp(0, 1))
    return lab[:, 1:].numpy()


def temporal_metrics(rgb: np.ndarray, starts=(0,), ab: np.ndarray | None = None) -> dict:
    """All of them for one output clip rgb [T, 3, H, W] in [0, 1]; `ab`: its a*b*
    (`rgb_to_ab(rgb)`) where the caller has them already."""
    ab = rgb_to_ab(rgb) if ab is None else ab
    step, at = seam(ab, starts)
    return {"mean_dab": mean_change(ab, starts), "seam": step, "seam_at": at, **cdc(rgb, starts)}
