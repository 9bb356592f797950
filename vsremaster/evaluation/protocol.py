"""The paper's evaluation protocol (Sec. 5.1) with its baselines, on any colour clip.

1. Read the clip's first `frames` frames (cv2) and resize them to the filter's processing
   size (`model_size`: short edge `mindim`, 320, both sides rounded down to multiples of
   16): this is the ground truth.
2. Make them grey (model L = L*/100) and deteriorate them with the fixed evaluation
   settings (`deterioration.EVALUATION`, seeded).
3. Remaster: the restoration network, then the colorization network, on consecutive
   chunks of 5 frames, with references = the first frame (default) or every N-th frame
   (`refs_every`), placed on a 256-short-edge canvas as the official script does; or
   none (`no_refs`: what `Remaster(refs=None)` asks of the model). With `color_mindim`
   the colorization runs at that short edge as the filter's `color_mindim` runs it (the
   restored L brought down, the ab brought back up: `vsremaster.model.sizes`). With `saturation`
   the model's a*b* are scaled as the filter's `saturation` scales them
   (`finish.compose.saturated`) before anything is scored.
4. Score PSNR on L (restoration), on ab (colorization; model ab units in [0, 1]), on all
   channels (sRGB in [0, 1]), mean CIEDE2000 and mean |ab error| (CIELAB a*, b* units),
   against two baselines in the same run:
   - `input`: the deteriorated grey clip as it is (neutral ab);
   - `transfer` (not with `no_refs`): Reinhard et al. 2001 global colour transfer from the references onto the
     deteriorated grey clip (per-channel mean/std matching, in CIELAB rather than the
     paper's l-alpha-beta; on a grey frame a*b* have no spread, so it paints the
     references' mean colour, and L* gets the references' mean and contrast).
5. With `temporal` methods (`consistency`): the same clip through the real filter
   (`ours`) and the naive 15-frame window as well, scored the same way, and the
   temporal metrics (`temporal`) of every method's output and of the clip itself.
6. With `confidence`: each frame's match confidence and colour error of step 3's
   output, and their rank correlation (`confidence.confidence_figures`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from kornia.color import rgb_to_lab

from ..color.lab import model_to_ab, model_to_rgb, rgb_to_model
from ..finish.compose import saturated
from ..frames.source import processing_size
from ..model import to_colour_size, to_model_size
from ..training.data import read_video
from ..training.deterioration import EVALUATION, EVALUATION_SEED, Deteriorator, Settings, make_bank
from .metrics import mean_abs_error, mean_ciede2000, psnr

REF_SHORT_EDGE = 256
NEUTRAL_AB = 128.0 / 255.0


@dataclass
class EvalConfig:
    frames: int = 90
    refs_every: int | None = None       # None: the first frame only
    no_refs: bool = False               # colorize without any reference
    mindim: int = 320
    chunk: int = 5
    device: str = "cpu"
    seed: int = EVALUATION_SEED
    settings: Settings = field(default_factory=lambda: EVALUATION)
    #: methods scored for temporal consistency (`consistency.METHODS`; () for none)
    temporal: tuple[str, ...] = ()
    weights: str | None = None          # the weights file (the filter loads it itself)
    ours_args: dict = field(default_factory=dict)          # extra filter arguments
    ours_variants: tuple[dict, ...] = ()                   # more ours runs, each with these
    #: per-frame match confidence against colour error, under the result's `confidence`
    confidence: bool = False
    #: short edge the colorization runs at, as the filter's `color_mindim` (None: mindim)
    color_mindim: int | None = None
    #: factor on the model's a*b*, as the filter's `saturation` (1.0: as the model made them)
    saturation: float = 1.0


def model_size(frames: np.ndarray, mindim: int = 320) -> tuple[int, int]:
    """(H, W) the networks see for frames [T, H, W, 3]: the filter's own processing size
    (short edge `mindim`, both sides rounded down to multiples of 16)."""
    width, height = processing_size(frames.shape[2], frames.shape[1], mindim)
    return height, width


def reference_canvas(refs: list[np.ndarray], short_edge: int = REF_SHORT_EDGE) -> torch.Tensor:
    """Float RGB references [H, W, 3] in [0, 1] -> [N, 3, Hr, Wr] on one black canvas.

    The canvas's short edge is `short_edge` and its aspect the references' mean aspect,
    sides rounded down to multiples of 16; each reference is scaled to fit and centred.
    """
    aspect = float(np.mean([r.shape[1] / r.shape[0] for r in refs]))
    if aspect >= 1:
        ch, cw = short_edge, int(short_edge * aspect) // 16 * 16
    else:
        ch, cw = int(short_edge / aspect) // 16 * 16, short_edge
    out = np.zeros((len(refs), ch, cw, 3), np.float32)
    for i, r in enumerate(refs):
        s = min(ch / r.shape[0], cw / r.shape[1])
        h, w = max(1, int(r.shape[0] * s)), max(1, int(r.shape[1] * s))
        img = cv2.resize(r.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
        y, x = (ch - h) // 2, (cw - w) // 2
        out[i, y:y + h, x:x + w] = img
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def to_tensor(frames: np.ndarray, size: tuple[int, int] | None = None) -> torch.Tensor:
    """uint8 RGB [T, H, W, 3] -> float [T, 3, H', W'] in [0, 1], resized to `size` (H', W')."""
    if size is not None:
        frames = np.stack([cv2.resize(f, (size[1], size[0]), interpolation=cv2.INTER_AREA)
                           for f in frames])
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(255.0)


@torch.no_grad()
def remaster(model_r, model_c, grey: torch.Tensor, refs: torch.Tensor | None,
             chunk: int = 5, device="cpu",
             colour_size: tuple[int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the networks directly: grey L [T, 1, H, W] -> (restored L [T, 1, H, W], ab [T, 2, H, W]).

    Consecutive chunks of `chunk` frames, no overlap; references [N, 3, Hr, Wr] encoded once.
    colour_size: (h, w) the colorization runs at, as the filter's `color_mindim` (None: H, W).
    """
    model_r.eval()
    model_c.eval()
    enc = model_c.encode_refs(refs[None].to(device)) if refs is not None else None
    ls, abs_ = [], []
    for s in range(0, grey.shape[0], chunk):
        x = grey[s:s + chunk].transpose(0, 1)[None].to(device)       # [1, 1, t, H, W]
        restored = model_r(x)
        l_c = restored
        if colour_size is not None:
            l_c = to_colour_size(restored[0].transpose(0, 1), colour_size).transpose(0, 1)[None]
        ab = model_c(l_c, enc)[0].transpose(0, 1)
        ls.append(restored[0].transpose(0, 1).float().cpu())
        abs_.append(to_model_size(ab, restored.shape[-2:]).float().cpu())
    return torch.cat(ls), torch.cat(abs_)


