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
from kornia.color import rgb_to_lab

from ..bench.config import variant_name
from ..color.lab import ab_to_model, model_to_rgb
from ..finish.compose import saturated
from .temporal import scene_bounds, temporal_metrics

METHODS = ("ours", "block5", "naive")


def naive_window(model_r, model_c, grey: torch.Tensor, refs: torch.Tensor | None,
                 device="cpu", starts=(0,)) -> tuple[torch.Tensor, torch.Tensor]:
    """grey L [T, 1, H, W] -> (L [T, 1, H, W], ab [T, 2, H, W]), one centred 15-frame
    window per output frame (edge-replicated at the bounds of its scene), float32."""
    from ..bench import naive
    ls, abs_ = {}, {}
    frames = grey[:, 0].numpy().astype(np.float32)
    for first, end in scene_bounds(len(frames), starts):
        def keep(n, l, ab, rgb, first=first):
            ls[first + n], abs_[first + n] = l, ab

        naive.run(model_r.float(), model_c.float(), frames[first:end],
                  None if refs is None else refs.numpy(), device=torch.device(device),
                  sink=keep)
    order = range(len(grey))
    return (torch.from_numpy(np.stack([ls[i] for i in order]))[:, None],
            torch.from_numpy(np.stack([abs_[i] for i in order])))


def ours_filter(grey: torch.Tensor, ref_frames: list[np.ndarray], weights, device="cpu",
                scenes: list | None = None, **filter_args) -> torch.Tensor:
    """grey L [T, 1, H, W] -> the filter's sRGB output [T, 3, H, W]; `ref_frames`: uint8
    RGB images [h, w, 3] (written as PNG files for the filter). One scene, unless
    `scenes` is a list: then the filter detects scenes and their starts go there."""
    from ..bench.inputs import write_refs
    from ..bench.ours import render
    with tempfile.TemporaryDirectory(prefix="vsremaster-eval-") as tmp:
        paths = write_refs(ref_frames, Path(tmp))
        rgb = render(grey[:, 0].numpy().astype(np.float32), paths, weights, device=device,
                     one_scene=scenes is None, scenes=scenes,
                     **{"fp16": False, **filter_args})
    return torch.from_numpy(rgb)


def evaluate_methods(cfg, model_r, model_c, grey: torch.Tensor, refs: torch.Tensor | None,
                     ref_frames: list[np.ndarray], block5: tuple[torch.Tensor, torch.Tensor],
                     truth_rgb: torch.Tensor, score) -> dict:
    """The figures of `cfg.temporal`'s methods; `score(l, ab)`: the protocol's PSNR and
    CIEDE2000 of a prediction (model units) against the clip."""
    rgbs = {"truth": truth_rgb}
    abs_: dict = {}                 # a*b* of the outputs already converted to Lab
    out: dict = {}
    if "ours" in cfg.temporal:
        if cfg.weights is None:
            raise ValueError("the ours method needs the weights file (EvalConfig.weights)")
        runs = [("ours", {})] + [(variant_name(v), v) for v in cfg.ours_variants]
        for name, extra in runs:
            rgb = ours_filter(grey, ref_frames, cfg.weights, cfg.device,
                              **{**cfg.ours_args, **extra})
            lab = rgb_to_lab(rgb.clamp(0, 1))      # once: the score's and the temporal a*b*
            l, ab = lab[:, :1] / 100.0, ab_to_model(lab[:, 1:])
            out.update({f"{name}_{k}": v for k, v in score(l, ab).items()})
            rgbs[name], abs_[name] = rgb, lab[:, 1:].numpy()
    if "block5" in cfg.temporal:
        rgbs["block5"] = model_to_rgb(*block5)
    if "naive" in cfg.temporal:
        l, ab = naive_window(model_r, model_c, grey, refs, cfg.device)
        ab = saturated(ab, cfg.saturation)              # as the protocol's own output
        out.update({f"naive_{k}": v for k, v in score(l, ab).items()})
        rgbs["naive"] = model_to_rgb(l, ab)
    out["temporal"] = {name: temporal_metrics(rgb.numpy(), ab=abs_.get(name))
                       for name, rgb in rgbs.items()}
    return out
