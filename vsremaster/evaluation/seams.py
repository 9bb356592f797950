"""Seam studies: how smoothly colour runs on where the filter's chunks and windows meet.

The filter's output (`ours`, and `ours[key=value]` per variant of its arguments) on a
slowly panning colour scene (`pan_seam`) or on a black-and-white film with its
references (`film_seam`), optionally beside the naive 15-frame window and the authors'
blocks of 5, each with the temporal metrics of `temporal` and its local steps per scene
(`benchmarks/pan_seam.py` prints them).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..bench.config import variant_name
from ..bench.inputs import colour_pan
from ..color.lab import model_to_rgb, rgb_to_model
from ..model.checkpoint import load_checkpoint
from ..references.sources import read_image
from ..training.data import read_video
from .consistency import naive_window, ours_filter
from .protocol import model_size, reference_canvas, remaster, to_tensor
from .temporal import chroma_changes, local_steps, rgb_to_ab, scene_bounds, temporal_metrics


def compare_outputs(grey: torch.Tensor, ref_images: list[np.ndarray], weights, device="cpu",
                    compare: bool = False, filter_args: dict | None = None,
                    variants: tuple[dict, ...] = (), truth: torch.Tensor | None = None,
                    detect_scenes: bool = False) -> dict:
    """grey L [T, 1, H, W] remastered with the uint8 RGB `ref_images`: the temporal
    metrics of the filter's output (`ours`, and `ours[key=value]` per variant), with
    `compare` of the naive window (per scene) and the blocks of 5 too, and of `truth`
    (sRGB [T, 3, H, W]) when given; each with its local steps (`steps`, the pair t -> t+1
    at index t - 2 of its scene) and the scene starts used (`starts`). One scene, unless
    `detect_scenes`: then the filter's scene detection decides for every method."""
    rgbs = {} if truth is None else {"scene": truth}
    starts = [0]
    for extra in ({},) + tuple(variants):
        name = variant_name(extra) if extra else "ours"
        found = [] if detect_scenes else None
        rgbs[name] = ours_filter(grey, ref_images, weights, device, scenes=found,
                                 **{**(filter_args or {}), **extra})
        if name == "ours" and found:
            starts = found
    if compare:
        model_r, model_c = load_checkpoint(weights, device=device)
        refs = reference_canvas([img.astype(np.float32) / 255 for img in ref_images])
        rgbs["naive"] = model_to_rgb(*naive_window(model_r, model_c, grey, refs, device, starts))
        rgbs["block5"] = model_to_rgb(*remaster(model_r, model_c, grey, refs, 5, device))
    out = {}
    for name, rgb in rgbs.items():
        ab = rgb_to_ab(rgb.numpy())
        out[name] = temporal_metrics(rgb.numpy(), starts, ab)
        out[name]["steps"] = [local_steps(chroma_changes(ab[a:b])).tolist()
                              for a, b in scene_bounds(len(ab), starts)]
        out[name]["starts"] = list(starts)
    return out


def pan_seam(weights, frames: int = 60, width: int = 224, height: int = 128, speed: int = 1,
             device="cpu", compare: bool = False, filter_args: dict | None = None,
             variants: tuple[dict, ...] = (), seed: int = 0) -> dict:
    """`compare_outputs` on a slowly panning colour scene (`bench.inputs.colour_pan`)
    remastered from its L with its first frame as the reference (the scene itself under
    `scene`)."""
    scene = colour_pan(frames, height, width, speed, seed)
    truth = torch.from_numpy(scene).permute(0, 3, 1, 2).float().div(255)
    return compare_outputs(rgb_to_model(truth)[0], [scene[0]], weights, device, compare,
                           filter_args, variants, truth=truth)


def film_seam(video, refs, weights, frames: int = 96, mindim: int = 240, device="cpu",
              compare: bool = False, filter_args: dict | None = None,
              variants: tuple[dict, ...] = ()) -> dict:
    """`compare_outputs` on a black-and-white film: its first `frames` frames as grey L
    at processing size (short edge `mindim`), the images in the folder `refs`, scenes as
    the filter detects them."""
    rgb = read_video(video, frames)
    grey = rgb_to_model(to_tensor(rgb, model_size(rgb, mindim)))[0]
    images = [read_image(p) for p in sorted(Path(refs).iterdir()) if p.is_file()]
    return compare_outputs(grey, images, weights, device, compare, filter_args, variants,
                           detect_scenes=True)
