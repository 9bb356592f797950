"""A long render through the real vspipe on the CPU: does the memory stay flat?

Writes a grey test video (ffmpeg lavfi sources one after another, so it has scene
cuts), writes the golden weights to a temporary file, and renders the whole video
through `vspipe -c y4m SCRIPT -` (the binary in the vapoursynth package: the venv's
bin/vspipe is a Python wrapper that runs it), reading the output from a pipe and
counting frames. Every 0.1 s it samples the vspipe process's RSS (VmRSS) and peak RSS
(VmHWM) from /proc, and reports them at 10% and at 100% of the frames (the last
sample, taken within a few frames of the end), with the ratios. Prints figures, then
one JSON line.

The script: by default a small one written here, the sample's in all but one thing:
`bs.VideoSource(input, cachesize=--bs-cache)` then `vsremaster.Remaster(clip,
refs=samples/film/refs, mindim=--mindim, weights=...)` (restoration and colorization).
BestSource keeps decoded frames in its own cache, which grows with the frames read
(by default up to about 1 GB; about 24 MB per 1000 frames of this 160x120 grey video):
with the sample script as it is (`--script sample`), that growth is BestSource's, not
the filter's.

    python benchmarks/long_render.py                      # 3000 frames, 160x120, mindim 32
    python benchmarks/long_render.py --frames 6000 --width 1.0
    python benchmarks/long_render.py --script sample      # samples/remaster.vpy as it is

Linux only (/proc). Needs ffmpeg. `--width` is the golden weights' channel width
(1.0 = the released architecture's size; the default 0.25 keeps a run to minutes on two
cores: memory behaviour does not depend on it, the model's own size aside).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def real_vspipe() -> Path:
    """The vspipe binary itself: the one in the venv's bin/ is a Python wrapper around it."""
    import vapoursynth
    binary = Path(vapoursynth.__file__).with_name("vspipe")
    return binary if binary.is_file() else Path(sys.executable).with_name("vspipe")


SAMPLE = ROOT / "samples" / "remaster.vpy"
REFS = ROOT / "samples" / "film" / "refs"
OWN_SCRIPT = """
import vapoursynth as vs
import vsremaster
clip = vs.core.bs.VideoSource(input, cachesize=int(bs_cache))
clip = vsremaster.Remaster(clip, refs=refs, mindim=int(mindim), weights=weights)
clip.set_output()
"""
SOURCES = ["testsrc", "testsrc2", "mandelbrot", "smptebars", "rgbtestsrc", "cellauto"]


def write_video(path: Path, frames: int, size: str, scene: int) -> None:
    """`frames` grey frames at 24 fps, cycling through lavfi sources every `scene` frames."""
    args = ["ffmpeg", "-v", "error", "-y"]
    parts = []
    left = frames
    while left > 0:
        n = min(scene, left)
        parts.append(n)
        left -= n
    for i, n in enumerate(parts):
        src = SOURCES[i % len(SOURCES)]
        args += ["-t", f"{n / 24:.6f}", "-f", "lavfi", "-i", f"{src}=size={size}:rate=24"]
    graph = "".join(f"[{i}:v]format=gray,setsar=1[s{i}];" for i in range(len(parts)))
    graph += "".join(f"[s{i}]" for i in range(len(parts))) + f"concat=n={len(parts)}:v=1:a=0[v]"
    subprocess.run(args + ["-filter_complex", graph, "-map", "[v]", "-frames:v", str(frames),
                           "-c:v", "ffv1", str(path)], check=True)


