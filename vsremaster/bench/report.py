"""The benchmark's report: the sanity comparison, the JSON summary and the table.

Results are keyed by method name in run order: `ours`, any `ours[key=value]` variants
(`--ours-variant`), `baseline`, `naive`.
"""
from __future__ import annotations

import os

import cv2
import numpy as np

from .config import DTYPE_NAMES, Config, device_name
from .measure import MethodResult, mb, process_peak_rss, rounded


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.clip(rgb, 0, 1).astype(np.float32), cv2.COLOR_RGB2Lab)


def _pairs(names: list[str]) -> list[tuple[str, str]]:
    """Which outputs to compare: every ours run with naive and baseline, the variants
    with plain ours, and baseline with naive."""
    ours = [n for n in names if n.startswith("ours")]
    pairs = [(a, b) for a in ours for b in ("naive", "baseline")]
    pairs += [("ours", v) for v in ours if v != "ours"]
    return [(a, b) for a, b in pairs + [("baseline", "naive")] if a in names and b in names]


def compare(results: dict[str, MethodResult]) -> dict:
    """Mean absolute differences (CIE Lab units) between methods' final RGB outputs,
    over the frames every method kept."""
    names = [n for n, r in results.items() if r.outputs]
    common = sorted(set.intersection(*(set(results[n].outputs) for n in names))) if names else []
    out: dict = {"compared_frames": len(common)}
    if not common:
        return out
    labs = {n: np.stack([_lab(results[n].outputs[i]) for i in common]) for n in names}
    for a, b in _pairs(names):
        out[f"ab_mad_{a}_{b}"] = round(float(np.abs(labs[a][..., 1:] - labs[b][..., 1:]).mean()), 4)
        out[f"l_mad_{a}_{b}"] = round(float(np.abs(labs[a][..., 0] - labs[b][..., 0]).mean()), 4)
    for n in names:
        out[f"ab_mean_abs_{n}"] = round(float(np.abs(labs[n][..., 1:]).mean()), 4)
    return out


def _ratio(a, b):
    return round(a / b, 3) if a and b else None


def summarise(cfg: Config, results: dict[str, MethodResult], source: str, dtype) -> dict:
    """The JSON summary; `dtype`: the precision ours and naive ran at (when ours did not run)."""
    w, h = cfg.model_size

    def get(name, attr):
        r = results.get(name)
        return None if r is None else getattr(r, attr)

    ours_fps, base_fps, naive_fps = get("ours", "fps"), get("baseline", "fps"), get("naive", "fps")
    summary = {
        "ours_fps": rounded(ours_fps), "baseline_fps": rounded(base_fps),
        "naive_fps": rounded(naive_fps),
        "speedup": _ratio(ours_fps, base_fps), "naive_speedup": _ratio(ours_fps, naive_fps),
        "peak_rss_mb": mb(get("ours", "rss_peak")), "peak_vram_mb": mb(get("ours", "vram_peak")),
        "device": device_name(cfg.device), "width": w, "height": h, "refs": cfg.refs,
        "ref_size": cfg.ref_size, "frames": cfg.frames,
        "precision": get("ours", "precision") or DTYPE_NAMES[dtype],
    }
    for name, r in results.items():
        if name.startswith("ours["):
            summary[f"{name}_fps"] = rounded(r.fps)
            summary[f"{name}_speedup"] = _ratio(r.fps, base_fps)
            summary[f"{name}_vs_ours"] = _ratio(r.fps, ours_fps)
        summary[f"{name}_ms_per_frame"] = rounded(r.ms_per_frame, 2)
        summary[f"{name}_cpu_ms_per_frame"] = rounded(r.cpu_ms_per_frame, 2)
        summary[f"{name}_peak_rss_mb"] = mb(r.rss_peak)
        summary[f"{name}_rss_growth_mb"] = mb(r.rss_peak - r.rss_start)
        summary[f"{name}_process_peak_rss_mb"] = mb(r.process_rss_peak)
        summary[f"{name}_peak_vram_mb"] = mb(r.vram_peak)
        summary[f"{name}_precision"] = r.precision
        summary[f"{name}_output_shape"] = [r.frames, *r.shape] if r.shape else None
        summary[f"{name}_info"] = r.info
    summary["process_peak_rss_mb"] = mb(max([process_peak_rss()] + [
        r.process_rss_peak for r in results.values() if r.process_rss_peak]))
    summary["isolated"] = cfg.isolate
    summary["pid"] = os.getpid()
    summary.update(compare(results))
    summary["weights"] = source
    summary["warmup"] = cfg.warmup_mode
    if cfg.ours_args:
        summary["ours_args"] = {k: str(v) for k, v in cfg.ours_args.items()}
    if cfg.width != w or cfg.height != h:
        summary["requested_size"] = [cfg.width, cfg.height]
    return summary


