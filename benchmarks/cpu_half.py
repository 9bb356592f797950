"""Half precision on the CPU: bfloat16 against float32, speed and output difference.

The filter renders the bundled sample film (samples/film: the excerpt and its two
references) through VapourSynth with `fp16=False` (float32) and `fp16=True` (bfloat16
on a CPU), frames pulled in order, each run a clip of its own; an untimed warm-up of a
few frames loads each precision first. The runs alternate (float32, bfloat16, float32,
...) --repeat times and the fastest of each counts, which damps other jobs on a shared
machine. The outputs are compared as RGB24 and in CIE Lab (OpenCV, D65):

- `rgb8_*`: |difference| of the 8-bit RGB samples (mean, 99th percentile, largest);
- `dl_*`, `dab_*`: |dL*| and the |da*|, |db*| of the two outputs.

Weights: the bundled model (default), a file, or `golden`: the released architecture
at full size with the golden generated weights (written to a temporary folder, as
`bench` does; needs ../shared).

    python benchmarks/cpu_half.py                          # bundled model, mindim 240, 24 frames
    python benchmarks/cpu_half.py --weights golden --frames 16

Prints figures, then one JSON line.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import vapoursynth as vs

import vsremaster
from vsremaster.engine.models import cpu_bfloat16

ROOT = Path(__file__).resolve().parents[1]
FILM = ROOT / "samples" / "film"


def render(fp16: bool, args, frames: int) -> tuple[np.ndarray, float]:
    """RGB24 frames [n, H, W, 3] of a fresh filter and the seconds they took."""
    core = vs.core
    clip = core.bs.VideoSource(str(FILM / "a-bomb_blast_effects_excerpt.mp4"))[:frames]
    out = vsremaster.Remaster(clip, refs=str(FILM / "refs"), mindim=args.mindim,
                              weights=args.weights, device_index=-1, fp16=fp16)
    out = core.resize.Bicubic(out, format=vs.RGB24, matrix_in_s="709")
    start = time.perf_counter()
    rgb = [np.stack([np.asarray(f[p]) for p in range(3)], -1) for f in out.frames(close=True)]
    return np.stack(rgb), time.perf_counter() - start


def lab(rgb: np.ndarray) -> np.ndarray:
    return np.stack([cv2.cvtColor(f.astype(np.float32) / 255, cv2.COLOR_RGB2Lab) for f in rgb])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", help="weights file (default: the bundled model)")
    ap.add_argument("--mindim", type=int, default=240)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="vsremaster-half-") as tmp:
        if args.weights == "golden":
            from vsremaster.bench.inputs import resolve_weights
            args.weights = str(resolve_weights(None, Path(tmp))[0])
            args.label = "golden (full size)"
        else:
            args.label = args.weights or "bundled"
        return compare(args)


def compare(args) -> int:
    hardware = cpu_bfloat16()
    if hardware is None:
        print("this CPU has no bfloat16 hardware (AMX or AVX512-BF16): nothing to compare")
        print(json.dumps({"cpu_bfloat16": None}))
        return 1
    for fp16 in (False, True):
        render(fp16, args, 3)                                   # warm-up: loads each precision
    best = {False: float("inf"), True: float("inf")}
    outs = {}
    for _ in range(args.repeat):
        for fp16 in (False, True):
            outs[fp16], seconds = render(fp16, args, args.frames)
            best[fp16] = min(best[fp16], seconds)
    d = np.abs(outs[False].astype(np.int16) - outs[True].astype(np.int16))
    la, lb = lab(outs[False]), lab(outs[True])
    dl, dab = np.abs(la[..., 0] - lb[..., 0]), np.abs(la[..., 1:] - lb[..., 1:])
    res = {"cpu_bfloat16": hardware, "weights": args.label, "mindim": args.mindim,
           "frames": args.frames, "fp32_s": round(best[False], 2), "bf16_s": round(best[True], 2),
           "speedup": round(best[False] / best[True], 3),
           "rgb8_mean": round(float(d.mean()), 3), "rgb8_p99": float(np.percentile(d, 99)),
           "rgb8_max": int(d.max()), "dl_mean": round(float(dl.mean()), 3),
           "dl_p99": round(float(np.percentile(dl, 99)), 3), "dab_mean": round(float(dab.mean()), 3),
           "dab_p99": round(float(np.percentile(dab, 99)), 3)}
    print(f"CPU bfloat16 ({hardware}) against float32: {args.frames} frames of the sample film "
          f"at mindim {args.mindim}, weights {res['weights']}")
    print(f"  float32 {res['fp32_s']} s, bfloat16 {res['bf16_s']} s: {res['speedup']}x")
    print(f"  RGB24 |difference|: mean {res['rgb8_mean']}, p99 {res['rgb8_p99']}, max {res['rgb8_max']}")
    print(f"  Lab |dL*| mean {res['dl_mean']} (p99 {res['dl_p99']}), |da*|,|db*| mean "
          f"{res['dab_mean']} (p99 {res['dab_p99']})")
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
