"""Handing the host's resources back between jobs: the C heap's free pages and the
calling thread's OpenMP workers.

Both are Linux-only fixes of measured problems; elsewhere they do nothing.
"""
from __future__ import annotations

import ctypes
import functools
import os
import sys

import torch      # loads the OpenMP runtime _omp_pause looks for

#: omp_pause_resource_all's argument: workers end, the runtime starts new ones on demand
_OMP_PAUSE_SOFT = 1


def trim_host_heap() -> None:
    """Hand the C heap's free pages back to the system (glibc).

    Why: torch's CPU buffers of many sizes leave glibc's arenas fragmented, so a render's
    RSS crept up although nothing was kept; it stays flat with a trim after each push
    (`benchmarks/instant_load.py`; RESULTS.md "The streaming engine").
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def release_openmp_threads() -> None:
    """End the OpenMP workers the calling thread started (libgomp, torch's CPU threads).

    Why: every thread that runs a parallel torch op keeps a team of workers of its own.
    The filter's torch work moves between threads (the script's thread loads the models,
    VapourSynth's threads compute cells and compose frames), and once the teams' threads
    outnumber the CPUs libgomp stops spinning between parallel regions, so each short op
    pays a sleeping worker's wake-up (`benchmarks/omp_teams.py`; RESULTS.md "OpenMP teams
    ended between jobs"). Ending a
    thread's team when its job is done leaves one team alive at a time; the next parallel
    op starts workers again (tens of microseconds). Same thread counts, so the same bits.
    """
    pause = _omp_pause()
    if pause is not None:
        pause(_OMP_PAUSE_SOFT)       # -1 inside a parallel region: nothing to end there


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):    # musl and others have no malloc_trim
        return None


@functools.lru_cache(maxsize=1)
def _omp_pause():
    """omp_pause_resource_all of the libgomp torch loaded (OpenMP 5.0, GCC 9+), or None.

    Only libgomp: LLVM's and Intel's runtimes sleep after a block time instead of
    counting threads against CPUs, and were not measured."""
    # torch's own copy first: another package may have loaded a libgomp of its own
    path = loaded_library("libgomp", prefer=os.path.dirname(torch.__file__))
    if path is None:
        return None
    try:
        pause = ctypes.CDLL(path).omp_pause_resource_all
    except (OSError, AttributeError):    # an older libgomp
        return None
    pause.argtypes, pause.restype = [ctypes.c_int], ctypes.c_int
    return pause


def loaded_library(stem: str, prefer: str = "") -> str | None:
    """The path of a loaded shared library whose file name starts with `stem` (Linux);
    of several, one under the folder `prefer` if any."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split(maxsplit=5)[-1].strip() for line in f if stem in line}
    except OSError:
        return None
    found = sorted((not (prefer and p.startswith(prefer + os.sep)), p)
                   for p in paths if os.path.basename(p).startswith(stem))
    return found[0][1] if found else None
