"""The protocol's clip remastered three ways, scored for temporal consistency.

On the protocol's inputs (the deteriorated grey clip at processing size, the same
reference frames, the same weights), beside its block-of-5 path:
- `ours`: the real filter (`vsremaster.remaster.build`) through VapourSynth over a GRAYS
  clip of the deteriorated L, the references as lossless PNG files (short edge 256 on
  the canvas, as the protocol), one scene, float32 (`fp16=False`, as the protocol's
  networks run) unless the filter arguments say otherwise; scored from its RGB output;
- `block5`: the protocol's path (the networks on consecutive blocks of 5);
- `naive`: a centred 15-frame window per output frame (`vsremaster.bench.naive`);
- `truth`: the colour clip itself (the motion's own chroma change, for scale).
Each gets the metrics of `temporal` on its RGB output; ours and naive (and any ours
variant with extra filter arguments, `ours[key=value]`) also get the protocol's PSNR
and CIEDE2000, under `<method>_psnr_l` etc.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from ..bench.config import variant_name
from ..color.lab import model_to_rgb, rgb_to_model
from .temporal import temporal_metrics

METHODS = ("ours", "block5", "naive")


def naive_window(model_r, model_c, grey: torch.Tensor, refs: torch.Tensor | None,
                 device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """grey L [T, 1, H, W] -> (L [T, 1, H, W], ab [T, 2, H, W]), one centred 15-frame
    window per output frame, float32."""
    from ..bench import naive
    ls, abs_ = {}, {}

    def keep(n, l, ab, rgb):
        ls[n], abs_[n] = l, ab

    naive.run(model_r.float(), model_c.float(), grey[:, 0].numpy().astype(np.float32),
              None if refs is None else refs.numpy(), device=torch.device(device), sink=keep)
    order = range(len(grey))
    return (torch.from_numpy(np.stack([ls[i] for i in order]))[:, None],
            torch.from_numpy(np.stack([abs_[i] for i in order])))


def ours_filter(grey: torch.Tensor, ref_frames: list[np.ndarray], weights, device="cpu",
                **filter_args) -> torch.Tensor:
    """grey L [T, 1, H, W] -> the filter's sRGB output [T, 3, H, W]; `ref_frames`: uint8
    RGB images [h, w, 3] (written as PNG files for the filter)."""
    from ..bench.inputs import write_refs
    from ..bench.ours import render
    with tempfile.TemporaryDirectory(prefix="vsremaster-eval-") as tmp:
        paths = write_refs(ref_frames, Path(tmp))
        rgb = render(grey[:, 0].numpy().astype(np.float32), paths, weights, device=device,
                     **{"fp16": False, **filter_args})
    return torch.from_numpy(rgb)


def evaluate_methods(cfg, model_r, model_c, grey: torch.Tensor, refs: torch.Tensor | None,
                     ref_frames: list[np.ndarray], block5: tuple[torch.Tensor, torch.Tensor],
                     truth_rgb: torch.Tensor, score) -> dict:
    """The figures of `cfg.temporal`'s methods; `score(l, ab)`: the protocol's PSNR and
    CIEDE2000 of a prediction (model units) against the clip."""
    rgbs = {"truth": truth_rgb}
    out: dict = {}
    if "ours" in cfg.temporal:
        if cfg.weights is None:
            raise ValueError("the ours method needs the weights file (EvalConfig.weights)")
        runs = [("ours", {})] + [(variant_name(v), v) for v in cfg.ours_variants]
        for name, extra in runs:
            rgb = ours_filter(grey, ref_frames, cfg.weights, cfg.device,
                              **{**cfg.ours_args, **extra})
            l, ab = rgb_to_model(rgb)
            out.update({f"{name}_{k}": v for k, v in score(l, ab).items()})
            rgbs[name] = rgb
    if "block5" in cfg.temporal:
        rgbs["block5"] = model_to_rgb(*block5)
    if "naive" in cfg.temporal:
        l, ab = naive_window(model_r, model_c, grey, refs, cfg.device)
        out.update({f"naive_{k}": v for k, v in score(l, ab).items()})
        rgbs["naive"] = model_to_rgb(l, ab)
    out["temporal"] = {name: temporal_metrics(rgb.numpy()) for name, rgb in rgbs.items()}
    return out


def pan_seam(weights, frames: int = 60, width: int = 224, height: int = 128, speed: int = 1,
             device="cpu", compare: bool = False, filter_args: dict | None = None,
             variants: tuple[dict, ...] = (), seed: int = 0) -> dict:
    """A slowly panning colour scene (`bench.inputs.colour_pan`) remastered from its L
    with its first frame as the reference; the temporal metrics (seam figure first) of
    the filter's output (and each variant's), and with `compare` of the naive window
    and the blocks of 5 too, and of the scene itself. Also each output's local steps
    (`steps`: pair t -> t+1 at index t - 2)."""
    from ..bench.inputs import colour_pan
    from ..model.checkpoint import load_checkpoint
    from .protocol import reference_canvas, remaster
    from .temporal import chroma_changes, local_steps, rgb_to_ab
    scene = colour_pan(frames, height, width, speed, seed)
    truth = torch.from_numpy(scene).permute(0, 3, 1, 2).float().div(255)
    grey = rgb_to_model(truth)[0]
    rgbs = {"scene": truth}
    for extra in ({},) + tuple(variants):
        name = variant_name(extra) if extra else "ours"
        rgbs[name] = ours_filter(grey, [scene[0]], weights, device,
                                 **{**(filter_args or {}), **extra})
    if compare:
        model_r, model_c = load_checkpoint(weights, device=device)
        refs = reference_canvas([scene[0].astype(np.float32) / 255])
        rgbs["naive"] = model_to_rgb(*naive_window(model_r, model_c, grey, refs, device))
        rgbs["block5"] = model_to_rgb(*remaster(model_r, model_c, grey, refs, 5, device))
    out = {}
    for name, rgb in rgbs.items():
        out[name] = temporal_metrics(rgb.numpy())
        out[name]["steps"] = local_steps(chroma_changes(rgb_to_ab(rgb.numpy()))).tolist()
    return out
