"""Faults while rendering: out-of-memory splitting (injected on the CPU), no poisoned cache."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
import vapoursynth as vs

from vsremaster.remaster import build
from clips import frame_bytes, from_arrays, moving_pattern, planes

SMALL = dict(mindim=48, device_index=-1)


@pytest.fixture
def own_weights(lite_weights, tmp_path):
    # a file of its own, so the injected failures stay in this test's model instance
    path = tmp_path / "own.safetensors"
    shutil.copy(lite_weights, path)
    return path


def fail_above(monkeypatch, obj, name, frames, calls, error=None):
    """Make obj.name fail (out of memory) when given more than `frames` frames."""
    original = getattr(obj, name)

    def limited(state, x, *args, **kwargs):
        t = 0 if x is None else len(x[0] if isinstance(x, tuple) else x)
        calls.append(t)
        if t > frames:
            raise error or torch.OutOfMemoryError("injected: CUDA out of memory")
        return original(state, x, *args, **kwargs)
    monkeypatch.setattr(obj, name, limited)


@pytest.mark.slow
@pytest.mark.parametrize("error", [torch.OutOfMemoryError("injected: CUDA out of memory"),
                                   RuntimeError("[enforce fail at alloc_cpu.cpp:117] "
                                                "DefaultCPUAllocator: can't allocate memory")])
def test_out_of_memory_halves_the_steps_and_keeps_the_bits(monkeypatch, own_weights,
                                                            lite_weights, error):
    grey = moving_pattern(40, 48, 64, seed=4)
    clip = from_arrays(grey, vs.GRAY8)
    reference = [frame_bytes(build(clip, weights=lite_weights, chunk=40, **SMALL).clip, n)
                 for n in range(40)]
    pipe = build(clip, weights=own_weights, chunk=40, **SMALL)
    pipe.engine.step = 16
    calls = []
    fail_above(monkeypatch, pipe.engine.stream.restoration, "push", 5, calls, error)
    assert [frame_bytes(pipe.clip, n) for n in range(40)] == reference
    # steps of 16 fail, then 8, then 4 fit: the same bits as one push
    assert calls[:3] == [16, 8, 4] and max(calls[3:]) == 4 and pipe.engine.step == 4

    # nothing fits: a clear error naming the frame, and the filter works again after
    fresh = build(clip, weights=own_weights, chunk=40, **SMALL)
    fail_above(monkeypatch, fresh.engine.stream.restoration, "push", 0, [], error)
    with pytest.raises(vs.Error, match=r"Remaster: frame 0: out of cpu memory for a single frame"):
        fresh.clip.get_frame(0)
    assert fresh.engine.results.get(0) is None
    monkeypatch.undo()
    assert frame_bytes(fresh.clip, 0) == reference[0]


def test_exception_in_one_request_does_not_poison_later_ones(monkeypatch, own_weights):
    grey = moving_pattern(8, 48, 64, seed=6)
    pipe = build(from_arrays(grey, vs.GRAY8), weights=own_weights, chunk=4, **SMALL)
    decoder = pipe.engine.stream.decoder
    original = decoder.push
    failures = []

    def fails_once(*args, **kwargs):
        if not failures:
            failures.append(1)
            raise RuntimeError("a fault inside the network")
        return original(*args, **kwargs)
    monkeypatch.setattr(decoder, "push", fails_once)
    with pytest.raises(vs.Error, match="Remaster: frame 1: a fault inside the network"):
        pipe.clip.get_frame(1)
    assert pipe.engine.results.get(0) is None
    assert [planes(pipe.clip.get_frame(n))[0].shape for n in (1, 2, 7)] == [(48, 64)] * 3
    assert pipe.engine.runs["push"] == 1


def test_nan_and_inf_in_float_input_render(own_weights):
    grey = moving_pattern(6, 48, 64, seed=7)
    grey[:, 5:9, 5:9] = np.nan
    grey[:, 20, :] = np.inf
    grey[:, 21, :] = -np.inf
    out = build(from_arrays(grey, vs.GRAYS), weights=own_weights, **SMALL).clip
    for f in out.frames():
        assert all(np.isfinite(p).all() for p in planes(f))
