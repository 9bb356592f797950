"""Loading and seeking on a feature-length clip, and memory over a long render (issue 14).

Two phases, each in a fresh process so their peaks do not mix (CPU, bundled weights):

- load: a BlankClip of --frames frames (YUV420P8, --size; default 200,000 at 1920x1080,
  frames that cost nothing to make) ->
  * `vsremaster.Remaster(clip, mindim=--mindim)`: creation time, first in the process
    (torch imported, timed apart; the model loaded) and again, as an editor re-evaluates
    a script (models shared); no frame is read either way;
  * a first request at --at (default 75 % of the clip) and a seek back to --back;
  * the lazy scene index on its own, built as the filter builds its scan
    (`scan_luma(clip)`): creation time and bounds(--at) (one block).
- render: a --render-frames clip (default 3,000 at 320x240; a cut every 250 frames)
  through `Remaster(mindim=--mindim)`, frames pulled in order with `clip.frames()`;
  RSS and peak RSS at 10 % and at 100 % of the frames, and their ratio.

    python benchmarks/instant_load.py                                  # the issue's sizes
    python benchmarks/instant_load.py --frames 20000 --size 640x360 --render-frames 300

Prints figures, then one JSON line. Linux only (/proc, ru_maxrss in kB).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def load_phase(args) -> dict:
    import vapoursynth as vs
    import vsremaster
    from vsremaster.frames.source import scan_luma
    from vsremaster.planning.scenes import SceneIndex
    core = vs.core
    w, h = args.size
    clip = core.std.BlankClip(format=vs.YUV420P8, width=w, height=h, length=args.frames,
                              color=[60, 128, 128])
    at = min(args.at if args.at is not None else args.frames * 3 // 4, args.frames - 1)
    back = min(args.back, args.frames - 1)
    t = time.perf_counter()
    import torch  # noqa: F401  (the filter imports it on first use; timed on its own)
    torch_import = time.perf_counter() - t
    t = time.perf_counter()
    out = vsremaster.Remaster(clip, mindim=args.mindim, device_index=-1, preview=args.preview)
    create_first = time.perf_counter() - t
    # an editor evaluates the script again in the same process: the models are loaded
    t = time.perf_counter()
    out = vsremaster.Remaster(clip, mindim=args.mindim, device_index=-1, preview=args.preview)
    create = time.perf_counter() - t
    t = time.perf_counter()
    out.get_frame(at)
    first = time.perf_counter() - t
    t = time.perf_counter()
    out.get_frame(back)
    seek = time.perf_counter() - t

    t = time.perf_counter()
    index = SceneIndex(scan_luma(clip), None)
    index_create = time.perf_counter() - t
    t = time.perf_counter()
    cpu = time.process_time()
    bounds = index.bounds(at)
    index_first = time.perf_counter() - t
    index_cpu = time.process_time() - cpu
    return {"frames": args.frames, "size": f"{w}x{h}", "mindim": args.mindim, "at": at,
            "back": back, "torch_import_s": round(torch_import, 3),
            "create_first_s": round(create_first, 3), "create_s": round(create, 3), "first_request_s": round(first, 3),
            "seek_back_s": round(seek, 3), "index_create_s": round(index_create, 4),
            "index_first_bounds_s": round(index_first, 3),
            "index_first_bounds_cpu_s": round(index_cpu, 3),
            "index_frames_scanned": index.frames_scanned, "index_bounds": list(bounds)}


def render_phase(args) -> dict:
    import vapoursynth as vs
    import vsremaster
    core = vs.core
    w, h = args.render_size
    scenes = [core.std.BlankClip(format=vs.GRAY8, width=w, height=h, length=250,
                                 color=[(40 + 70 * k) % 220]) for k in range(-(-args.render_frames // 250))]
    clip = core.std.Splice(scenes)[:args.render_frames]
    out = vsremaster.Remaster(clip, mindim=args.mindim, device_index=-1, preview=args.preview)
    tenth = max(1, args.render_frames // 10)
    marks = {}
    t = time.perf_counter()
    for n, _ in enumerate(out.frames(close=True), 1):
        if n in (tenth, args.render_frames):
            marks[n] = (rss(), peak_rss(), time.perf_counter() - t)
    (r10, p10, t10), (r100, p100, t100) = marks[tenth], marks[args.render_frames]
    mb = 1 << 20
    return {"render_frames": args.render_frames, "render_size": f"{w}x{h}",
            "rss_10_mb": round(r10 / mb), "rss_100_mb": round(r100 / mb),
            "peak_rss_10_mb": round(p10 / mb), "peak_rss_100_mb": round(p100 / mb),
            "peak_ratio": round(p100 / p10, 3), "render_s": round(t100, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=200_000)
    p.add_argument("--size", type=size, default=(1920, 1080))
    p.add_argument("--at", type=int, default=None, help="first request (default 75 %%)")
    p.add_argument("--back", type=int, default=1000, help="the seek back")
    p.add_argument("--mindim", type=int, default=64)
    p.add_argument("--preview", action="store_true", help="Remaster(preview=True)")
    p.add_argument("--render-frames", type=int, default=3000)
    p.add_argument("--render-size", type=size, default=(320, 240))
    p.add_argument("--phase", choices=["load", "render"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.phase:
        result = load_phase(args) if args.phase == "load" else render_phase(args)
        print(json.dumps(result))
        return

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [x for x in os.environ.get("PYTHONPATH", "").split(os.pathsep) if x]))
    result = {}
    for phase in ("load", "render"):
        run = subprocess.run([sys.executable, __file__, "--phase", phase] + sys.argv[1:],
                             capture_output=True, text=True, env=env)
        if run.returncode:
            sys.exit(f"{phase} phase failed:\n{run.stderr}")
        result.update(json.loads(run.stdout.strip().splitlines()[-1]))
    r = result
    print(f"clip: {r['frames']} frames at {r['size']}, mindim {r['mindim']}, CPU, bundled weights")
    print(f"  import torch               {r['torch_import_s']:8.3f} s (once per process)")
    print(f"  Remaster(...) first        {r['create_first_s']:8.3f} s (loads the model)")
    print(f"  Remaster(...) created in   {r['create_s']:8.3f} s (evaluated again, as editors do)")
    print(f"  first request (frame {r['at']}) {r['first_request_s']:8.3f} s")
    print(f"  seek back (frame {r['back']})     {r['seek_back_s']:8.3f} s")
    print(f"  SceneIndex created in      {r['index_create_s']:8.4f} s")
    print(f"  SceneIndex.bounds({r['at']}) {r['index_first_bounds_s']:8.3f} s "
          f"({r['index_first_bounds_cpu_s']} s CPU, "
          f"{r['index_frames_scanned']} frames read) -> {r['index_bounds']}")
    print(f"render: {r['render_frames']} frames at {r['render_size']} in {r['render_s']} s")
    print(f"  RSS at 10 %: {r['rss_10_mb']} MB (peak {r['peak_rss_10_mb']} MB); at 100 %: "
          f"{r['rss_100_mb']} MB (peak {r['peak_rss_100_mb']} MB); peak ratio {r['peak_ratio']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
