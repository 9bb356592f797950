"""Torch's CPU ops on a second thread while the main thread's OpenMP team lives.

The filter runs its networks on VapourSynth's worker threads, after the script's thread
(vspipe's main thread) has run torch ops of its own (loading and folding weights). Each
thread that enters a parallel region gets an OpenMP team of its own; with more OpenMP
threads than CPUs, libgomp (PyTorch's wheels) spins only briefly between regions, so a
short op pays a sleeping worker's wake-up. This times a few ops of the engine (an add,
Winograd's input transform and a whole Winograd convolution, a oneDNN product) on the
main thread, on a second thread while the main thread's team lives, on a second thread
after the main thread's team was ended (`engine.host.release_openmp_threads`, what the
filter does after each job), and again on the main thread; `--fresh` runs the second
case with no torch work on the main thread first.

    python benchmarks/omp_teams.py
    python benchmarks/omp_teams.py --fresh

Prints figures, then one JSON line.
"""
from __future__ import annotations

import argparse
import json
import threading

import torch

from vsremaster.engine.host import release_openmp_threads
from vsremaster.model import gemm, winograd

from gemm_backends import fastest       # benchmarks/ is the script's folder


def case(repeat: int) -> dict:
    """The ops' fastest times in ms on the calling thread (one 256->256 3x3x3 layer of the
    restoration at 56x40, 4 output frames, float32)."""
    torch.set_grad_enabled(False)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 40, 56, 256, generator=gen)
    conv = torch.nn.Conv3d(256, 256, 3, padding=(0, 1, 1))
    u, out = winograd.weight_transform(conv.weight.detach()), torch.empty(4, 40, 56, 256)
    a, w = torch.randn(560, 768, generator=gen), torch.randn(256, 768, generator=gen)
    y = torch.randn(4, 20, 28, 256, generator=gen)
    with winograd.SCRATCH.use() as s:
        transform = fastest(lambda: winograd.input_transform(x, s, 0, 20), repeat) * 1e3
    return {"add_ms": round(fastest(lambda: y + y, repeat) * 1e3, 4),
            "input_transform_ms": round(transform, 3),
            "winograd_conv_ms": round(fastest(lambda: winograd.convolve(x, u, conv.bias, out),
                                              repeat) * 1e3, 3),
            "product_ms": round(fastest(lambda: gemm.linear(a, w), repeat) * 1e3, 3)}


def on_thread(repeat: int) -> dict:
    box = []
    t = threading.Thread(target=lambda: box.append(case(repeat)))
    t.start()
    t.join()
    return box[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--fresh", action="store_true",
                    help="no torch work on the main thread before the second thread's")
    args = ap.parse_args()
    runs = {}
    if not args.fresh:
        runs["main thread"] = case(args.repeat)
    runs["second thread"] = on_thread(args.repeat)
    release_openmp_threads()
    runs["after release"] = on_thread(args.repeat)
    runs["main thread again"] = case(args.repeat)
    print(f"{torch.get_num_threads()} torch threads; fastest of {args.repeat}, ms")
    for name, r in runs.items():
        print(f"  {name:18s} " + "  ".join(f"{k[:-3]} {v}" for k, v in r.items()))
    print(json.dumps({"threads": torch.get_num_threads(), "fresh": args.fresh, "runs": runs}))


if __name__ == "__main__":
    main()
