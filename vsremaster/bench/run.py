"""The benchmark driver: ours, the authors' baseline and the naive window, side by side.

Every method gets the same synthetic grey frames, the same references and
the same weights file (`inputs`):
- `ours`: the real filter (`ours`), plus one run per `--ours-variant` with extra filter
  arguments, named `ours[key=value]`;
- `baseline`: the authors' 5-frame blocks, float32 or, with `--baseline-precision ours`,
  ours' precision (`baseline`);
- `naive`: a centred 15-frame window per output frame (`naive`).

Each method runs in a fresh process of its own (`isolated`: what ran before would
otherwise change its speed), or with `--in-process` all in this one, one after another
(`--sweep` always measures in this process; `--glue` gives each case its own).

Every method is warmed up first with one untimed run ("small": a 64x48 clip, the CPU
default; "full": the measured size, the CUDA default, where cuDNN and the allocator
tune themselves to the shapes). How each is measured: `measure`; the report: `report`;
`--sweep`: `sweep`; `--glue`: `glue`.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from . import baseline, naive, ours
from .config import DTYPES, Config, log, variant_name
from .inputs import make_inputs, resolve_weights, small_inputs
from .isolated import run_here, run_isolated
from .measure import MethodResult
from .report import print_table, summarise


def _keep_frames(n: int, h: int, w: int, naive_only: list[int] | None) -> set[int]:
    if naive_only is not None:
        return set(naive_only)
    count = min(n, max(4, 2**24 // (h * w)))
    return set(np.linspace(0, n - 1, count).round().astype(int).tolist())


def _naive_only(n: int, k: int | None) -> list[int] | None:
    if k is None or k >= n:
        return None
    return sorted(set(np.linspace(0, n - 1, max(1, k)).round().astype(int).tolist()))


def resolve_dtype(cfg: Config, results: dict) -> torch.dtype:
    """The precision of the naive run: ours' where ours ran, else the filter's default."""
    if "ours" in results and results["ours"].precision in DTYPES:
        return DTYPES[results["ours"].precision]
    if cfg.precision == "auto":
        from ..engine.placement import pick_dtype
        return pick_dtype(None, cfg.device)
    return DTYPES[cfg.precision]


def bench(cfg: Config) -> dict:
    """Run the selected methods; return the JSON summary (and print the table)."""
    w, h = cfg.model_size
    with tempfile.TemporaryDirectory(prefix="vsremaster-bench-") as tmp:
        folder = Path(tmp)
        weights, source = resolve_weights(cfg.weights, folder)
        inputs = make_inputs(w, h, cfg.frames, cfg.refs, cfg.ref_size, folder, cfg.seed)
        small = small_inputs(cfg, folder)
        only = _naive_only(cfg.frames, cfg.naive_frames) if "naive" in cfg.methods else None
        keep = _keep_frames(cfg.frames, h, w, only)
        runs = {"ours": lambda: (ours.measure, cfg, inputs, small, weights, keep)}
        if "ours" in cfg.methods:
            for extra in cfg.ours_variants:
                name = variant_name(extra)
                runs[name] = lambda extra=extra, name=name: (
                    ours.measure, cfg, inputs, small, weights, keep, extra, name)
        runs["baseline"] = lambda: (
            baseline.measure, cfg, inputs, small, weights, keep, None,
            resolve_dtype(cfg, results) if cfg.baseline_precision == "ours" else torch.float32)
        runs["naive"] = lambda: (naive.measure, cfg, inputs, small, weights, keep,
                                 resolve_dtype(cfg, results), only)
        execute = run_isolated if cfg.isolate else run_here
        results: dict[str, MethodResult] = {}
        for name, job in runs.items():
            if name.split("[")[0] not in cfg.methods:
                continue
            log(f"{name}: running ({cfg.frames} frames at {w}x{h}, {cfg.refs} refs, "
                f"warm-up {cfg.warmup_mode}, "
                f"{'a process of its own' if cfg.isolate else 'in this process'})")
            results[name] = r = execute(*job())
            log(f"{name}: {r.frames} frames in {r.seconds:.2f} s")
    summary = summarise(cfg, results, source, resolve_dtype(cfg, results))
    print_table(cfg, results, summary)
    return summary


def main(cfg: Config, do_sweep: bool = False, sweep_frames: int | None = None,
         glue: dict | None = None) -> int:
    """`bench`, `--sweep` or `--glue` (`glue`: that run's options); prints the JSON
    summary as the last line."""
    if glue is not None:
        from .glue import glue_bench
        summary = glue_bench(cfg, **glue)
    elif do_sweep:
        from .sweep import sweep
        frames = sweep_frames or (64 if cfg.device.type == "cuda" else 10)
        summary = sweep(cfg, frames)
    else:
        summary = bench(cfg)
    print(json.dumps(summary, default=str), flush=True)
    return 0
