"""`bench --glue`: what the filter costs around the networks (issue 13's CPU benchmark).

The same model work, fed two ways: the networks run at 112x64 (`mindim` 64) on a
112x64 clip and on a 1920x1080 clip of the same length, both 8-bit (GRAY8 by
default, as the issue's end-to-end measurements feed the filter; YUV420P8, what a
video decoder gives, with `--glue-format yuv420p8`), through the real VapourSynth core
with `--threads` (2) threads, frames pulled with `clip.frames()` as vspipe does. With
equal model work, the 1080p run's fps over the 112x64 run's is the share of time the
full-size path (reading, composing, converting and writing 1080p frames) leaves to the
networks: 1.0 would mean the glue costs nothing.

Each case runs in its own Python process, so its peak RSS (VmHWM: everything the
process held, weights and warm-up included) is its own. In each: the references are
written as PNG files, an untimed warm-up renders 6 frames at 112x64 (loads the shared
models), then the timed run builds the filter over the case's clip (scene scan
included; reported apart as `build_s`) and pulls every frame; `fps` is frames over the
time from the built clip to the last frame (`cpu_ms_per_frame`: the process's CPU time
over the same span; `cpu_ratio` compares those, steadier than wall time on a shared
machine). Afterwards, untimed by the filter, the same
source clip is only resized to model size by VapourSynth (`source_fps`: the floor any
glue has to pay for reading the frames).

Input: a smooth random texture on a ramp, panning 1 % of the width per frame,
generated once per case as one uint8 strip and copied into each frame (no per-frame
synthesis, no frames held in memory); marked as one scene.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .config import DTYPE_NAMES, Config, device_index, device_name, log
from .inputs import pan_shift, ref_shape, resolve_weights, synthetic_refs, texture, write_refs
from .measure import PeakMemory, cpu_time, mb, process_peak_rss, rounded, rss_bytes, sync
from .ours import precision_kwargs
from .report import fmt

MINDIM = 64
SMALL = (112, 64)
BIG = (1920, 1080)
FORMATS = ("gray8", "yuv420p8")
WARMUP_FRAMES = 6
#: issue 13's targets: 1080p fps at least this share of the 112x64 fps, 1080p peak RSS
TARGET_RATIO = 0.7
TARGET_BIG_RSS_MB = 2.5 * 1024


def bundled_weights() -> Path:
    """The bundled lite model (models/vsremaster-lite.safetensors)."""
    from ..weights import bundled_dir
    return bundled_dir() / "vsremaster-lite.safetensors"


def source_clip(width: int, height: int, frames: int, fmt: str, seed: int = 0):
    """An 8-bit clip (GRAY8 or YUV420P8 with neutral chroma) of a panning texture."""
    import vapoursynth as vs
    core = vs.core
    shift = pan_shift(width)
    strip_w = width + frames * shift
    yy, xx = np.mgrid[0:height, 0:strip_w].astype(np.float32)
    ramp = 0.3 * xx / strip_w + 0.2 * yy / height
    strip = np.clip(0.6 * texture(height, strip_w, seed)[:height, :strip_w] + ramp, 0, 1)
    strip = (strip * 255).round().astype(np.uint8)
    del yy, xx, ramp
    yuv = fmt == "yuv420p8"
    blank = core.std.BlankClip(format=vs.YUV420P8 if yuv else vs.GRAY8, width=width,
                               height=height, length=frames, color=[0, 128, 128] if yuv else [0],
                               keep=True)

    def fill(n, f):
        out = f.copy()
        np.copyto(np.asarray(out[0]), strip[:, n * shift:n * shift + width])
        out.props["_SceneChangePrev"] = 0       # one scene: no detection guesswork
        out.props["_SceneChangeNext"] = 0
        return out

    return core.std.ModifyFrame(blank, blank, fill)


def run_case(case: dict) -> dict:
    """One case in this process (see the module docstring); its figures."""
    import torch
    import vapoursynth as vs

    from ..remaster import build
    core = vs.core
    core.num_threads = case["threads"]
    device = torch.device(case["device"])
    width, height, frames, fmt = case["width"], case["height"], case["frames"], case["format"]
    with tempfile.TemporaryDirectory(prefix="vsremaster-glue-") as tmp:
        images = synthetic_refs(case["refs"], *ref_shape(*SMALL, case["ref_size"]),
                                seed=case["seed"] + 1)
        refs = write_refs(images, Path(tmp)) or None
        kw = {"weights": case["weights"], "device_index": device_index(device),
              "mindim": MINDIM, "ref_mindim": case["ref_size"],
              **precision_kwargs(case["precision"], device), **case["filter_args"]}
        warm = build(source_clip(*SMALL, WARMUP_FRAMES, fmt, case["seed"]), refs, **kw)
        for _ in warm.clip.frames(close=True):
            pass
        del warm
        clip = source_clip(width, height, frames, fmt, case["seed"])
        rss_before = rss_bytes()
        with PeakMemory(device) as mem:
            t0 = time.perf_counter()
            pipe = build(clip, refs, **kw)
            t1, c1 = time.perf_counter(), cpu_time()
            count = 0
            for f in pipe.clip.frames(close=True):
                count += 1
                out_format = f.format.name
            sync(device)
            t2, c2 = time.perf_counter(), cpu_time()
        dtype = DTYPE_NAMES.get(pipe.engine.models.dtype, str(pipe.engine.models.dtype))
        del pipe
    # VmHWM is updated lazily (per-thread RSS counters): it can trail the sampled peak
    peak = max(process_peak_rss(), mem.peak)
    luma = clip if fmt == "gray8" else core.std.ShufflePlanes(clip, 0, vs.GRAY)
    small = core.resize.Bicubic(luma, *SMALL, format=vs.GRAYS)
    t3 = time.perf_counter()
    for _ in small.frames(close=True):
        pass
    source_s = time.perf_counter() - t3
    return {"input": f"{width}x{height}", "frames": count, "fps": rounded(count / (t2 - t1)),
            "fps_with_build": rounded(count / (t2 - t0)), "build_s": rounded(t1 - t0),
            "render_s": rounded(t2 - t1), "cpu_ms_per_frame": rounded(1000 * (c2 - c1) / count, 1),
            "peak_rss_mb": mb(peak),
            "render_peak_rss_mb": mb(mem.peak), "rss_before_mb": mb(rss_before),
            "render_rss_growth_mb": mb(mem.peak - (rss_before or mem.start)),
            "peak_vram_mb": mb(mem.vram), "output_format": out_format,
            "precision": dtype,
            "source_fps": rounded(frames / source_s), "threads": core.num_threads}


def _run_child(case: dict) -> dict:
    done = subprocess.run([sys.executable, "-m", "vsremaster.bench.glue", json.dumps(case)],
                          stdout=subprocess.PIPE, text=True)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"glue case {case['width']}x{case['height']} failed "
                           f"(exit {done.returncode}); its error is above")
    return json.loads(lines[-1])


def glue_bench(cfg: Config, fmt: str = "gray8", threads: int = 2) -> dict:
    """Both cases, each in its own process; print the table; return the JSON summary."""
    if fmt not in FORMATS:
        raise ValueError(f"--glue-format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    with tempfile.TemporaryDirectory(prefix="vsremaster-glue-") as tmp:
        if cfg.weights is None:
            weights, source = bundled_weights(), f"bundled {bundled_weights().name}"
            log(f"weights: {source}")
        else:
            weights, source = resolve_weights(cfg.weights, Path(tmp))
        base = {"frames": cfg.frames, "format": fmt, "threads": threads,
                "device": str(cfg.device), "precision": cfg.precision,
                "weights": str(weights), "refs": cfg.refs, "ref_size": cfg.ref_size,
                "seed": cfg.seed, "filter_args": cfg.ours_args}
        cases = {}
        for label, (w, h) in (("small", SMALL), ("big", BIG)):
            log(f"glue: {w}x{h} {fmt.upper()}, {cfg.frames} frames, model at "
                f"{SMALL[0]}x{SMALL[1]}, {threads} VapourSynth threads")
            cases[label] = _run_child({**base, "width": w, "height": h})
            log(f"glue: {w}x{h}: {cases[label]['fps']} fps, peak RSS "
                f"{cases[label]['peak_rss_mb']} MB")
    small, big = cases["small"], cases["big"]
    ratio = round(big["fps"] / small["fps"], 3) if small["fps"] and big["fps"] else None
    cpu_ratio = round(small["cpu_ms_per_frame"] / big["cpu_ms_per_frame"], 3) \
        if small["cpu_ms_per_frame"] and big["cpu_ms_per_frame"] else None
    summary = {"mode": "glue", "small_fps": small["fps"], "big_fps": big["fps"],
               "ratio": ratio, "cpu_ratio": cpu_ratio, "small_peak_rss_mb": small["peak_rss_mb"],
               "big_peak_rss_mb": big["peak_rss_mb"], "frames": cfg.frames,
               "format": fmt.upper(), "threads": threads, "mindim": MINDIM,
               "model_size": list(SMALL), "big_size": list(BIG), "refs": cfg.refs,
               "ref_size": cfg.ref_size, "device": device_name(cfg.device),
               "weights": source, "filter_args": {k: str(v) for k, v in cfg.ours_args.items()},
               "target_ratio": TARGET_RATIO, "target_big_peak_rss_mb": TARGET_BIG_RSS_MB,
               "small": small, "big": big}
    print_glue(summary)
    return summary


def print_glue(summary: dict) -> None:
    w, h = summary["model_size"]
    print(f"Glue benchmark: networks at {w}x{h} (mindim {summary['mindim']}), "
          f"{summary['frames']} frames of {summary['format']}, {summary['threads']} "
          f"VapourSynth threads, {summary['refs']} references of {summary['ref_size']} px, "
          f"{summary['device']}")
    print(f"weights: {summary['weights']}"
          + (f"; filter arguments {summary['filter_args']}" if summary["filter_args"] else ""))
    print(f"{'input':<10} {'fps':>8} {'fps+build':>10} {'build s':>8} {'CPU ms/frame':>13} "
          f"{'peak RSS MB':>12} {'render +MB':>11} {'source fps':>11}  output")
    for case in (summary["small"], summary["big"]):
        print(f"{case['input']:<10} {fmt(case['fps'], '8.3f')} {fmt(case['fps_with_build'], '10.3f')} "
              f"{fmt(case['build_s'], '8.2f')} {fmt(case['cpu_ms_per_frame'], '13.1f')} "
              f"{fmt(case['peak_rss_mb'], '12.1f')} "
              f"{fmt(case['render_rss_growth_mb'], '11.1f')} {fmt(case['source_fps'], '11.1f')}  "
              f"{case['output_format']}")
    print(f"ratio {summary['big_size'][0]}x{summary['big_size'][1]} fps / {w}x{h} fps: "
          f"{fmt(summary['ratio'], '.3f')} (target >= {summary['target_ratio']}; in CPU time "
          f"per frame {fmt(summary['cpu_ratio'], '.3f')}); "
          f"{summary['big_size'][1]}p peak RSS {fmt(summary['big_peak_rss_mb'], '.1f')} MB "
          f"(target <= {summary['target_big_peak_rss_mb']:.0f})")


if __name__ == "__main__":
    print(json.dumps(run_case(json.loads(sys.argv[1]))), flush=True)
