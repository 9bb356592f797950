"""The limits on what the filter will allocate, and recognising allocation failures.

Each limit keeps a hostile or careless argument from taking the machine's memory before
any check could speak; README's "Limits" lists them with their reasons.
"""
from __future__ import annotations

import re

import torch

#: Largest `mindim` per device type. On the CPU the model runs in float32 and the whole
#: filter holds about 3.5 kB per model pixel whatever the chunk (pushes of a few frames
#: and the streams' carries; benchmarks/limits_memory.py: 3522 B between mindim 160 and
#: 320): about 7.3 GB at 1920x1080, 16 times that at 4320.
#: CUDA devices run half precision and split work that does not fit.
MAX_MINDIM = {"cpu": 1080, "cuda": 4320}
#: Largest `ref_mindim` per device type (the reference canvas's short edge).
MAX_REF_MINDIM = {"cpu": 1024, "cuda": 2048}
#: Most pixels on one reference set's canvases together (references x canvas height x
#: width): the reference encoder holds about 200 bytes per canvas pixel in float32
#: (benchmarks/limits_memory.py), so 16 MP is about 3 GB.
MAX_CANVAS_PIXELS = {"cpu": 16_000_000, "cuda": 64_000_000}
#: Longest edge / shortest edge of the clip and of each reference (the widest film
#: formats are under 3:1; a 100000x1 image would make an enormous canvas).
MAX_ASPECT = 8.0

#: A reference image file: at most this many bytes on disk ...
MAX_REF_FILE_BYTES = 320 * 1000 * 1000
#: ... at most this many pixels (e.g. 8660x5773) ...
MAX_REF_PIXELS = 50_000_000
#: ... and at most this many bytes once decoded (a 50 MP 16-bit RGB image is 300 MB).
MAX_REF_DECODED_BYTES = 320 * 1000 * 1000
#: Most bytes choosing keeps for a bank (files, or frames of a refs clip of another
#: length): per reference its name and anchor (about 130 bytes plus the name), and per
#: unanchored one a descriptor (about 2.7 kB). About 400,000 anchored references, or
#: 23,000 unanchored; the count itself is not limited.
MAX_BANK_INDEX_BYTES = 64 * 1000 * 1000
#: Reference images kept at once (each at most 512 on its short edge), in entries and
#: bytes; a bank within both is read whole at creation, a larger one per scene.
REF_CACHE_IMAGES = 64
REF_CACHE_BYTES = 256 * 1000 * 1000


def device_kind(device) -> str:
    """'cpu' or 'cuda' for a torch.device or its name."""
    return torch.device(device).type


# Messages of allocation failures that are not MemoryError/torch.OutOfMemoryError: torch's
# CPU allocator ("DefaultCPUAllocator: can't allocate memory: you tried to allocate ..."),
# C++ std::bad_alloc surfacing as RuntimeError, CUDA libraries' allocation statuses, and
# OpenCV's "Failed to allocate N bytes" / "Insufficient memory".
_OOM_MESSAGE = re.compile(
    r"DefaultCPUAllocator: (can't allocate memory|not enough memory)"
    r"|\bbad_alloc\b|\bout of memory\b|_STATUS_ALLOC_FAILED"
    r"|Failed to allocate \d+ bytes|Insufficient memory", re.IGNORECASE)


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether `exc` (or the exception it was raised `from`) is an allocation failure.

    Device and host alike: torch.OutOfMemoryError, MemoryError (numpy's too), and the
    RuntimeErrors torch's CPU allocator and the CUDA libraries raise when an
    allocation fails. Other errors (a shape mismatch, a bad frame) are not.
    """
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, (MemoryError, torch.OutOfMemoryError)):
            return True
        if isinstance(exc, RuntimeError) and _OOM_MESSAGE.search(str(exc)):
            return True
        if type(exc).__name__ == "error" and _OOM_MESSAGE.search(str(exc)):   # cv2.error
            return True
        # only an explicit `raise ... from`: an error raised while handling an
        # allocation failure is not one itself
        exc, seen = exc.__cause__, seen + 1
    return False
