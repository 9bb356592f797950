"""Where the filter runs: device, precision, size limits, weights and push sizes.

Every choice that depends on the machine is made here, when the script runs, so a
problem is a `vs.Error("Remaster: ...")` before any frame is rendered.
"""
from __future__ import annotations

import os
from numbers import Integral

import torch
import vapoursynth as vs

from .. import limits
from ..model.checkpoint import CheckpointError
from ..settings import fail
from ..weights import find_weights as search_weights
from .models import cpu_bfloat16, half_dtype, shared_models

DEFAULT_CHUNK = {"cpu": 24, "cuda": 32}
#: Bytes one frame of a push needs, per model pixel and byte of the sample type (NetworkR's
#: peak with the released layers, CUDA fp16 and CPU float32, with room for the streamed
#: taps; benchmarks/RESULTS.md, "Figures moved out of the code's comments").
_PUSH_BYTES_PER_PIXEL_BYTE = 210
_PUSH_BUDGET_CPU = 2 << 30
_PUSH_BUDGET_CUDA = 8 << 30
#: On a CPU a push stays near this many model pixels (a multiple of the engine's 4-frame
#: batch), so each layer runs over a few frames while their inputs are still in cache.
_PUSH_PIXELS_CPU = 8 * 224 * 160


def pick_device(device_index) -> torch.device:
    if device_index is None:
        return torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    if isinstance(device_index, bool) or not isinstance(device_index, Integral):
        fail(f"device_index must be None (auto), -1 (CPU) or a CUDA device number, "
              f"not {device_index!r}")
    if device_index == -1:
        return torch.device("cpu")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if not 0 <= device_index < count:
        allowed = f"None (auto), -1 (CPU) or 0-{count - 1}" if count else "None (auto) or -1 (CPU)"
        where = f"this machine has CUDA devices 0-{count - 1}" if count else \
            "this machine has no CUDA device, or torch was built without CUDA"
        fail(f"device_index {device_index} names a CUDA device that does not exist "
              f"({where}); allowed: {allowed}")
    return torch.device("cuda", int(device_index))


def check_sizes(clip: vs.VideoNode, mindim: int, ref_mindim: int,
                 device: torch.device) -> None:
    """The per-device limits on model sizes, and the clip's aspect (limits.py says why)."""
    kind = device.type
    where = "the CPU" if kind == "cpu" else "CUDA devices"
    if mindim > limits.MAX_MINDIM[kind]:
        why = (" (in float32 the filter holds about 7 GB at 1920x1080, and memory grows "
               "with the square of mindim)"
               if kind == "cpu" else "")
        fail(f"mindim {mindim} is too large for {where}; allowed: at most "
              f"{limits.MAX_MINDIM[kind]} there{why}")
    if ref_mindim > limits.MAX_REF_MINDIM[kind]:
        fail(f"ref_mindim {ref_mindim} is too large for {where}; allowed: at most "
              f"{limits.MAX_REF_MINDIM[kind]} there (the reference encoder holds about "
              "200 bytes per canvas pixel)")
    aspect = max(clip.width, clip.height) / min(clip.width, clip.height)
    if aspect > limits.MAX_ASPECT:
        fail(f"clip is {clip.width}x{clip.height} (aspect {aspect:.1f}:1); allowed: an "
              f"aspect of at most {limits.MAX_ASPECT:g}:1 (crop it)")


def pick_dtype(fp16, device: torch.device) -> torch.dtype:
    """fp16 (True, False or None: auto) -> the networks' dtype on `device`.

    Half precision is float16 on CUDA and bfloat16 on a CPU. Auto picks it where the
    hardware multiplies it fast: CUDA, and CPUs with AMX or AVX512-BF16 (README,
    "Precision", for the figures).
    """
    if fp16 is not None and not isinstance(fp16, bool):
        fail(f"fp16 must be True, False or None (auto), not {fp16!r}")
    bf16 = None if device.type == "cuda" else cpu_bfloat16()
    if fp16 is None:
        fp16 = device.type == "cuda" or bf16 is not None
    if fp16 and device.type != "cuda" and bf16 is None:
        fail("fp16=True on the CPU needs bfloat16 hardware (AMX or AVX512-BF16), which "
              "this CPU lacks; allowed here: fp16=False or None (float32)")
    return half_dtype(device) if fp16 else torch.float32


def find_weights(weights):
    if weights is not None and not isinstance(weights, (str, os.PathLike)):
        fail(f"weights must be a path to a weights file (str or os.PathLike) or None "
              f"(search the usual places), not {type(weights).__name__}")
    try:
        return search_weights(weights)
    except (CheckpointError, OSError) as e:
        fail(f"weights: {e}")


def load_models(path, device: torch.device, dtype: torch.dtype):
    """The shared models for a weights file; any problem with the file is a clear vs.Error."""
    try:
        return shared_models(path, device, dtype)
    except (CheckpointError, OSError) as e:
        fail(f"weights: {e}; allowed: the authors' remasternet.pth.tar or a vsremaster "
              ".safetensors file")


def push_step(pw: int, ph: int, device: torch.device, dtype: torch.dtype) -> int:
    """Frames per push through the networks that fit the memory budget. Sized by the
    model size (pw, ph), the restoration's: a colorization at a smaller `color_mindim`
    needs less per frame, so the bound holds for it too."""
    per_frame = _PUSH_BYTES_PER_PIXEL_BYTE * torch.finfo(dtype).bits // 8 * pw * ph
    if device.type == "cuda":
        budget = min(torch.cuda.mem_get_info(device)[0] // 4, _PUSH_BUDGET_CUDA)
    else:
        budget = _PUSH_BUDGET_CPU
    step = min(max(budget // per_frame, 1), 64)
    if device.type == "cpu":
        step = min(step, max(4, _PUSH_PIXELS_CPU // (pw * ph) // 4 * 4))
    return int(step)
