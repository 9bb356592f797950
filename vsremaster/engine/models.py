"""Loaded networks shared by every filter instance using the same weights and device.

Held weakly: when the last clip using a model is freed, the model is freed too, so
script editors that re-evaluate a script keep memory flat.
"""
from __future__ import annotations

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
            models = Models(model_r, model_c, device, dtype, getattr(model_c, "name", ""))
            _shared[key] = models
        return models
