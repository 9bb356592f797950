"""The reference-behaviour suite: does the colour follow the references as it should?

Built from any colour clip, after the single-reference benchmark categories published for
DeepRemaster. Each category makes (source frames, references, target) and reports
PSNR(ab) of the remastered clip against the target, next to the Reinhard transfer from
the same references. The source is the clean grey clip (no deterioration), so only the
colorization is tested.

| category          | references                                  | target                      |
| ----------------- | ------------------------------------------- | --------------------------- |
| recolour          | first frame with hues rotated by 120 deg    | clip with hues rotated      |
| full              | the first frame itself                      | clip                        |
| partial_reference | a central crop (60% x 60%) of the first frame | clip                      |
| partial_source    | the full first frame; the source is a central crop (60%) of the clip | cropped clip |
| distractors       | the first frame plus three unrelated images | clip                        |
| noise             | uniform random noise                        | clip                        |

`recolour` also reports `psnr_ab_original` (against the unrotated clip): a model that
follows its reference scores high on `psnr_ab` and low on `psnr_ab_original`.
"""
from __future__ import annotations

import numpy as np
import torch
from kornia.color import lab_to_rgb, rgb_to_lab

from ..color.lab import rgb_to_model
from .metrics import psnr
from .protocol import model_size, reference_canvas, reinhard_transfer, remaster, to_tensor

CATEGORIES = ("recolour", "full", "partial_reference", "partial_source", "distractors", "noise")
HUE_ROTATION = 120.0
CROP = 0.6


def hue_rotate(rgb: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate the hue of float RGB [..., H, W, 3] by rotating a*b* in CIELAB."""
    t = torch.from_numpy(np.ascontiguousarray(rgb, np.float32))
    lab = rgb_to_lab(t.movedim(-1, -3))
    a, b = lab[..., 1, :, :], lab[..., 2, :, :]
    c, s = np.cos(np.deg2rad(degrees)), np.sin(np.deg2rad(degrees))
    lab = torch.stack([lab[..., 0, :, :], c * a - s * b, s * a + c * b], dim=-3)
    return lab_to_rgb(lab, clip=True).movedim(-3, -1).numpy()


def central_crop(img: np.ndarray, frac: float = CROP) -> np.ndarray:
    """The central `frac` x `frac` part of [..., H, W, C]."""
    h, w = img.shape[-3:-1]
    ch, cw = int(h * frac), int(w * frac)
    y, x = (h - ch) // 2, (w - cw) // 2
    return img[..., y:y + ch, x:x + cw, :]


def unrelated_images(rng: np.random.Generator, n: int, h: int, w: int) -> list[np.ndarray]:
    """Smooth random colour fields: plausible images that match nothing in any clip."""
    import cv2
    out = []
    for _ in range(n):
        small = rng.uniform(0, 1, (4, 6, 3)).astype(np.float32)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        out.append(np.clip(img + rng.normal(0, 0.03, img.shape).astype(np.float32), 0, 1))
    return out


def build_cases(frames: np.ndarray, seed: int = 0) -> dict[str, tuple[np.ndarray, list[np.ndarray], np.ndarray]]:
    """category -> (source RGB frames, reference RGB images, target RGB frames), float [0, 1]."""
    rng = np.random.default_rng(seed)
    clip = frames.astype(np.float32) / 255.0
    first = clip[0]
    rotated = hue_rotate(clip, HUE_ROTATION)
    h, w = first.shape[:2]
    cropped = central_crop(clip)
    return {
        "recolour": (clip, [rotated[0]], rotated),
        "full": (clip, [first], clip),
        "partial_reference": (clip, [central_crop(first)], clip),
        "partial_source": (cropped, [first], cropped),
        "distractors": (clip, [first] + unrelated_images(rng, 3, h, w), clip),
        "noise": (clip, [rng.uniform(0, 1, first.shape).astype(np.float32)], clip),
    }


def run_suite(frames: np.ndarray, model_r, model_c, mindim: int = 320, chunk: int = 5,
              device="cpu", seed: int = 0) -> dict[str, dict]:
    """Run every category on uint8 RGB frames [T, H, W, 3]; return category -> figures."""
    results = {}
    for name, (src, refs, target) in build_cases(frames, seed).items():
        size = model_size(src, mindim)
        u8 = lambda a: np.uint8(np.clip(a, 0, 1) * 255 + 0.5)  # noqa: E731
        l_src, _ = rgb_to_model(to_tensor(u8(src), size))
        _, ab_target = rgb_to_model(to_tensor(u8(target), size))
        _, ab_pred = remaster(model_r, model_c, l_src, reference_canvas(refs), chunk, device)
        _, ab_transfer = reinhard_transfer(l_src, refs)
        res = {"psnr_ab": psnr(ab_pred, ab_target), "transfer_psnr_ab": psnr(ab_transfer, ab_target)}
        if name == "recolour":
            _, ab_orig = rgb_to_model(to_tensor(u8(src), size))
            res["psnr_ab_original"] = psnr(ab_pred, ab_orig)
        results[name] = res
    return results


def suite_table(results: dict[str, dict]) -> str:
    head = f"{'category':<18} {'PSNR ab':>8} {'transfer':>9}  note"
    lines = [head, "-" * len(head)]
    for name, r in results.items():
        note = f"vs. unrotated clip: {r['psnr_ab_original']:.2f}" if "psnr_ab_original" in r else ""
        lines.append(f"{name:<18} {r['psnr_ab']:>8.2f} {r['transfer_psnr_ab']:>9.2f}  {note}")
    return "\n".join(lines)
