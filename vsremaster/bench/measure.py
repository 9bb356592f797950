"""Measuring one method: wall and CPU clocks, peak RSS and VRAM, the time split by network.

Memory, per method:
- peak RSS: a sampling thread reads /proc/self/statm every 2 ms while the method runs
  (RSS is process-wide, so `resource.getrusage` would only give the peak of the whole
  process). It is reported both as the peak and as the growth over the RSS at the
  method's start (with `--in-process`, memory that earlier methods freed may stay in
  the allocator's heap), and with the process's high-water mark (VmHWM) at the method's
  end: in a process of its own (bench.isolated), everything the method held.
- peak VRAM (CUDA): `torch.cuda.max_memory_allocated`, reset before each method.
"""
from __future__ import annotations

import gc
import os
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import torch

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int | None:
    """Current resident set size, from /proc/self/statm (None where there is no /proc)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


def process_peak_rss() -> int:
    """Process-wide RSS high-water mark (VmHWM, else getrusage)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import resource
    except ImportError:
        raise RuntimeError("bench: the process's peak RSS needs /proc/self/status or the "
                           "POSIX resource module; this system (Windows?) has neither") \
            from None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


class PeakMemory:
    """Peak RSS (sampled by a thread) and peak CUDA memory while the block runs."""

    def __init__(self, device: torch.device, interval: float = 0.002):
        self.device, self.interval = device, interval
        self.start = self.peak = 0
        self.vram: int | None = None
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            now = rss_bytes()
            if now is not None and now > self.peak:
                self.peak = now

    def __enter__(self) -> "PeakMemory":
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
        now = rss_bytes()
        self._proc = now is None
        self.start = self.peak = now if now is not None else process_peak_rss()
        if not self._proc:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.vram = torch.cuda.max_memory_allocated(self.device)
        if self._proc:
            self.peak = process_peak_rss()
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, rss_bytes() or 0)


def mb(n: int | None) -> float | None:
    return None if n is None else round(n / 2**20, 1)


def rounded(x, nd=3):
    return None if x is None else round(x, nd)


def cpu_time() -> float:
    """CPU seconds used by this process so far (user + system, every thread)."""
    t = os.times()
    return t.user + t.system


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def is_oom(e: BaseException) -> bool:
    return isinstance(e, torch.cuda.OutOfMemoryError) or "out of memory" in str(e).lower()


@dataclass
class MethodResult:
    name: str
    frames: int = 0                    # output frames produced in the timed run
    seconds: float = 0.0
    cpu_seconds: float = 0.0           # process CPU time (all threads) in the timed run
    rss_start: int = 0
    rss_peak: int = 0
    vram_peak: int | None = None
    precision: str = "fp32"
    outputs: dict = field(default_factory=dict)     # frame -> RGB [H, W, 3] float32
    shape: tuple | None = None                       # one output frame's shape
    info: dict = field(default_factory=dict)
    error: str | None = None
    process_rss_peak: int | None = None    # VmHWM of the process it ran in, at its end

    @property
    def ms_per_frame(self) -> float | None:
        return 1000 * self.seconds / self.frames if self.frames else None

    @property
    def fps(self) -> float | None:
        return self.frames / self.seconds if self.frames and self.seconds else None

    @property
    def cpu_ms_per_frame(self) -> float | None:
        return 1000 * self.cpu_seconds / self.frames if self.frames else None


@contextmanager
def timed(res: MethodResult, device: torch.device):
    """Time the block (wall and CPU clocks, the device synchronised at the end) under
    `PeakMemory`; fill `res`'s seconds and memory. Yields the start time."""
    with PeakMemory(device) as mem:
        t0 = time.perf_counter()
        c0 = cpu_time()
        yield t0
        sync(device)
        res.seconds = time.perf_counter() - t0
        res.cpu_seconds = cpu_time() - c0
    res.rss_start, res.rss_peak, res.vram_peak = mem.start, mem.peak, mem.vram


