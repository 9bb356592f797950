"""Running one benchmark method in a fresh Python process of its own.

Why: a method's speed depended on what ran before it in the process. glibc serves large
allocations by mmap and, once such a block is freed, raises its mmap threshold (up to
32 MB), so a method that runs after another one gets its tensors from a heap the first
one grew, without page faults: the authors' block of 5 ran 51-59 s after ours in one
process and 63-69 s in a fresh one (RESULTS.md, 2026-12-02). In a fresh process each
method pays its own page faults, whatever order the methods run in, and its peak RSS
(VmHWM) is its own.

The child is started with "spawn" (no inherited state at all), gets this process's
torch thread count, runs `fn(*args)` (a module-level function returning a
MethodResult) and sends the result back pickled, its output frames included.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import torch

from .measure import MethodResult, process_peak_rss


def _child(threads: int, fn, args: tuple) -> MethodResult:
    torch.set_num_threads(threads)
    return run_here(fn, *args)


def run_isolated(fn, *args) -> MethodResult:
    """fn(*args) in a fresh process: the MethodResult it returns (see run_here). A child
    that dies (killed for memory, say) raises RuntimeError naming the method."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
        try:
            return pool.submit(_child, torch.get_num_threads(), fn, args).result()
        except BrokenProcessPool as e:
            raise RuntimeError(f"{fn.__module__}.{fn.__name__}: its process died "
                               "(killed for memory?)") from e


def run_here(fn, *args) -> MethodResult:
    """fn(*args) in this process, with `process_rss_peak` this process's VmHWM so far and
    info["pid"] its process id."""
    res = fn(*args)
    res.process_rss_peak = process_peak_rss()
    res.info["pid"] = os.getpid()
    return res
