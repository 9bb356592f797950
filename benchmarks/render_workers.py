"""`python -m vsremaster render` with one worker and with two: the speed-up on this machine.

Writes a script over a generated grey clip (a smooth texture panning, a new texture and
brightness every `--scene` frames, scene changes marked with `_SceneChangePrev`) that
remasters it with the bundled lite model (or `--weights`), then renders it with the
real command once per configuration into its own work folder, timing the whole command
(planning, segments, join). Configurations: `1` (one worker), `2` (two workers), `2t1`
(two workers with OMP_NUM_THREADS=1, so each worker's torch uses one core). Counts the
frames whose bytes differ from the first configuration's (0 is expected between `1` and
`2`; torch's CPU results depend on its thread count, so `2t1` may differ by a step in a
few pixels). Prints, per configuration, the wall time, the CPU time of the processes
it started (children's user + system), frames per second, and the load average before
and after (the machine may be shared); then the speed-ups over `1`, and one JSON line
last.

    python benchmarks/render_workers.py                        # 192 frames, 160x120, mindim 96
    python benchmarks/render_workers.py --frames 480 --segment-frames 120 --configs 1,2
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import numpy as np
import vapoursynth as vs
import vsremaster
N, H, W, SCENE = int(frames), int(height), int(width), int(scene)
def fill(n, f):
    s = n // SCENE
    rng = np.random.default_rng(s)
    base = np.kron(rng.random((H // 8 + 2, (W + 2 * SCENE) // 8 + 2)), np.ones((8, 8)))
    k = n - s * SCENE
    img = np.clip(0.6 * base[:H, 2 * k:2 * k + W] + 0.1 * (s % 4), 0, 1)
    out = f.copy()
    np.copyto(np.asarray(out[0]), (16 + 219 * img).astype(np.uint8))
    if n and k == 0:
        out.props["_SceneChangePrev"] = 1
    return out
blank = vs.core.std.BlankClip(format=vs.GRAY8, width=W, height=H, length=N, fpsnum=24, fpsden=1)
clip = vs.core.std.ModifyFrame(blank, blank, fill)
vsremaster.Remaster(clip, weights=weights, mindim=int(mindim)).set_output()
"""


def y4m_frames(data: bytes) -> list[bytes]:
    """A y4m stream's frames (header and FRAME lines dropped)."""
    end = data.index(b"\n") + 1
    count = int(data[:end].split(b"XLENGTH=")[1])
    step = (len(data) - end) // count
    return [data[i + 6:i + step] for i in range(end, len(data), step)]


def run_config(name: str, script: Path, folder: Path, args: argparse.Namespace) -> dict:
    out = folder / f"out-{name}.y4m"
    workers = "1" if name == "1" else "2"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    if name == "2t1":
        env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "vsremaster", "render", str(script), str(out), "--workers",
           workers, "--segment-frames", str(args.segment_frames), "--no-progress",
           "-a", f"frames={args.frames}", "-a", f"width={args.width}",
           "-a", f"height={args.height}", "-a", f"scene={args.scene}",
           "-a", f"mindim={args.mindim}", "-a", f"weights={args.weights}"]
    load_before = os.getloadavg()[0]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    run = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if run.returncode != 0:
        sys.exit(f"{name}: render failed:\n{run.stderr}")
    manifest = json.loads((folder / f"out-{name}.render" / "manifest.json").read_text())
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return {"config": name, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "fps": round(args.frames / wall, 3), "segments": len(manifest["segments"]),
            "segment_s": [s["seconds"] for s in manifest["segments"]],
            "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2),
            "output": out}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=192)
    p.add_argument("--width", type=int, default=160)
    p.add_argument("--height", type=int, default=120)
    p.add_argument("--scene", type=int, default=48, help="frames per scene")
    p.add_argument("--mindim", type=int, default=96)
    p.add_argument("--segment-frames", type=int, default=48)
    p.add_argument("--weights", default=str(ROOT / "models" / "vsremaster-lite.safetensors"),
                   help="weights file (default: the bundled lite model)")
    p.add_argument("--configs", default="1,2,2t1", help="comma-separated: 1, 2, 2t1")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="render-bench-") as tmp:
        folder = Path(tmp)
        script = folder / "bench.vpy"
        script.write_text(SCRIPT)
        results = [run_config(name, script, folder, args) for name in args.configs.split(",")]
        first = y4m_frames(results[0]["output"].read_bytes())
        for r in results:
            frames = y4m_frames(r["output"].read_bytes())
            r["frames_differing_from_first"] = sum(a != b for a, b in zip(first, frames)) \
                + abs(len(first) - len(frames))
    print(f"{args.frames} frames {args.width}x{args.height}, mindim {args.mindim}, scenes of "
          f"{args.scene}, segments of about {args.segment_frames}; {os.cpu_count()} CPUs")
    print("| config | segments | wall s | CPU s | fps | load before/after |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['config']} | {r['segments']} | {r['wall_s']} | {r['cpu_s']} | {r['fps']} | "
              f"{r['load_before']}/{r['load_after']} |")
    base = next((r for r in results if r["config"] == "1"), None)
    speedups = {r["config"]: round(base["wall_s"] / r["wall_s"], 3)
                for r in results if base and r is not base}
    for name, value in speedups.items():
        print(f"speed-up of {name} over 1 worker: {value}")
    for r in results[1:]:
        print(f"{r['config']}: {r['frames_differing_from_first']} frames differ from "
              f"{results[0]['config']}'s")
    for r in results:
        r.pop("output")
    print(json.dumps({"benchmark": "render_workers", "frames": args.frames,
                      "size": [args.width, args.height], "mindim": args.mindim,
                      "segment_frames": args.segment_frames, "results": results,
                      "speedup": speedups}))


if __name__ == "__main__":
    main()