def reinhard_transfer(grey: torch.Tensor, refs: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Reinhard et al. 2001 global colour transfer (in CIELAB) from `refs` onto grey L.

    grey: model L [T, 1, H, W]; refs: float RGB [H, W, 3]. Returns model (L, ab).
    """
    lab = torch.cat([rgb_to_lab(torch.from_numpy(r).permute(2, 0, 1).float()).flatten(1)
                     for r in refs], dim=1)                          # [3, P]
    mu, sd = lab.mean(1), lab.std(1)
    src = grey * 100.0
    src_mu = src.mean(dim=(1, 2, 3), keepdim=True)
    src_sd = src.std(dim=(1, 2, 3), keepdim=True)
    l_out = torch.where(src_sd > 1e-6, (src - src_mu) * (sd[0] / src_sd.clamp_min(1e-6)) + mu[0],
                        torch.full_like(src, float(mu[0])))
    # a*, b* of a grey frame have zero spread: the transfer is the references' mean colour.
    ab = torch.empty(grey.shape[0], 2, *grey.shape[2:])
    ab[:, 0], ab[:, 1] = mu[1], mu[2]
    return (l_out / 100.0).clamp(0, 1), ((ab + 128.0) / 255.0).clamp(0, 1)


def score(l_pred: torch.Tensor, ab_pred: torch.Tensor, rgb_true: torch.Tensor,
          l_true: torch.Tensor, ab_true: torch.Tensor,
          lab_true: torch.Tensor | None = None) -> dict:
    """PSNR on L, ab, RGB, mean CIEDE2000 and mean |ab error| of one prediction
    (all [T, C, H, W]); the ab error is in CIELAB units, over a* and b* alike.
    `lab_true`: rgb_to_lab(rgb_true), when the caller scores several predictions."""
    rgb_pred = model_to_rgb(l_pred, ab_pred)
    lab_pred = torch.cat([l_pred.clamp(0, 1) * 100.0, model_to_ab(ab_pred)], dim=1)
    if lab_true is None:
        lab_true = rgb_to_lab(rgb_true)
    return {"psnr_l": psnr(l_pred, l_true), "psnr_ab": psnr(ab_pred, ab_true),
            "psnr_all": psnr(rgb_pred, rgb_true),
            "ciede2000": mean_ciede2000(lab_pred, lab_true, dim=1),
            "ab_error": mean_abs_error(lab_pred[:, 1:], lab_true[:, 1:])}


def reference_indices(n: int, refs_every: int | None) -> list[int]:
    return [0] if not refs_every else list(range(0, n, refs_every))


def evaluate_frames(frames: np.ndarray, model_r, model_c, cfg: EvalConfig,
                    deteriorator: Deteriorator | None = None) -> dict:
    """The protocol on uint8 RGB frames [T, H, W, 3]; returns the metrics of all three
    (and the temporal and confidence figures `cfg` asks for)."""
    size = model_size(frames, cfg.mindim)
    rgb = to_tensor(frames, size)
    l_true, ab_true = rgb_to_model(rgb)
    det = deteriorator or Deteriorator(make_bank(seed=cfg.seed))
    grey = torch.from_numpy(det.deteriorate(l_true[:, 0].numpy(), np.random.default_rng(cfg.seed),
                                            cfg.settings))[:, None]
    ref_frames = [] if cfg.no_refs else [frames[i].astype(np.float32) / 255.0
                                         for i in reference_indices(len(frames), cfg.refs_every)]
    refs = reference_canvas(ref_frames) if ref_frames else None
    colour = model_size(frames, cfg.color_mindim) if cfg.color_mindim else None
    l_pred, ab_pred = remaster(model_r, model_c, grey, refs, cfg.chunk, cfg.device, colour)
    ab_pred = saturated(ab_pred, cfg.saturation)
    lab_true = rgb_to_lab(rgb)

    def judge(l, ab):                   # every method against the same truth
        return score(l, ab, rgb, l_true, ab_true, lab_true)

    res = judge(l_pred, ab_pred)
    base = judge(grey, torch.full_like(ab_true, NEUTRAL_AB))
    res.update({f"input_{k}": v for k, v in base.items()})
    if ref_frames:                      # the transfer needs references to transfer from
        tl, tab = reinhard_transfer(grey, ref_frames)
        trans = judge(tl, tab)
        res.update({f"transfer_{k}": v for k, v in trans.items()})
    res.update(frames=int(len(frames)), height=size[0], width=size[1], refs=len(ref_frames))
    if cfg.temporal:
        from .consistency import evaluate_methods
        refs_u8 = [] if cfg.no_refs else \
            [frames[i] for i in reference_indices(len(frames), cfg.refs_every)]
        res.update(evaluate_methods(cfg, model_r, model_c, grey, refs, refs_u8,
                                    (l_pred, ab_pred), rgb, judge))
    if cfg.confidence:
        from .confidence import confidence_figures
        res["confidence"] = confidence_figures(model_c, l_pred, ab_pred, refs, l_true, ab_true,
                                               rgb, cfg.device)
    return res


def evaluate_clip(path, model_r, model_c, cfg: EvalConfig) -> dict:
    frames = read_video(path, cfg.frames)
    res = evaluate_frames(frames, model_r, model_c, cfg)
    res["clip"] = Path(path).name
    return res


METRIC_KEYS = tuple(f"{p}{m}" for m in ("psnr_l", "psnr_ab", "psnr_all", "ciede2000", "ab_error")
                    for p in ("", "input_", "transfer_"))


SCORES = ("psnr_l", "psnr_ab", "psnr_all", "ciede2000")


def _methods(r: dict) -> list[tuple[str, str]]:
    """(label, key prefix) of every scored method in a result, the protocol's first."""
    extra = [k[:-len("_psnr_l")] for k in r if k.endswith("_psnr_l")
             and k[:-len("_psnr_l")] not in ("input", "transfer")]
    return [("block5", ""), ("input", "input_"), ("transfer", "transfer_")] + \
        [(m, m + "_") for m in extra]


def summarise(results: list[dict]) -> dict:
    """Mean of every metric all clips have (no `transfer_*` without references) over
    clips (a clip with infinite PSNR keeps the mean infinite); the temporal metrics under
    `temporal` (NaN where a clip had none)."""
    keys = list(METRIC_KEYS) + [p + k for _, p in _methods(results[0])[3:] for k in SCORES]
    mean = {k: float(np.mean([r[k] for r in results])) for k in keys
            if all(k in r for r in results)}
    if all("temporal" in r for r in results):
        methods = results[0]["temporal"]
        mean["temporal"] = {m: {k: float(np.nanmean([r["temporal"][m][k] for r in results]))
                                for k in methods[m] if k != "seam_at"} for m in methods}
    return mean


def table(results: list[dict], mean: dict | None = None) -> str:
    """A plain-text table: one row per clip and method (block5 = the protocol's blocks of
    5, input, transfer if any, then ours and naive when scored)."""
    head = (f"{'clip':<26} {'method':<9} {'PSNR L':>7} {'PSNR ab':>8} {'PSNR all':>9} "
            f"{'dE00':>6} {'|ab err|':>8}")
    lines = [head, "-" * len(head)]
    rows = [(r["clip"], r) for r in results] + ([("mean", mean)] if mean and len(results) > 1 else [])
    for name, r in rows:
        for method, p in _methods(r):
            if p + "psnr_l" not in r:
                continue
            err = r.get(p + "ab_error")
            lines.append(f"{name[:26]:<26} {method:<9} {r[p + 'psnr_l']:>7.2f} "
                         f"{r[p + 'psnr_ab']:>8.2f} {r[p + 'psnr_all']:>9.2f} "
                         f"{r[p + 'ciede2000']:>6.2f} {'-' if err is None else f'{err:.2f}':>8}")
    if any("temporal" in r for _, r in rows):
        lines += ["", temporal_table(rows)]
    return "\n".join(lines)


def temporal_table(rows: list[tuple[str, dict]]) -> str:
    """Mean |delta ab| per pair, seam figure (largest local step, at pair t -> t+1) and CDC
    per clip and method."""
    head = (f"{'clip':<26} {'method':<9} {'mean|dab|':>9} {'seam':>7} {'at':>4} {'CDC':>8} "
            f"{'CDC d1':>8} {'CDC d2':>8} {'CDC d4':>8}")
    lines = [head, "-" * len(head)]
    for name, r in rows:
        for method, m in r.get("temporal", {}).items():
            at = m.get("seam_at")
            lines.append(f"{name[:26]:<26} {method:<9} {m['mean_dab']:>9.4f} {m['seam']:>7.3f} "
                         f"{'-' if at is None else at:>4} {m['cdc']:>8.5f} {m['cdc_d1']:>8.5f} "
                         f"{m['cdc_d2']:>8.5f} {m['cdc_d4']:>8.5f}")
    return "\n".join(lines)
