"""Float32 matrix products on this CPU: torch.mm (MKL's sgemm) against oneDNN's linear
(model.gemm), at the shapes the networks multiply at 224x160 with 6 references.

Shapes (M x K x N): the source-reference attention's logits (560 x 64 x 8448) and
weighted values (560 x 8448 x 512), Winograd's products in the decoder (560 x 3072 x 512,
one frame) and in the restoration (560 x 768 x 256, a strided view as `convolve` passes
it). Each product runs --repeat times after two untimed runs; the fastest counts.

    python benchmarks/gemm_backends.py
    python benchmarks/gemm_backends.py --threads 2 --repeat 10

Prints figures, then one JSON line.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from vsremaster.model import gemm

SHAPES = {"attention logits": (560, 64, 8448), "attention values": (560, 8448, 512),
          "winograd decoder": (560, 3072, 512), "winograd restoration": (560, 768, 256)}


def fastest(fn, repeat: int) -> float:
    for _ in range(2):
        fn()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    gen = torch.Generator().manual_seed(0)
    print(f"float32 products, {torch.get_num_threads()} torch threads, ATen CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, oneDNN linear available: "
          f"{gemm.onednn(torch.zeros(1))}; fastest of {args.repeat}")
    rows = {}
    for name, (m, k, n) in SHAPES.items():
        if name.startswith("winograd restoration"):
            # a tile's 3 of 6 frames: rows 6 * 256 apart, as convolve's inputs
            a = torch.randn(m, 6, k // 3, generator=gen)[:, 1:4].flatten(1)
        else:
            a = torch.randn(m, k, generator=gen)
        w = torch.randn(n, k, generator=gen)
        flops = 2 * m * k * n
        mkl = fastest(lambda: torch.mm(a, w.t()), args.repeat)
        dnn = fastest(lambda: gemm.linear(a, w), args.repeat)
        err = (gemm.linear(a, w).double() - a.double() @ w.double().t()).abs().max().item()
        rows[name] = {"mkl_ms": round(mkl * 1e3, 3), "onednn_ms": round(dnn * 1e3, 3),
                      "mkl_gflops": round(flops / mkl / 1e9), "onednn_gflops": round(flops / dnn / 1e9),
                      "speedup": round(mkl / dnn, 3), "max_abs_err": err}
        r = rows[name]
        print(f"  {name:22s} {m}x{k}x{n}: torch.mm {r['mkl_ms']:8.2f} ms ({r['mkl_gflops']} GFLOPS)"
              f"  oneDNN {r['onednn_ms']:8.2f} ms ({r['onednn_gflops']} GFLOPS)  {r['speedup']:.2f}x"
              f"  max |err| {err:.1e}")
    print(json.dumps({"threads": torch.get_num_threads(),
                      "capability": torch.backends.cpu.get_cpu_capability(), "shapes": rows}))


if __name__ == "__main__":
    main()
