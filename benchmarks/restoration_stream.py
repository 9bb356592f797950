"""Restoration cost and memory: streamed runs (the filter now) vs. cells with context.

Until this change the engine restored each R-cell from its frames plus 13 context
frames each side (exact, but the context was recomputed for every cell, and the cell
size came from the memory budget minus those 26 frames, so large frames got 8-frame
cells: 34 frames of work and memory for 8). Now NetworkR is streamed over each run of
cells, carrying two frames per layer (`vsremaster.model.streaming`).

Both methods restore the same grey frames with the same folded NetworkR (golden
weights, released size) at the same size, each in its own process so its peak RSS
(VmHWM) is its own:
- `windowed`: the old policy, reimplemented here: cell size from the old rule
  (8 GB budget, 210 B/px per element byte, minus 26 context frames, at least 8), one
  NetworkR pass per cell over the cell and its clipped context;
- `streamed`: the real filter, `build(clip, colorize=False)`, frames pulled through
  VapourSynth (restoration only; VapourSynth and composition included in its time).
The outputs are compared (max abs difference of the restored luma). Prints a table,
then one JSON line.

    python benchmarks/restoration_stream.py                  # 640x352, 30 frames
    python benchmarks/restoration_stream.py --width 1280 --height 720 --frames 16
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def _status_mb(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_rss_mb() -> float:
    return _status_mb("VmHWM")


def _rss_mb() -> float:
    return _status_mb("VmRSS")


def _frames(n: int, h: int, w: int):
    from clips import moving_pattern
    return moving_pattern(n, h, w, seed=11)


def old_cell_size(pw: int, ph: int) -> int:
    per_frame = 210 * 4 * pw * ph
    return int(min(max((8 << 30) // per_frame - 26, 8), 256))


def run_windowed(args, weights: Path, out: Path) -> dict:
    import numpy as np
    import torch
    from vsremaster.model.checkpoint import load_checkpoint
    from vsremaster.model.fold import fold_batchnorm
    model_r, _ = load_checkpoint(weights)
    fold_batchnorm(model_r)
    frames = torch.from_numpy(_frames(args.frames, args.height, args.width))
    size = old_cell_size(args.width, args.height)
    rss0 = _rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    outs, work = [], 0
    with torch.inference_mode():
        for start in range(0, args.frames, size):
            stop = min(start + size, args.frames)
            lo, hi = max(start - 13, 0), min(stop + 13, args.frames)
            y = model_r(frames[lo:hi][None, None])[0, 0]
            outs.append(y[start - lo:stop - lo])
            work += hi - lo
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    np.save(out, torch.cat(outs).numpy())
    return {"seconds": seconds, "cpu_seconds": cpu, "cell": size, "frames_computed": work,
            "rss_start_mb": rss0}


def run_streamed(args, weights: Path, out: Path) -> dict:
    import numpy as np
    import vapoursynth as vs
    from clips import from_arrays
    from vsremaster.remaster import build
    import torch
    from vsremaster.engine.models import shared_models
    clip = from_arrays(_frames(args.frames, args.height, args.width), vs.GRAYS)
    models = shared_models(weights, torch.device("cpu"), torch.float32)  # loaded untimed
    rss0 = _rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    pipe = build(clip, weights=str(weights), colorize=False, device_index=-1,
                 mindim=min(args.width, args.height))
    stream, pushed = pipe.engine.stream, [0]
    push = stream.push

    def counting(state, x, last=False):
        pushed[0] += x.shape[2]
        return push(state, x, last)
    stream.push = counting
    got = np.stack([np.asarray(f[0]) for f in pipe.clip.frames(close=True)])
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    np.save(out, got)
    del models
    return {"seconds": seconds, "cpu_seconds": cpu, "cell": pipe.engine.restore_grid.size,
            "frames_computed": pushed[0], "rss_start_mb": rss0}


def child(args) -> None:
    import torch
    torch.set_num_threads(args.threads)
    fn = {"windowed": run_windowed, "streamed": run_streamed}[args.method]
    res = fn(args, Path(args.weights), Path(args.out))
    res["peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(res))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=352)
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--method", help=argparse.SUPPRESS)
    ap.add_argument("--weights", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.width, args.height = args.width // 16 * 16, args.height // 16 * 16
    if args.method:
        return child(args)

    import numpy as np
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import golden_state_dicts
    from vsremaster.model.checkpoint import save_checkpoint
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "golden.safetensors"
        save_checkpoint(weights, *golden_state_dicts(), name="golden")
        for method in ("windowed", "streamed"):
            out = Path(tmp) / f"{method}.npy"
            cmd = [sys.executable, __file__, "--method", method, "--weights", str(weights),
                   "--out", str(out), "--width", str(args.width), "--height", str(args.height),
                   "--frames", str(args.frames), "--threads", str(args.threads)]
            line = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            results[method] = json.loads(line.strip().splitlines()[-1])
        diff = float(np.abs(np.load(Path(tmp) / "windowed.npy")
                            - np.load(Path(tmp) / "streamed.npy")).max())
    print(f"NetworkR (released size, golden weights), {args.width}x{args.height}, "
          f"{args.frames} frames, one scene, CPU, {args.threads} threads")
    print(f"{'method':10} {'cell':>5} {'frames computed':>16} {'s/frame':>8} "
          f"{'CPU s/frame':>12} {'peak RSS MB':>12} {'growth MB':>10}")
    for name, r in results.items():
        r["growth_mb"] = r["peak_rss_mb"] - r["rss_start_mb"]
        print(f"{name:10} {r['cell']:>5} {r['frames_computed']:>16} "
              f"{r['seconds'] / args.frames:>8.2f} {r['cpu_seconds'] / args.frames:>12.2f} "
              f"{r['peak_rss_mb']:>12.0f} {r['growth_mb']:>10.0f}")
    w, s = results["windowed"], results["streamed"]
    summary = {"width": args.width, "height": args.height, "frames": args.frames,
               "windowed_s_per_frame": round(w["seconds"] / args.frames, 3),
               "streamed_s_per_frame": round(s["seconds"] / args.frames, 3),
               "speedup": round(w["seconds"] / s["seconds"], 3),
               "cpu_speedup": round(w["cpu_seconds"] / s["cpu_seconds"], 3),
               "windowed_peak_rss_mb": round(w["peak_rss_mb"]),
               "streamed_peak_rss_mb": round(s["peak_rss_mb"]),
               "windowed_rss_growth_mb": round(w["growth_mb"]),
               "streamed_rss_growth_mb": round(s["growth_mb"]),
               "windowed_frames_computed": w["frames_computed"],
               "streamed_frames_pushed": s["frames_computed"],
               "max_abs_diff": diff}
    print(f"speedup {summary['speedup']} (CPU time {summary['cpu_speedup']}), "
          f"RSS growth {summary['windowed_rss_growth_mb']} -> {summary['streamed_rss_growth_mb']} MB, "
          f"max |difference| {diff:.2e}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