def write_weights(path: Path, width: float) -> Path:
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import golden_state_dicts          # the golden generator in ../shared
    from vsremaster.model.checkpoint import save_checkpoint
    return save_checkpoint(path, *golden_state_dicts(width), name=f"golden-{width:g}",
                           width=str(width))


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in bytes (empty once it has gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=3000)
    p.add_argument("--size", default="160x120", help="video size WxH")
    p.add_argument("--scene", type=int, default=250, help="frames per scene")
    p.add_argument("--mindim", type=int, default=32)
    p.add_argument("--width", type=float, default=0.25, help="golden weights' channel width")
    p.add_argument("--requests", type=int, default=0, help="vspipe -r (0: its default)")
    p.add_argument("--script", choices=["own", "sample"], default="own",
                   help="own: BestSource with a small cache; sample: samples/remaster.vpy")
    p.add_argument("--bs-cache", type=int, default=16, help="BestSource cachesize (MB)")
    args = p.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    frame_bytes = w * h * 3 + len(b"FRAME\n")            # grey in, YUV444P8 out

    with tempfile.TemporaryDirectory(prefix="vsremaster-long-") as tmp:
        tmp = Path(tmp)
        video = tmp / "long.mkv"
        t = time.monotonic()
        write_video(video, args.frames, args.size, args.scene)
        weights = write_weights(tmp / "golden.safetensors", args.width)
        print(f"wrote {args.frames} frames of {args.size} and weights (width {args.width:g}, "
              f"{weights.stat().st_size >> 20} MB) in {time.monotonic() - t:.1f} s", file=sys.stderr)
        script = SAMPLE
        if args.script == "own":
            script = tmp / "long_render.vpy"
            script.write_text(OWN_SCRIPT)
        cmd = [str(real_vspipe()), "-c", "y4m", "-a", f"input={video}", "-a", f"mindim={args.mindim}",
               "-a", f"weights={weights}", "-a", f"refs={REFS}", "-a", f"bs_cache={args.bs_cache}",
               str(script), "-"]
        if args.requests:
            cmd[1:1] = ["-r", str(args.requests)]
        env = dict(os.environ, HOME=str(tmp))        # BestSource's index cache goes there
        env.setdefault("XDG_CONFIG_HOME", str(Path.home() / ".config"))
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        samples: list[tuple[float, int, int, int]] = []     # (t, frames done, rss, hwm)
        done = [0]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                st = proc_status(proc.pid)
                if st and proc.poll() is None:
                    samples.append((time.monotonic() - start, done[0], st["VmRSS"], st["VmHWM"]))
                time.sleep(0.1)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        header = proc.stdout.readline()
        got = 0
        first_frame_at = None
        while True:
            chunk = proc.stdout.read(1 << 16)
            if not chunk:
                break
            got += len(chunk)
            done[0] = got // frame_bytes
            if first_frame_at is None and done[0]:
                first_frame_at = time.monotonic() - start
        rc = proc.wait()
        elapsed = time.monotonic() - start
        stop.set()
        sampler.join()
        err = proc.stderr.read().decode(errors="replace")
    if rc != 0 or done[0] != args.frames:
        print(err, file=sys.stderr)
        raise SystemExit(f"vspipe failed (exit {rc}) after {done[0]} of {args.frames} frames")

    at10 = next(s for s in samples if s[1] >= args.frames // 10)
    at100 = samples[-1]
    mb = lambda b: round(b / 2**20, 1)                  # noqa: E731
    render_s = elapsed - (first_frame_at or 0)
    print(f"header: {header.decode().strip()}")
    what = (f"own script, BestSource cache {args.bs_cache} MB" if args.script == "own"
            else "samples/remaster.vpy, BestSource's default cache")
    print(f"{args.frames} frames of {args.size} ({what}; mindim {args.mindim}), restore + "
          f"colorize, golden weights width {args.width:g}, {len(samples)} RSS samples")
    print(f"time: {elapsed:.1f} s in all, first frame after {first_frame_at:.1f} s, "
          f"{(args.frames - 1) / render_s:.1f} fps after it")
    print(f"RSS at 10% (frame {at10[1]}): {mb(at10[2])} MB, peak so far {mb(at10[3])} MB")
    print(f"RSS at 100% (frame {at100[1]}): {mb(at100[2])} MB, peak so far {mb(at100[3])} MB")
    print(f"ratio 100%/10%: RSS {at100[2] / at10[2]:.3f}, peak {at100[3] / at10[3]:.3f}")
    curve = [(s[1], mb(s[2])) for s in samples[:: max(1, len(samples) // 10)]]
    print(f"RSS curve (frame, MB): {curve}")
    print(json.dumps({
        "benchmark": "long_render", "frames": args.frames, "size": args.size,
        "mindim": args.mindim, "weights_width": args.width, "script": args.script,
        "bs_cache_mb": args.bs_cache if args.script == "own" else None,
        "seconds": round(elapsed, 1),
        "fps": round((args.frames - 1) / render_s, 2),
        "rss_10_mb": mb(at10[2]), "rss_100_mb": mb(at100[2]),
        "rss_ratio": round(at100[2] / at10[2], 3),
        "peak_rss_10_mb": mb(at10[3]), "peak_rss_100_mb": mb(at100[3]),
        "peak_rss_ratio": round(at100[3] / at10[3], 3),
        "frame_at_10": at10[1], "frame_at_100": at100[1], "samples": len(samples)}))


if __name__ == "__main__":
    main()
