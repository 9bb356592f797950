"""Which way of computing DeepRemaster's unscaled attention is fastest on this device.

The released attention has q/k of C/8 = 64 channels and v of C = 512, and no 1/sqrt(d)
scaling. Fused kernels (flash) need equal head sizes, so besides plain SDPA we try
splitting v into heads that share q and k. Prints a table, then one JSON line.

    python benchmarks/attention_backends.py --positions 3300 --frames 30 --dtype fp16
"""
from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F


def plain(q, k, v):
    return F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None], scale=1.0)[:, 0]


def heads(n):
    def run(q, k, v):
        b, s, c = v.shape
        v4 = v.view(b, s, n, c // n).transpose(1, 2)
        d = c // n
        q4, k4 = q[:, None].expand(b, n, -1, -1), k[:, None].expand(b, n, -1, -1)
        if d != q.shape[-1]:          # pad q/k with zeros up to the value head size
            q4 = F.pad(q4, (0, d - q.shape[-1]))
            k4 = F.pad(k4, (0, d - k.shape[-1]))
        out = F.scaled_dot_product_attention(q4, k4, v4, scale=1.0)
        return out.transpose(1, 2).reshape(b, -1, c)
    return run


def matmul(q, k, v, block=4096):
    outs = []
    for i in range(0, q.shape[1], block):
        a = torch.softmax(torch.bmm(q[:, i:i + block], k.transpose(1, 2)).float(), -1).to(v.dtype)
        outs.append(torch.bmm(a, v))
    return torch.cat(outs, 1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--positions", type=int, default=3300, help="positions per frame")
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--dtype", default="fp16", choices=["fp16", "bf16", "fp32"])
    p.add_argument("--repeat", type=int, default=5)
    a = p.parse_args()
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[a.dtype]
    L = a.positions * a.frames
    g = torch.Generator(device="cpu").manual_seed(0)
    q = (torch.randn(1, L, 64, generator=g) * 0.3).to(dev, dtype)
    k = (torch.randn(1, L, 64, generator=g) * 0.3).to(dev, dtype)
    v = torch.randn(1, L, 512, generator=g).to(dev, dtype)
    ref = matmul(q.float(), k.float(), v.float())
    rows = {}
    for name, fn in [("sdpa", plain), ("heads8x64", heads(8)), ("heads4x128", heads(4)),
                     ("heads2x256", heads(2)), ("matmul_blocks", matmul)]:
        try:
            fn(q, k, v)
            if dev == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            t = time.perf_counter()
            for _ in range(a.repeat):
                out = fn(q, k, v)
            if dev == "cuda":
                torch.cuda.synchronize()
            ms = (time.perf_counter() - t) / a.repeat * 1e3
            err = (out.float() - ref).abs().max().item()
            mem = torch.cuda.max_memory_allocated() / 2**20 if dev == "cuda" else 0
            rows[name] = {"ms": round(ms, 2), "max_err": err, "peak_mb": round(mem)}
        except Exception as e:     # a backend that cannot run these shapes
            rows[name] = {"error": str(e).splitlines()[0][:120]}
        print(f"{name:14s} {rows[name]}")
    print(json.dumps({"device": dev, "dtype": a.dtype, "positions": L, **rows}))


if __name__ == "__main__":
    main()
