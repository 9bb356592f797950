"""What the match confidence costs (issue 17): the filter with and without it, and the
per-frame encoders alone.

On the sample film (or --input) with its references, the bundled weights (or --weights),
frames pulled in order through VapourSynth with `clip.frames()`, each case a filter of
its own (the loaded networks are shared, so only the first case loads them; an untimed
warm-up run comes first):

- colour: `Remaster(clip, refs, mindim)`;
- colour+prop: `Remaster(..., confidence=True)` (`_RemasterConfidence` on every frame);
- colour+map: `Remaster(..., confidence=True)` and `Confidence(...)` of the same clip
  object and arguments, both outputs' frame n requested together (one engine);
- map: `Confidence(...)` alone.

Each case gets a clip object of its own, so no case shares another's engine.

Cases run --repeat times in turn (ABCD ABCD ...) and the fastest run of each counts,
which damps other jobs on a shared machine. Then the per-frame encoders
(`NetworkC.encode_frame_batch`, one frame per call as the engine runs them) with and
without the confidence, at the film's model size: median of --micro calls.

    python benchmarks/confidence_cost.py                        # CPU, mindim 240, 96 frames
    python benchmarks/confidence_cost.py --device-index 0 --mindim 320 --frames 240

Prints figures, then one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# ../shared beside the checkout (VSREMASTER_SHARED elsewhere), as the tests find it
SAMPLES = Path(os.environ.get("VSREMASTER_SHARED", ROOT.parent / "shared")) / "samples" / "a-bomb"
CASES = ("colour", "colour+prop", "colour+map", "map")


def run_case(case: str, clip, refs: str, kw: dict) -> float:
    """Seconds to pull every frame of the case's output(s) in order."""
    import vsremaster
    # a clip object of its own: outputs of the same clip object and arguments share one
    # engine (and its finished cells), which would let a case reuse the case before's work
    clip = clip.std.Trim(0, clip.num_frames - 1)
    t = time.perf_counter()
    if case == "colour+map":
        colour = vsremaster.Remaster(clip, refs, confidence=True, **kw)
        conf = vsremaster.Confidence(clip, refs, **kw)
        for a, b in zip(colour.frames(), conf.frames()):
            pass
    else:
        out = vsremaster.Confidence(clip, refs, **kw) if case == "map" else \
            vsremaster.Remaster(clip, refs, confidence=case == "colour+prop", **kw)
        for _ in out.frames():
            pass
    return time.perf_counter() - t


def micro(kw: dict, clip, refs: str, calls: int) -> dict:
    """Median ms of one frame through the per-frame encoders, without/with confidence."""
    import torch

    from vsremaster.engine.models import shared_models
    from vsremaster.frames.source import processing_size
    from vsremaster.references.sources import load_bank
    from vsremaster.references.canvas import place_on_canvas
    from vsremaster.engine.placement import find_weights, pick_device, pick_dtype
    device = pick_device(kw["device_index"])
    dtype = pick_dtype(None, device)
    models = shared_models(find_weights(kw.get("weights")), device, dtype)
    pw, ph = processing_size(clip.width, clip.height, kw["mindim"])
    bank = load_bank(refs)
    canvas = place_on_canvas(bank.images, kw["ref_mindim"])
    net = models.colorize
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 1, ph, pw, generator=g).to(device, dtype)
    out = {}
    with torch.inference_mode():
        enc = net.encode_refs(torch.from_numpy(canvas).to(device, dtype)[None])
        for name, flag in (("without", False), ("with", True), ("without_again", False)):
            times = []
            for _ in range(calls):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t = time.perf_counter()
                net.encode_frame_batch(x, enc, flag)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - t)
            out[name] = statistics.median(times) * 1000
    out["size"] = [pw, ph]
    out["references"] = len(bank)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default=str(SAMPLES / "a-bomb_blast_effects_part.mp4"))
    parser.add_argument("--refs", default=str(SAMPLES / "references"))
    parser.add_argument("--weights", default=None, help="default: the usual search (bundled)")
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--mindim", type=int, default=240)
    parser.add_argument("--ref-mindim", type=int, default=256)
    parser.add_argument("--device-index", type=int, default=-1)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--micro", type=int, default=20, help="calls per micro case")
    parser.add_argument("--threads", type=int, default=None, help="VapourSynth threads")
    args = parser.parse_args()

    import torch
    import vapoursynth as vs
    core = vs.core
    if args.threads:
        core.num_threads = args.threads
    clip = core.bs.VideoSource(args.input)[:args.frames]
    kw = dict(weights=args.weights, mindim=args.mindim, ref_mindim=args.ref_mindim,
              device_index=args.device_index)
    run_case("colour+map", clip[:8], args.refs, kw)                       # warm-up
    runs: dict[str, list[float]] = {c: [] for c in CASES}
    for r in range(args.repeat):
        for case in CASES:
            runs[case].append(run_case(case, clip, args.refs, kw))
            print(f"run {r + 1} {case:<12} {runs[case][-1]:7.2f} s", flush=True)
    best = {c: min(v) for c, v in runs.items()}
    per_frame = {c: best[c] / args.frames * 1000 for c in CASES}
    m = micro(kw, clip, args.refs, args.micro)
    device = "cpu" if args.device_index == -1 else torch.cuda.get_device_name(args.device_index)
    print(f"\n{args.frames} frames of {Path(args.input).name} at mindim {args.mindim} "
          f"({m['size'][0]}x{m['size'][1]}), {m['references']} references, {device}, "
          f"{core.num_threads} VapourSynth threads, {torch.get_num_threads()} torch threads")
    print(f"{'case':<12} {'ms/frame':>9} {'vs colour':>9}")
    for c in CASES:
        print(f"{c:<12} {per_frame[c]:9.1f} {per_frame[c] / per_frame['colour']:9.3f}")
    print(f"per-frame encoders, one frame: {m['without']:.2f} ms without, {m['with']:.2f} ms "
          f"with the confidence ({m['without_again']:.2f} ms without, again)")
    print(json.dumps({"frames": args.frames, "mindim": args.mindim, "size": m["size"],
                      "references": m["references"], "device": device,
                      "vs_threads": core.num_threads, "torch_threads": torch.get_num_threads(),
                      "seconds": runs, "ms_per_frame": per_frame,
                      "overhead_prop": per_frame["colour+prop"] / per_frame["colour"] - 1,
                      "overhead_map": per_frame["colour+map"] / per_frame["colour"] - 1,
                      "encoders_ms": {k: m[k] for k in ("without", "with", "without_again")}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
