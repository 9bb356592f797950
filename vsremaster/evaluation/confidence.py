"""Does the match confidence mean something? Its rank correlation with the colour error.

Inside the protocol's pass (protocol.py, `EvalConfig.confidence`: the same frames,
deterioration, references and blocks of 5), each frame's colour error against the ground
truth (RMS of a*b*, CIE Lab units; and the mean CIEDE2000 of the true L* with the
predicted a*b*, colour alone) beside its mean match confidence (model.confidence, from
the restored frame). A meaningful confidence falls where the error rises: a negative
Spearman correlation.
"""
from __future__ import annotations

import numpy as np
import torch
from kornia.color import rgb_to_lab

from ..color.lab import model_to_ab
from .metrics import ciede2000


def ranks(values) -> np.ndarray:
    """Ranks from 0, ties sharing their mean rank."""
    v = np.asarray(values, np.float64)
    order = np.argsort(v, kind="stable")
    r = np.empty(len(v))
    r[order] = np.arange(len(v))
    for value in np.unique(v):
        same = v == value
        if same.sum() > 1:
            r[same] = r[same].mean()
    return r


def spearman(a, b) -> float:
    """Spearman's rank correlation (NaN when either side is constant or has < 2 values)."""
    if len(a) != len(b):
        raise ValueError("spearman: sequences of different lengths")
    if len(a) < 2:
        return float("nan")
    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


@torch.no_grad()
def frame_confidence(model_c, l: torch.Tensor, refs: torch.Tensor | None, device="cpu") -> np.ndarray:
    """Each frame's mean match confidence: restored L [T, 1, H, W], references
    [N, 3, Hr, Wr] (or None: all 0); one frame per call, as the filter computes it."""
    model_c.eval()
    enc = model_c.encode_refs(refs[None].to(device)) if refs is not None else None
    out = []
    for t in range(l.shape[0]):
        conf = model_c.encode_frame_batch(l[t:t + 1].to(device), enc, True)[2]
        out.append(float(conf.double().mean()))
    return np.array(out)


def frame_errors(l_true: torch.Tensor, ab_pred: torch.Tensor, ab_true: torch.Tensor,
                 rgb_true: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: (RMS a*b* error, mean CIEDE2000 of true L* with predicted a*b*)."""
    a_pred, a_true = model_to_ab(ab_pred), model_to_ab(ab_true)
    rms = ((a_pred - a_true) ** 2).mean(dim=(1, 2, 3)).sqrt()
    lab_pred = torch.cat([l_true.clamp(0, 1) * 100.0, a_pred], 1)
    de = ciede2000(lab_pred, rgb_to_lab(rgb_true), dim=1).mean(dim=(1, 2))
    return rms.double().numpy(), de.numpy()


def confidence_figures(model_c, l_pred: torch.Tensor, ab_pred: torch.Tensor,
                       refs: torch.Tensor | None, l_true: torch.Tensor, ab_true: torch.Tensor,
                       rgb_true: torch.Tensor, device="cpu") -> dict:
    """Per frame of one remastered clip (the protocol's values): errors and confidence,
    and their Spearman correlations."""
    conf = frame_confidence(model_c, l_pred, refs, device)
    rms, de = frame_errors(l_true, ab_pred, ab_true, rgb_true)
    return {"confidence": conf.tolist(), "ab_rms": rms.tolist(), "de00_colour": de.tolist(),
            "spearman_ab": spearman(rms, conf), "spearman_de00": spearman(de, conf)}


def summary(per_clip: list[dict]) -> dict:
    """Pooled over every frame of every clip, and the mean of the clips' own figures."""
    conf = np.concatenate([r["confidence"] for r in per_clip])
    rms = np.concatenate([r["ab_rms"] for r in per_clip])
    de = np.concatenate([r["de00_colour"] for r in per_clip])
    within = lambda key: float(np.nanmean([r[key] for r in per_clip])) \
        if any(np.isfinite(r[key]) for r in per_clip) else float("nan")       # noqa: E731
    return {"spearman_ab": spearman(rms, conf), "spearman_de00": spearman(de, conf),
            "within_clip_spearman_ab": within("spearman_ab"),
            "within_clip_spearman_de00": within("spearman_de00"), "frames": int(len(conf))}


def table(per_clip: list[dict], pooled: dict) -> str:
    """One row per clip (`clip`: its name) and the pooled figures."""
    head = f"{'clip':<26} {'frames':>6} {'mean conf':>9} {'rho(ab)':>8} {'rho(dE00)':>9}"
    lines = [head, "-" * len(head)]
    for r in per_clip:
        lines.append(f"{r['clip'][:26]:<26} {len(r['confidence']):>6} "
                     f"{np.mean(r['confidence']):>9.4f} {r['spearman_ab']:>8.3f} "
                     f"{r['spearman_de00']:>9.3f}")
    lines.append(f"{'all frames (pooled)':<26} {pooled['frames']:>6} {'':>9} "
                 f"{pooled['spearman_ab']:>8.3f} {pooled['spearman_de00']:>9.3f}")
    return "\n".join(lines)