class Keeper:
    """A sink keeping the RGB output of selected frames (for the sanity comparison)."""

    def __init__(self, keep: set[int], bgr: bool = False, chw: bool = False):
        self.keep, self.bgr, self.chw = keep, bgr, chw
        self.outputs: dict[int, np.ndarray] = {}
        self.count = 0
        self.shape = None

    def __call__(self, i, l, ab, image) -> None:
        self.count += 1
        img = image.transpose(1, 2, 0) if self.chw else image
        if self.shape is None:
            self.shape = tuple(img.shape)
        if i in self.keep:
            self.outputs[i] = np.ascontiguousarray(img[..., ::-1] if self.bgr else img, np.float32)


class SplitTimer:
    """Times a method's network calls by wrapping the models' methods (instance
    attributes, removed afterwards). On CUDA it synchronises around every call."""

    KINDS = (("restore", "restore", "forward"), ("restore", "stream", "push"),
             ("encode", "colorize", "encode_frame_batch"), ("decode", "decoder", "push"),
             ("refs", "colorize", "encode_refs"))

    def __init__(self, models, device: torch.device):
        self.models, self.device = models, device
        self.seconds = {k: 0.0 for k, _, _ in self.KINDS}
        self.calls = {k: 0 for k, _, _ in self.KINDS}
        self._patched = []

    def __enter__(self) -> "SplitTimer":
        for kind, attr, method in self.KINDS:
            obj = getattr(self.models, attr, None)
            original = getattr(obj, method, None)
            if obj is None or original is None:
                continue
            setattr(obj, method, self._wrap(kind, original))
            self._patched.append((obj, method))
        return self

    def _wrap(self, kind, original):
        def timed_call(*args, **kwargs):
            sync(self.device)
            t0 = time.perf_counter()
            out = original(*args, **kwargs)
            sync(self.device)
            self.seconds[kind] += time.perf_counter() - t0
            self.calls[kind] += 1
            return out
        return timed_call

    def __exit__(self, *exc) -> None:
        for obj, method in self._patched:
            try:
                delattr(obj, method)
            except AttributeError:
                pass


class _NoSplit:
    seconds = calls = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def split_for(split: bool, device: torch.device, **models):
    """A SplitTimer over the given networks (`restore=`, `stream=`, `colorize=`,
    `decoder=`): always
    on the CPU, on CUDA only when asked (it synchronises around every call)."""
    if not (split or device.type == "cpu"):
        return _NoSplit()
    return SplitTimer(SimpleNamespace(**models), device)


def record_split(res: MethodResult, split, before: float = 0.0) -> None:
    """Put the split into `res.info`; `other` = the timed run minus `before` minus the
    networks' time."""
    if split.seconds is None:
        return
    res.info["split_s"] = {k: round(v, 3) for k, v in split.seconds.items()}
    res.info["split_s"]["other"] = round(res.seconds - before - sum(split.seconds.values()), 3)
    res.info["split_calls"] = dict(split.calls)


def load_models(weights, device: torch.device, dtype: torch.dtype):
    """(NetworkR, NetworkC) from a weights file, on `device` in `dtype`, eval mode; on a
    CPU ATen's math warmed as the filter warms it (`warm_cpu_math`: else F.elu can run
    12-23x slower for these methods than for ours)."""
    from ..engine.models import warm_cpu_math
    from ..model.checkpoint import load_checkpoint
    if device.type == "cpu":
        warm_cpu_math()
    model_r, model_c = load_checkpoint(weights, device=device)
    return model_r.to(dtype), model_c.to(dtype)


def measure_networks(cfg, res: MethodResult, dtype: torch.dtype, weights, warm_input, sink,
                     warm, call) -> MethodResult:
    """Time a method that runs the networks itself (the baseline, the naive window).

    Loads the models, runs `warm(model_r, model_c, warm_input)` untimed (unless
    `warm_input` is None), then `call(model_r, model_c, sink)` timed, with the time split
    by network; frees the models afterwards. `call` returns the method's counts (info).
    """
    model_r, model_c = load_models(weights, cfg.device, dtype)
    try:
        if warm_input is not None:
            warm(model_r, model_c, warm_input)
        split = split_for(cfg.split, cfg.device, restore=model_r, colorize=model_c)
        with timed(res, cfg.device), split:
            res.info = call(model_r, model_c, sink)
        record_split(res, split)
        res.frames, res.outputs, res.shape = sink.count, sink.outputs, sink.shape
    finally:
        del model_r, model_c
        free(cfg.device)
    return res
