"""The streamed 3x3x3 convolutions in each form (model.streaming.CONV_FORMS), timed.

A network's stream (NetworkR's restoration, or NetworkC's decoder over features the
encoder computed first, untimed) runs over the same synthetic frames, pushed in pieces
as the engine pushes them on a CPU, once per form and frames-per-call; the runs
alternate --repeat times and the fastest of each counts (a shared machine's other jobs
only ever slow a run down). Outputs are compared with the first variant's.
`--net encoders` times NetworkC's per-frame encoders instead (no references), form
"direct" (conv2d) or "winograd" (model.winograd.attach), in calls of that many frames.

Weights: PyTorch's default init seeded with 0, batch norm folded as the engine does
(speed does not depend on the values).

    python benchmarks/conv_forms.py                                 # restoration, float32
    python benchmarks/conv_forms.py --net decoder
    python benchmarks/conv_forms.py --variants frame:4,winograd-frame:4,taps:4
    python benchmarks/conv_forms.py --net decoder --variants taps:4,winograd:4,frame:4
    python benchmarks/conv_forms.py --net encoders --variants direct:4,winograd:4
    python benchmarks/conv_forms.py --dtype bf16 --variants taps:4,frame:1,frame:4
    python benchmarks/conv_forms.py --device cuda --dtype fp16 --width 528 --height 400 \
        --frames 64 --push 16 --variants taps:8,frame:8

Prints figures, then one JSON line.
"""
from __future__ import annotations

import argparse
import copy
import json
import time

import torch

from vsremaster.engine.models import warm_cpu_math
from vsremaster.model import NetworkC, NetworkR, winograd
from vsremaster.model.decoding import DecoderStream
from vsremaster.model.fold import fold_batchnorm
from vsremaster.model.streaming import RestorationStream, per_frame

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def streams(args):
    """(make(form, per_call) -> stream, pieces) for the chosen network."""
    torch.manual_seed(0)
    dtype, device = DTYPES[args.dtype], torch.device(args.device)
    x = torch.rand(args.frames, 1, args.height, args.width, dtype=dtype, device=device)
    cut = range(0, args.frames, args.push)
    if args.net == "restoration":
        net = fold_batchnorm(NetworkR().eval()).to(device, dtype)
        return (lambda form, b: RestorationStream(net, b, form)), [x[i:i + args.push] for i in cut]
    if args.net == "encoders":
        nets = {"direct": fold_batchnorm(NetworkC().eval()).to(device, dtype)}
        nets["winograd"] = winograd.attach(copy.deepcopy(nets["direct"]))
        return (lambda form, b: Encoders(nets[form], b)), [x[i:i + args.push] for i in cut]
    net = fold_batchnorm(NetworkC().eval()).to(device, dtype)
    with torch.no_grad():
        skip, deep = net.encode_frame_batch(x, None)
    return (lambda form, b: DecoderStream(net, batch=b, form=form)), \
        [(skip[i:i + args.push], deep[i:i + args.push]) for i in cut]


class Encoders:
    """The per-frame encoders as a stream-like object (calls of `batch` frames)."""

    def __init__(self, net, batch: int):
        self.net, self.batch = net, batch

    def begin(self, start, scene_start):
        return None

    def push(self, state, x, last=False):
        return None, per_frame(lambda f: self.net.encode_frame_batch(f)[0], x, self.batch)


def run(stream, pieces) -> tuple[float, torch.Tensor]:
    """Seconds for the whole scene and its outputs."""
    state, outs = stream.begin(0, True), []
    start = time.perf_counter()
    for k, piece in enumerate(pieces):
        state, out = stream.push(state, piece, last=k == len(pieces) - 1)
        if out is not None:
            outs.append(out[1] if isinstance(out, tuple) else out)
    if outs[0].is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start, torch.cat(outs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--net", choices=("restoration", "decoder", "encoders"),
                    default="restoration")
    ap.add_argument("--dtype", choices=tuple(DTYPES), default="fp32")
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    ap.add_argument("--width", type=int, default=224)
    ap.add_argument("--height", type=int, default=160)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--push", type=int, default=8, help="frames per push (the engine's CPU step)")
    ap.add_argument("--variants", default="taps:4,frame:4",
                    help="form:frames-per-call, comma separated; the first is the reference")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    variants = [(v.split(":")[0], int(v.split(":")[1])) for v in args.variants.split(",")]
    warm_cpu_math()                     # as the filter does: ELU at the filter's speed
    make, pieces = streams(args)
    best, diff, first = {}, {}, None
    with torch.no_grad():
        for rep in range(args.repeat):
            for form, b in variants:
                seconds, out = run(make(form, b), pieces)
                key = f"{form}:{b}"
                print(f"{args.net} {key} run {rep + 1}: {seconds:.2f} s", flush=True)
                best[key] = min(best.get(key, float("inf")), seconds)
                first = out.float() if first is None else first
                diff[key] = float((out.float() - first).abs().max())
    ref = f"{variants[0][0]}:{variants[0][1]}"
    print(f"{args.net} on {args.device}, {args.frames} frames of {args.width}x{args.height}, "
          f"{args.dtype}, pushes of {args.push}, {torch.get_num_threads()} torch threads "
          f"(fastest of {args.repeat}):")
    for key, seconds in best.items():
        print(f"  {key:10s} {seconds:7.2f} s  {best[ref] / seconds:.3f}x {ref}  "
              f"max |diff| {diff[key]:.3g}")
    print(json.dumps({"net": args.net, "device": args.device, "dtype": args.dtype,
                      "width": args.width,
                      "height": args.height, "frames": args.frames, "push": args.push,
                      "threads": torch.get_num_threads(),
                      "seconds": {k: round(v, 3) for k, v in best.items()},
                      "speedup_vs_first": {k: round(best[ref] / v, 3) for k, v in best.items()},
                      "max_abs_diff": diff}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
