"""Matrix products for inference, by oneDNN on a CPU in float32.

Why: torch.mm/bmm multiply float32 on a CPU with MKL, whose sgemm takes its AVX2 paths
on AMD processors, where oneDNN's matmul (the kernels PyTorch's convolutions already
use) ran about twice as fast at the networks' attention and Winograd shapes
(benchmarks/gemm_backends.py; RESULTS.md "Float32 products by oneDNN"). bfloat16
products already go to oneDNN, and CUDA has its own: both keep torch's.

A product's bits depend on its shapes, not on which rows it holds, for a given backend;
the backend is chosen per device and dtype, so every frame of a process takes the same.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F


@functools.lru_cache(maxsize=1)
def _onednn_linear():
    """oneDNN's linear (x w^T) as PyTorch exposes it, or None where it does not."""
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        return torch.ops.mkldnn._linear_pointwise.default
    except (AttributeError, RuntimeError):
        return None


def onednn(*tensors: torch.Tensor) -> bool:
    """Whether products of these tensors go to oneDNN: float32 on a CPU, with nothing
    for autograd to record (the op has no backward) and oneDNN enabled."""
    return (_onednn_linear() is not None and torch.backends.mkldnn.enabled
            and all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors)
            and not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors)))


def linear(a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """a [M, K] @ w[N, K]^T -> [M, N] (contiguous). Either may be a strided view with a
    unit stride in K (w: or in N, e.g. the transpose of a contiguous [K, N])."""
    if onednn(a, w):
        return _onednn_linear()(a, w, None, "none", [], "")
    return F.linear(a, w)
