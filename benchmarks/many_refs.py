"""A feature film's reference folder (issue 35, item 5): creation time, first-frame time
and peak memory with thousands of anchored references, one per shot.

For each count N it writes N small colour PNGs (`ref_000134.png`, anchored at each
shot's first frame) into a temporary folder, builds a synthetic film of max(N, 1000)
shots of --shot frames (a flat BlankClip whose `_SceneChangePrev` props mark the cuts,
as a scene-change filter would), and in a fresh child process per case measures:

- creation: `vsremaster.Remaster(clip, refs=folder, ...)` (weights loaded, every
  header checked; N = 0 is the filter without refs, the cost of everything else);
- first frame: `get_frame(0)` (the first block's scene scan and one scene computed);
- shots: one frame in each of --scenes shots spread over the film (each computed);
- sets: the reference set and canvas of --sets shots spread over the film, without
  computing their frames (each reads its reference: the image cache fills, then drops);
- peak RSS: the child's `ru_maxrss` at the end, and its RSS before creation.

    python benchmarks/many_refs.py                            # N = 0, 1000, 3000, 10000
    python benchmarks/many_refs.py --counts 0 1000 --pythonpath /tmp/refs-before
    python benchmarks/many_refs.py --counts 1000 --ref-size 640x480   # what keeping costs

--pythonpath runs the children on another checkout (e.g. a worktree of the commit
before), for comparison. Prints figures, then one JSON line.
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


def write_refs(folder: Path, count: int, shot: int, size: tuple[int, int]) -> None:
    """`count` PNGs of (height, width) `size`, a colour of their own and two gradients."""
    import cv2
    import numpy as np
    yy, xx = np.mgrid[0:size[0], 0:size[1]]
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        colour = np.array([(37 * i) % 256, (91 * i + 40) % 256, (53 * i + 90) % 256], np.float32)
        img = colour * (0.6 + 0.4 * (xx / size[1]))[..., None] + 20 * (yy / size[0])[..., None]
        cv2.imwrite(str(folder / f"ref_{shot * i:06d}.png"), np.clip(img, 0, 255).astype(np.uint8))


def child(args) -> None:
    """One case, in this process: prints one JSON line."""
    import resource
    import vapoursynth as vs
    from vsremaster.remaster import build
    core = vs.core
    core.num_threads = args.threads
    shots = max(args.count, 1000)
    blank = core.std.BlankClip(format=vs.GRAY8, width=args.width, height=args.height,
                               length=shots * args.shot, color=[100])

    def mark(n, f):
        f = f.copy()
        f.props["_SceneChangePrev"] = int(n > 0 and n % args.shot == 0)
        return f
    clip = core.std.ModifyFrame(blank, blank, mark)
    with open("/proc/self/statm") as f:
        rss_before = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    t = time.perf_counter()
    pipe = build(clip, refs=args.folder if args.count else None, mindim=args.mindim,
                 ref_mindim=args.mindim, max_refs=1, device_index=-1, fp16=False,
                 weights=args.weights)
    out = pipe.clip
    create = time.perf_counter() - t
    t = time.perf_counter()
    out.get_frame(0)
    first = time.perf_counter() - t
    t = time.perf_counter()
    step = max(1, shots // (args.scenes + 1))
    for s in range(step, shots, step)[:args.scenes]:
        f = out.get_frame(s * args.shot)
        if args.count and f.props.get("_RemasterRefs") is None:
            raise SystemExit(f"frame {s * args.shot} has no reference")
    scenes = time.perf_counter() - t
    t = time.perf_counter()
    spread = args.count or shots            # shots with a reference of their own
    step = max(1, spread // args.sets)
    for s in range(0, spread, step)[:args.sets]:
        ids, _ = pipe.references(s * args.shot, (s + 1) * args.shot)
        if args.count and ids != (s,):
            raise SystemExit(f"shot {s} got references {ids}")
    sets = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(dict(count=args.count, create_s=round(create, 3), first_s=round(first, 3),
                          scenes_s=round(scenes, 3), sets_s=round(sets, 3),
                          rss_before_mb=round(rss_before / 1e6, 1),
                          peak_mb=round(peak / 1e6, 1))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--counts", type=int, nargs="+", default=[0, 1000, 3000, 10000])
    ap.add_argument("--shot", type=int, default=4, help="frames per shot")
    ap.add_argument("--scenes", type=int, default=8, help="shots computed after the first frame")
    ap.add_argument("--sets", type=int, default=1000, help="shots whose reference sets are made")
    ap.add_argument("--mindim", type=int, default=64)
    ap.add_argument("--width", type=int, default=96)
    ap.add_argument("--height", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ref-size", default="96x64", help="each reference's WIDTHxHEIGHT")
    ap.add_argument("--weights", default=None, help="default: the bundled model")
    ap.add_argument("--pythonpath", default=None, help="run the children on this checkout")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--folder", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    ref_w, ref_h = map(int, args.ref_size.split("x"))
    env = dict(os.environ)
    if args.pythonpath:
        env["PYTHONPATH"] = args.pythonpath
    rows = []
    with tempfile.TemporaryDirectory(prefix="many_refs_") as tmp:
        for count in args.counts:
            folder = Path(tmp) / f"refs{count}"
            t = time.perf_counter()
            write_refs(folder, count, args.shot, (ref_h, ref_w))
            written = time.perf_counter() - t
            cmd = [sys.executable, __file__, "--child", "--count", str(count), "--folder",
                   str(folder), "--shot", str(args.shot), "--scenes", str(args.scenes),
                   "--sets", str(args.sets),
                   "--mindim", str(args.mindim), "--width", str(args.width), "--height",
                   str(args.height), "--threads", str(args.threads)]
            if args.weights:
                cmd += ["--weights", args.weights]
            run = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if run.returncode:
                row = dict(count=count, error=(run.stderr.strip().splitlines() or ["?"])[-1])
            else:
                row = json.loads(run.stdout.strip().splitlines()[-1])
            row["write_s"] = round(written, 2)
            rows.append(row)
            if "error" in row:
                print(f"N={count:6d}  refused/failed: {row['error']}", flush=True)
            else:
                print(f"N={count:6d}  create {row['create_s']:7.2f} s  first frame "
                      f"{row['first_s']:6.2f} s  {args.scenes} shots {row['scenes_s']:6.2f} s  "
                      f"{args.sets} sets {row['sets_s']:6.2f} s  "
                      f"RSS before {row['rss_before_mb']:6.1f} MB  peak {row['peak_mb']:6.1f} MB",
                      flush=True)
    print(json.dumps(dict(checkout=args.pythonpath or str(ROOT), shot=args.shot,
                          scenes=args.scenes, sets=args.sets,
                          mindim=args.mindim, size=f"{args.width}x{args.height}",
                          ref_size=args.ref_size, rows=rows)))


if __name__ == "__main__":
    main()
