"""The resolution sweep (`bench --sweep`): ours' peak memory against the baseline's
attention memory, 360p to 1080p (measured on CUDA; on a CPU the video sizes are
analytic and one measured row is added at the configured size)."""
from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from . import baseline, ours
from .config import Config, device_name, log, model_size
from .inputs import Inputs, make_inputs, ref_shape, resolve_weights, small_inputs
from .measure import free, is_oom, mb, rounded
from .report import fmt

SWEEP_SIZES = (("360p", 640, 360), ("480p", 854, 480), ("720p", 1280, 720),
               ("1080p", 1920, 1080))
#: Reference GPUs for the sweep's analytic "fits" columns (bytes).
GPUS = (("1080Ti-11GB", 11 << 30), ("H100-80GB", 80 << 30))


def sweep(cfg: Config, frames: int, sizes=SWEEP_SIZES) -> dict:
    """Peak memory of ours against the baseline's attention memory, 360p to 1080p."""
    rows = []
    cuda = cfg.device.type == "cuda"
    plan = list(sizes)
    if not cuda:   # on a CPU: the configured size measured, the video sizes analytic
        plan = [("bench", cfg.width, cfg.height)] + plan
    with tempfile.TemporaryDirectory(prefix="vsremaster-sweep-") as tmp:
        folder = Path(tmp)
        weights, source = resolve_weights(cfg.weights, folder)
        small = small_inputs(cfg, folder)
        for label, width, height in plan:
            w, h = model_size(width, height)
            rh, rw = ref_shape(w, h, cfg.ref_size)
            att = baseline.attention_memory(w, h, cfg.refs, rh, rw)
            row = {"name": label, "width": w, "height": h, "ref_h": rh, "ref_w": rw,
                   "baseline_attn_matrix_gb": round(att["largest_matrix_bytes"] / 2**30, 3),
                   "baseline_attn_peak_gb": round(att["peak_bytes"] / 2**30, 3),
                   "measured": cuda or label == "bench"}
            for gpu, capacity in GPUS:
                row[f"baseline_attn_fits_{gpu}"] = att["peak_bytes"] < capacity
            if row["measured"]:
                log(f"sweep {label}: {w}x{h}, {frames} frames")
                sub = Config(**{**cfg.__dict__, "width": w, "height": h, "frames": frames})
                inputs = make_inputs(w, h, frames, cfg.refs, cfg.ref_size, folder, cfg.seed,
                                     tag=label)
                _measure_row(sub, row, inputs, small, weights, att)
                del inputs
                free(cfg.device)
            rows.append(row)
            log(f"sweep {label}: {row}")
    summary = {"mode": "sweep", "device": device_name(cfg.device), "refs": cfg.refs,
               "ref_size": cfg.ref_size, "frames": frames, "weights": source, "rows": rows}
    print_sweep(summary)
    return summary


def _measure_row(cfg: Config, row: dict, inputs: Inputs, small: Inputs, weights: Path,
                 att: dict) -> None:
    key = "vram" if cfg.device.type == "cuda" else "rss"
    try:
        r = ours.measure(cfg, inputs, small, weights, keep=set())
        row["ours_fps"] = rounded(r.fps)
        row[f"ours_peak_{key}_mb"] = mb(r.vram_peak if key == "vram" else r.rss_peak)
        row["ours_precision"] = r.precision
    except Exception as e:   # noqa: BLE001 - a row that fails is reported, not fatal
        row["ours_error"] = "out of memory" if is_oom(e) else f"{type(e).__name__}: {e}"
        free(cfg.device)
    if cfg.device.type == "cuda":
        available = torch.cuda.mem_get_info(cfg.device)[0]
        if att["peak_bytes"] > available:
            row["baseline"] = (f"does not fit: attention alone needs {att['peak_bytes'] / 2**30:.1f} "
                               f"GB, {available / 2**30:.1f} GB free")
            return
    one_block = Config(**{**cfg.__dict__, "warmup": "none"})
    try:
        r = baseline.measure(one_block, inputs, small, weights, keep=set(), frames=baseline.BLOCK)
        row[f"baseline_peak_{key}_mb"] = mb(r.vram_peak if key == "vram" else r.rss_peak)
        row["baseline"] = "fits (one 5-frame block measured)"
    except Exception as e:   # noqa: BLE001
        if not is_oom(e):
            raise
        row["baseline"] = "out of memory (one 5-frame block)"
        free(cfg.device)


def print_sweep(summary: dict) -> None:
    print(f"Resolution sweep: {summary['refs']} references of {summary['ref_size']} px, "
          f"{summary['device']}; ours over {summary['frames']} frames, the baseline's "
          "attention for one 5-frame block")
    mem = "VRAM" if summary["device"].startswith("cuda") else "RSS"
    print(f"{'size':<7} {'model':>10} {'ours fps':>9} {'ours peak ' + mem + ' MB':>18} "
          f"{'base L*S GB':>12} {'base attn peak GB':>18} {'base measured MB':>17}  "
          f"fits 11GB/80GB  baseline")
    for row in summary["rows"]:
        key = "vram" if mem == "VRAM" else "rss"
        ours_peak = row.get(f"ours_peak_{key}_mb")
        fits = "/".join("yes" if row[f"baseline_attn_fits_{g}"] else "no" for g, _ in GPUS)
        note = row.get("baseline") or ("analytic only" if not row["measured"] else "")
        if row.get("ours_error"):
            note += f"; ours: {row['ours_error']}"
        print(f"{row['name']:<7} {str(row['width']) + 'x' + str(row['height']):>10} "
              f"{fmt(row.get('ours_fps'), '9.3f')} {fmt(ours_peak, '18.1f')} "
              f"{row['baseline_attn_matrix_gb']:>12.2f} {row['baseline_attn_peak_gb']:>18.2f} "
              f"{fmt(row.get(f'baseline_peak_{key}_mb'), '17.1f')}  {fits:>14}  {note}")
