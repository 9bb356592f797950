"""Faults while rendering: out-of-memory splitting (injected on the CPU), no poisoned cache."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
import vapoursynth as vs

from vsremaster.remaster import build
from clips import from_arrays, moving_pattern, planes

SMALL = dict(mindim=48, device_index=-1)


@pytest.fixture
def own_weights(seeded_weights, tmp_path):
    # a file of its own, so the injected failures stay in this test's model instance
    path = tmp_path / "own.safetensors"
    shutil.copy(seeded_weights, path)
    return path


def fail_above(monkeypatch, obj, name, frames, calls):
    original = getattr(obj, name)

    def limited(x, *args, **kwargs):
        t = (x.deep if hasattr(x, "deep") else x).shape[2]
        calls.append(t)
        if t > frames:
            raise torch.OutOfMemoryError("injected: CUDA out of memory")
        return original(x, *args, **kwargs)
    monkeypatch.setattr(obj, name, limited)


def test_out_of_memory_splits_restoration_exactly(monkeypatch, own_weights, seeded_weights):
    grey = moving_pattern(40, 48, 64, seed=4)
    clip = from_arrays(grey, vs.GRAYS)
    reference = [planes(f)[0] for f in build(clip, weights=seeded_weights, colorize=False,
                                             chunk=40, **SMALL).clip.frames()]
    pipe = build(clip, weights=own_weights, colorize=False, chunk=40, **SMALL)
    stream, calls = pipe.engine.stream, []
    original = stream.push

    def limited(state, x, last=False):
        calls.append(x.shape[2])
        if x.shape[2] > 8:
            raise torch.OutOfMemoryError("injected: CUDA out of memory")
        return original(state, x, last)
    monkeypatch.setattr(stream, "push", limited)
    got = [planes(f)[0] for f in pipe.clip.frames()]
    # one cell of 40 frames: a 13-frame warm-up push and a 27-frame push, each halved
    # until the pieces fit (failed tries included)
    assert calls == [13, 6, 7, 27, 13, 6, 7, 14, 7, 7]
    for a, b in zip(reference, got):
        assert np.abs(a - b).max() < 1e-5

    # nothing fits: a clear error, and the filter works again once memory is back
    fresh = build(clip, weights=own_weights, colorize=False, chunk=40, **SMALL)
    monkeypatch.setattr(fresh.engine.stream, "push", lambda *a, **k: (_ for _ in ()).throw(
        torch.OutOfMemoryError("injected")))
    with pytest.raises(vs.Error, match="out of cpu memory for a single frame"):
        fresh.clip.get_frame(0)
    monkeypatch.undo()
    assert np.abs(planes(fresh.clip.get_frame(0))[0] - reference[0]).max() < 1e-5


def test_out_of_memory_splits_decoder_then_keeps_working(monkeypatch, own_weights):
    grey = moving_pattern(16, 48, 64, seed=5)
    clip = from_arrays(grey, vs.GRAY8)
    pipe = build(clip, weights=own_weights, chunk=8, **SMALL)
    calls = []
    fail_above(monkeypatch, pipe.engine.models.colorize, "decode", 16, calls)
    f = pipe.clip.get_frame(3)
    assert calls[:2] == [22, 18] and 16 in calls     # 8+2*7 frames, halved until 2+2*7 fit
    assert all(np.isfinite(p).all() for p in planes(f))

    # nothing fits: a clear error, nothing cached, and the next request works again
    monkeypatch.undo()
    fail_above(monkeypatch, pipe.engine.models.colorize, "decode", 0, [])
    with pytest.raises(vs.Error, match="out of cpu memory for a single frame"):
        pipe.clip.get_frame(12)
    assert pipe.engine.decoded.get(8) is None
    monkeypatch.undo()
    assert pipe.clip.get_frame(12).props["_RemasterScene"] == 0


def test_exception_in_one_request_does_not_poison_later_ones(monkeypatch, own_weights):
    grey = moving_pattern(8, 48, 64, seed=6)
    pipe = build(from_arrays(grey, vs.GRAY8), weights=own_weights, chunk=4, **SMALL)
    model_c = pipe.engine.models.colorize
    original = model_c.decode
    failures = []

    def fails_once(*args, **kwargs):
        if not failures:
            failures.append(1)
            raise RuntimeError("a fault inside the network")
        return original(*args, **kwargs)
    monkeypatch.setattr(model_c, "decode", fails_once)
    with pytest.raises(vs.Error, match="a fault inside the network"):
        pipe.clip.get_frame(1)
    assert pipe.engine.decoded.get(0) is None
    assert [planes(pipe.clip.get_frame(n))[0].shape for n in (1, 2)] == [(48, 64)] * 2
    assert pipe.engine.runs["decode"] == 1


def test_nan_and_inf_in_float_input_render(own_weights):
    grey = moving_pattern(6, 48, 64, seed=7)
    grey[:, 5:9, 5:9] = np.nan
    grey[:, 20, :] = np.inf
    grey[:, 21, :] = -np.inf
    out = build(from_arrays(grey, vs.GRAYS), weights=own_weights, **SMALL).clip
    for f in out.frames():
        assert all(np.isfinite(p).all() for p in planes(f))
