"""What every method gets: synthetic grey frames, reference images (as arrays, on a canvas
and as PNG files) and a weights file."""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from ..model import NetworkC, NetworkR
from ..model.checkpoint import save_checkpoint
from ..references.canvas import canvas_size, place_on_canvas
from .config import Config, log

SMALL = (64, 48)              # warm-up size (width, height)
#: ../shared beside the checkout, or $VSREMASTER_SHARED (as the tests look for it).
SHARED = Path(os.environ.get("VSREMASTER_SHARED", Path(__file__).resolve().parents[2].parent
                             / "shared"))
GOLDEN_GENERATOR = SHARED / "golden" / "deterministic_weights.py"


def texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth random texture, float32 in [0, 1], at least [height, width] (cubic
    upscaling of random values on a grid of 8 px)."""
    rng = np.random.default_rng(seed)
    base = rng.random((height // 8 + 2, width // 8 + 2)).astype(np.float32)
    return cv2.resize(base, (base.shape[1] * 8, base.shape[0] * 8), interpolation=cv2.INTER_CUBIC)


def pan_shift(width: int) -> int:
    """Pixels a synthetic pan moves per frame (1 % of the width)."""
    return max(1, width // 100)


def synthetic_frames(n: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Grey frames [n, h, w] float32 in [0, 1]: a smooth random texture panning, on a ramp."""
    shift = pan_shift(width)
    big = texture(height, width + n * shift, seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = 0.3 * xx / width + 0.2 * yy / height
    out = np.empty((n, height, width), np.float32)
    for i in range(n):
        out[i] = np.clip(0.6 * big[:height, i * shift:i * shift + width] + ramp, 0, 1)
    return out


def colour_pan(n: int, height: int, width: int, speed: int = 1, seed: int = 0) -> np.ndarray:
    """Colour frames [n, h, w, 3] uint8: a smooth random colour texture (one per channel)
    panning `speed` px per frame to the left, one scene, no other change."""
    strip_w = width + (n - 1) * speed
    rgb = np.stack([texture(height, strip_w, seed + c)[:height, :strip_w] for c in range(3)], -1)
    rgb = (np.clip(0.15 + 0.7 * rgb, 0, 1) * 255).round().astype(np.uint8)
    return np.stack([rgb[:, i * speed:i * speed + width] for i in range(n)])


def ref_shape(width: int, height: int, ref_size: int) -> tuple[int, int]:
    """(h, w) of reference images with short edge `ref_size` and the frames' aspect,
    equal to their canvas (so placing them on it resizes nothing)."""
    aspect = width / height
    h, w = (ref_size, ref_size * aspect) if aspect >= 1 else (ref_size / aspect, ref_size)
    h, w = max(16, int(h) // 16 * 16), max(16, int(w) // 16 * 16)
    return canvas_size([(h, w)], ref_size)


def synthetic_refs(n: int, height: int, width: int, seed: int = 1) -> list[np.ndarray]:
    """n colourful uint8 RGB images [h, w, 3] (smooth random colour fields)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        base = rng.random((height // 32 + 2, width // 32 + 2, 3)).astype(np.float32)
        big = cv2.resize(base, (width, height), interpolation=cv2.INTER_CUBIC)
        out.append((np.clip(big, 0, 1) * 255).round().astype(np.uint8))
    return out


def unanchored_name(i: int, tag: str = "") -> str:
    """A reference file name with no trailing number (`ref_a.png`, ..., `ref_ba.png`):
    the filter reads a trailing number as the frame a reference belongs to."""
    letters = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        letters = chr(97 + r) + letters
    return f"ref{tag}_{letters}.png"


def write_refs(images: list[np.ndarray], folder: Path, tag: str = "") -> list[str]:
    """uint8 RGB images -> lossless PNG files in `folder` (unanchored names); their paths."""
    paths = []
    for i, img in enumerate(images):
        path = folder / unanchored_name(i, tag)
        cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        paths.append(str(path))
    return paths


@dataclass
class Inputs:
    """What every method gets: grey frames, reference images, canvas, their files."""

    frames: np.ndarray                 # [N, H, W] float32, model size
    ref_images: list[np.ndarray]       # uint8 RGB
    canvas: np.ndarray | None          # [R, 3, Hr, Wr] float32
    ref_paths: list[str]
    ref_size: int


def make_inputs(width: int, height: int, frames: int, refs: int, ref_size: int,
                folder: Path, seed: int = 0, tag: str = "") -> Inputs:
    grey = synthetic_frames(frames, height, width, seed)
    images = synthetic_refs(refs, *ref_shape(width, height, ref_size), seed=seed + 1)
    paths = write_refs(images, folder, tag)
    canvas = place_on_canvas(images, ref_size) if images else None
    return Inputs(grey, images, canvas, paths, ref_size)


def small_inputs(cfg: Config, folder: Path) -> Inputs:
    """The warm-up input ("small": 6 frames of 64x48, references of 32 px)."""
    return make_inputs(*SMALL, 6, cfg.refs, 32, folder, cfg.seed, tag="small")


def _golden_module():
    if not GOLDEN_GENERATOR.is_file():
        return None
    spec = importlib.util.spec_from_file_location("deterministic_weights", GOLDEN_GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def default_weights(folder: Path) -> tuple[Path, str]:
    """Write full-size weights for the benchmark; (path, where they came from).

    The golden generator of ../shared/golden when present (seed-stable across machines),
    else PyTorch's default initialisation seeded with 0 (attention gamma set to 0.5 so
    the attention paths contribute, as the golden weights do).
    """
    model_r, model_c = NetworkR(), NetworkC()
    golden = _golden_module()
    if golden is not None:
        state_r = golden.make_state_dict(model_r.state_dict())
        state_c = golden.make_state_dict(model_c.state_dict())
        source = f"golden generated weights ({GOLDEN_GENERATOR})"
    else:
        torch.manual_seed(0)
        model_r, model_c = NetworkR(), NetworkC()
        state_r, state_c = model_r.state_dict(), model_c.state_dict()
        for key in state_c:
            if key.endswith("gamma"):
                state_c[key] = torch.full_like(state_c[key], 0.5)
        source = "seeded torch init (seed 0, attention gamma 0.5; golden generator not found)"
    path = save_checkpoint(folder / "bench-weights.safetensors", state_r, state_c,
                           name="bench-generated")
    return path, source


def resolve_weights(given: Path | str | None, folder: Path) -> tuple[Path, str]:
    """The weights file to time with (full-size weights generated into `folder` when
    none or `golden` is given) and what it is."""
    if given is None or str(given) == "golden":
        weights, source = default_weights(folder)
    else:
        weights, source = Path(given), f"file {given}"
    log(f"weights: {source}")
    return weights, source


def warmup_input(cfg: Config, inputs: Inputs, small: Inputs) -> Inputs | None:
    """What a method's untimed warm-up run gets (None: no warm-up)."""
    mode = cfg.warmup_mode
    return None if mode == "none" else small if mode == "small" else inputs
