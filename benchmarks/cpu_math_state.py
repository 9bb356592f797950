"""ATen's vectorised CPU math before and after `engine.models.warm_cpu_math`, in a fresh process.

On the development machines' AMD Zen 4 (torch 2.14.1) F.elu, expm1 and log1p ran 12-28x
slower in a fresh process than after one vectorised float32 pow had run in it; the
filter therefore runs one when it loads networks on a CPU. This times each op on the
same tensor (activations-like: normal, sd 0.3, [4, 128, 80, 112] float32, channels
last) --repeat times before the warm-up and after it, fastest of each, and checks the
results are bit-identical. Run it as its own process (the state is process-wide).

    python benchmarks/cpu_math_state.py
    python benchmarks/cpu_math_state.py --threads 1

Prints figures, then one JSON line.
"""
from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from vsremaster.engine.models import cpu_capability, warm_cpu_math

OPS = {"elu": F.elu, "expm1": torch.expm1, "log1p": lambda x: torch.log1p(x.abs()),
       "tanh": torch.tanh, "exp": torch.exp, "sigmoid": torch.sigmoid}


def fastest(fn, x, repeat: int) -> tuple[float, torch.Tensor]:
    """(fastest seconds of `repeat` calls after one untimed, the result)."""
    out = fn(x)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn(x)
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(4, 128, 80, 112, generator=gen) * 0.3).contiguous(
        memory_format=torch.channels_last)
    before = {name: fastest(fn, x, args.repeat) for name, fn in OPS.items()}
    warm_cpu_math()
    after = {name: fastest(fn, x, args.repeat) for name, fn in OPS.items()}
    print(f"{x.numel()} float32 elements, {torch.get_num_threads()} torch threads, "
          f"ATen CPU capability {cpu_capability()}, fastest of {args.repeat}:")
    print(f"{'op':8s} {'before ms':>10s} {'after ms':>10s} {'ratio':>7s}  same bits")
    result = {}
    for name in OPS:
        (b, out_b), (a, out_a) = before[name], after[name]
        same = torch.equal(out_b, out_a)
        print(f"{name:8s} {b * 1e3:10.2f} {a * 1e3:10.2f} {b / a:7.2f}  {same}")
        result[name] = {"before_ms": round(b * 1e3, 3), "after_ms": round(a * 1e3, 3),
                        "ratio": round(b / a, 3), "same_bits": same}
    print(json.dumps({"threads": torch.get_num_threads(), "capability": cpu_capability(),
                      "elements": x.numel(), "ops": result}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
