"""Loaded networks shared by every filter instance using the same weights and device.

Held weakly: when the last clip using a model is freed, the model is freed too, so
script editors that re-evaluate a script keep memory flat.
"""
from __future__ import annotations

import functools
import os
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

import torch

from ..model import NetworkC, NetworkR

# Reserved VRAM stays near allocated when segments can grow and shrink: chunks of other
# shapes (scene ends, seeks, other clips) then reuse memory instead of reserving more.
# Read when CUDA first allocates; a user's own setting wins.
os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")
from ..model.checkpoint import load_checkpoint
from ..model import winograd
from ..model.fold import fold_batchnorm


@dataclass(eq=False)
class Models:
    """Both networks on one device in one dtype, and a lock serialising their use."""

    restore: NetworkR
    colorize: NetworkC
    device: torch.device
    dtype: torch.dtype
    name: str

    def __post_init__(self):
        self.lock = threading.Lock()


_shared: "weakref.WeakValueDictionary[tuple, Models]" = weakref.WeakValueDictionary()
_guard = threading.Lock()


def shared_models(path: Path, device: torch.device, dtype: torch.dtype) -> Models:
    """The loaded networks for a weights file, device and dtype (loaded once)."""
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_mtime_ns, st.st_size, str(device), dtype)
    with _guard:
        models = _shared.get(key)
        if models is None:
            model_r, model_c = load_checkpoint(path, device=device)
            # folded in float32, then cast: the halves see the folded weights rounded once
            fold_batchnorm(model_r).to(dtype)
            fold_batchnorm(model_c).to(dtype)
            cpu32 = device.type == "cpu" and dtype == torch.float32
            if cpu32:
                # the encoders' wide 2-D layers by Winograd: 1.19x (224x160, AVX2;
                # benchmarks/conv_forms.py --net encoders)
                winograd.attach(model_c)
            models = Models(model_r, model_c, device, dtype, getattr(model_c, "name", ""))
            if cpu32:
                # Winograd's scratch outlives a call; free it with the networks
                weakref.finalize(models, winograd.SCRATCH.clear)
            _shared[key] = models
        return models


def half_dtype(device: torch.device) -> torch.dtype:
    """The networks' half precision on `device`: float16 on CUDA; bfloat16 on a CPU, the
    half type CPUs multiply in hardware (float16 is emulated there and slower than float32)."""
    return torch.float16 if device.type == "cuda" else torch.bfloat16


@functools.lru_cache(maxsize=1)
def cpu_bfloat16() -> str | None:
    """How this CPU multiplies bfloat16: "amx" (AMX tiles), "avx512_bf16", or None (only
    by emulation: slower than float32). Read from torch's CPU feature checks."""
    if not torch.backends.mkldnn.is_available():
        return None
    checks = (("amx", "_is_amx_tile_supported"), ("avx512_bf16", "_is_avx512_bf16_supported"))
    for name, check in checks:
        try:
            if getattr(torch.cpu, check)():
                return name
        except (AttributeError, RuntimeError):
            pass
    return None