def fmt(x, spec: str) -> str:
    """`format(x, spec)`, or a right-aligned dash for None."""
    if x is None:
        width = spec.split(".")[0]
        return "-".rjust(int(width) if width.isdigit() else 0)
    return format(x, spec)


def print_table(cfg: Config, results: dict[str, MethodResult], summary: dict) -> None:
    w, h = cfg.model_size
    print(f"DeepRemaster benchmark: {cfg.frames} frames of {w}x{h}, {cfg.refs} references "
          f"of {cfg.ref_size} px, {summary['device']}")
    print(f"weights: {summary['weights']}; warm-up: {cfg.warmup_mode} (untimed); "
          + ("each method in a process of its own" if cfg.isolate else "all in one process"))
    if cfg.ours_args:
        print(f"ours: filter arguments {summary['ours_args']}")
    wide = max([9] + [len(n) for n in results])
    print(f"{'method':<{wide}} {'prec':<5} {'frames':>6} {'ms/frame':>10} {'fps':>8} "
          f"{'CPU ms/frame':>13} {'peak RSS MB':>12} {'RSS +MB':>9} {'peak VRAM MB':>13}")
    for name, r in results.items():
        print(f"{name:<{wide}} {r.precision:<5} {r.frames:>6} {fmt(r.ms_per_frame, '10.1f')} "
              f"{fmt(r.fps, '8.3f')} {fmt(r.cpu_ms_per_frame, '13.1f')} "
              f"{fmt(mb(r.rss_peak), '12.1f')} "
              f"{fmt(mb(r.rss_peak - r.rss_start), '9.1f')} {fmt(mb(r.vram_peak), '13.1f')}")
    print(f"speedup ours/baseline: {fmt(summary['speedup'], '.3f')}   "
          f"ours/naive: {fmt(summary['naive_speedup'], '.3f')}   "
          f"process peak RSS: {fmt(summary['process_peak_rss_mb'], '.1f')} MB")
    for name in results:
        if name.startswith("ours["):
            print(f"speedup {name}/baseline: {fmt(summary[f'{name}_speedup'], '.3f')}   "
                  f"{name}/ours: {fmt(summary[f'{name}_vs_ours'], '.3f')}")
    for name, r in results.items():
        if name.startswith("ours"):
            print(f"{name}: engine.runs {r.info.get('runs')}, build (scene scan) "
                  f"{r.info.get('build_s')} s")
    for name, r in results.items():
        if "split_s" in r.info:
            print(f"{name}: time split s {r.info['split_s']}, calls {r.info['split_calls']}")
    if "naive" in results and results["naive"].frames < cfg.frames:
        print(f"naive: timed {results['naive'].frames} of {cfg.frames} output frames "
              "(every output frame costs the same window)")
    diffs = {k: v for k, v in summary.items() if k.startswith(("ab_", "l_mad", "compared"))}
    if diffs:
        print("sanity (mean abs difference of final outputs, CIE Lab units): "
              + ", ".join(f"{k}={v}" for k, v in diffs.items()))
