"""Host memory behind the per-device limits (vsremaster/limits.py), on the CPU in float32.

Each measurement runs in its own process, so its peak RSS (VmHWM) is its own: the
peak minus the RSS once the networks are loaded (released size, golden weights) is
what the work added. Thread pools and VapourSynth's caches add a fixed amount, so the
figure that scales is the slope between two sizes (`marginal B/pixel`):
- `refs`: the reference encoder (`NetworkC.encode_refs`) over one set's canvases,
  per canvas pixel;
- `filter`: the whole filter (`build`, one frame pulled through VapourSynth, chunk 2:
  the chunk and 7 context frames each side) at a given mindim, per model pixel.
Prints a table, then one JSON line.

    python benchmarks/limits_memory.py                     # refs 256 + 512, filter 160 + 320
    python benchmarks/limits_memory.py --refs 256 --mindims 160
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
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


def _weights(tmp: Path) -> Path:
    from conftest import golden_state_dicts
    from vsremaster.model.checkpoint import save_checkpoint
    path = tmp / "golden.safetensors"
    if not path.exists():
        save_checkpoint(path, *golden_state_dicts(), name="golden")
    return path


def child(kind: str, size: int, refs: int, weights: Path) -> dict:
    import torch
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    if kind == "refs":
        from vsremaster.engine.models import shared_models
        models = shared_models(weights, torch.device("cpu"), torch.float32)
        base = _status_mb("VmRSS")
        h, w = size, size * 16 // 9 // 16 * 16
        canvas = torch.rand(1, refs, 3, h, w)
        with torch.no_grad():
            models.colorize.encode_refs(canvas)
        pixels = refs * h * w
    else:
        import vapoursynth as vs
        from clips import from_arrays, moving_pattern
        from vsremaster.remaster import build
        clip = from_arrays(moving_pattern(4, 36, 64, seed=1), vs.GRAY8)
        pipe = build(clip, weights=weights, device_index=-1, mindim=size, chunk=2, max_refs=0)
        base = _status_mb("VmRSS")
        pipe.clip.get_frame(0)
        h, w = size, size * 64 // 36 // 16 * 16
        pixels = h * w
    peak = _status_mb("VmHWM")
    return {"kind": kind, "size": size, "refs": refs, "pixels": pixels,
            "peak_mb": round(peak, 1), "loaded_mb": round(base, 1),
            "bytes_per_pixel": round((peak - base) * 2**20 / pixels)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refs", type=int, nargs="*", default=[256, 512],
                        help="canvas short edges for the reference encoder")
    parser.add_argument("--ref-count", type=int, default=2, help="references per set")
    parser.add_argument("--mindims", type=int, nargs="*", default=[160, 320])
    parser.add_argument("--child", nargs=4, metavar=("KIND", "SIZE", "REFS", "WEIGHTS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, size, refs, weights = args.child
        print(json.dumps(child(kind, int(size), int(refs), Path(weights))))
        return 0
    import tempfile
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        weights = _weights(Path(tmp))
        jobs = [("refs", s, args.ref_count) for s in args.refs]
        jobs += [("filter", m, 0) for m in args.mindims]
        for kind, size, refs in jobs:
            out = subprocess.run([sys.executable, __file__, "--child", kind, str(size),
                                  str(refs), str(weights)], capture_output=True, text=True,
                                 check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{'kind':8} {'size':>5} {'refs':>4} {'pixels':>9} {'loaded MB':>10} "
          f"{'peak MB':>9} {'B/pixel':>8}")
    for r in rows:
        print(f"{r['kind']:8} {r['size']:>5} {r['refs']:>4} {r['pixels']:>9} "
              f"{r['loaded_mb']:>10} {r['peak_mb']:>9} {r['bytes_per_pixel']:>8}")
    slopes = {}
    for kind in ("refs", "filter"):
        mine = [r for r in rows if r["kind"] == kind]
        if len(mine) >= 2:
            a, b = mine[0], mine[-1]
            slopes[kind] = round((b["peak_mb"] - a["peak_mb"]) * 2**20 / (b["pixels"] - a["pixels"]))
            print(f"{kind}: marginal {slopes[kind]} B/pixel (between sizes {a['size']} and "
                  f"{b['size']})")
    print(json.dumps({"benchmark": "limits_memory", "rows": rows,
                      "marginal_bytes_per_pixel": slopes}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
