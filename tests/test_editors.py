"""Script editors re-evaluate the script on every edit and seek at random.

The same script, evaluated 20 times in one process (built, a few random frames
rendered in random order, dropped), must share one loaded model while clips using it
are alive, free the engine and the model when the last such clip goes, and keep the
process's memory (RSS, live tensors) flat.
"""
from __future__ import annotations

import gc
import random
import runpy
import textwrap
import weakref
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import vapoursynth as vs

import vsremaster.remaster as remaster
from vsremaster.engine import models as shared

EVALUATIONS = 20
WARM_UP = 4
RSS_GROWTH_LIMIT = 200 << 20

SCRIPT = textwrap.dedent('''
    import vapoursynth as vs
    import vsremaster
    from clips import from_arrays, moving_pattern, scene_props

    clip = from_arrays(moving_pattern(16, 48, 64, seed=11), vs.YUV420P8,
                       per_frame_props=scene_props([8]))
    clip = vsremaster.Remaster(clip, refs=refs, weights=weights, mindim=32, ref_mindim=32,
                               chunk=4, device_index=-1)
    clip.set_output()
''')


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def live_tensors() -> int:
    return sum(1 for o in gc.get_objects() if issubclass(type(o), torch.Tensor))


@pytest.fixture
def script(tmp_path, monkeypatch) -> Path:
    refs = tmp_path / "refs"
    refs.mkdir()
    for i, colour in ((0, (0, 0, 200)), (12, (200, 90, 0))):
        img = np.zeros((40, 56, 3), np.uint8)
        img[:] = colour
        img[10:30, 10:40] = 255 - np.array(colour, np.uint8)
        cv2.imwrite(str(refs / f"ref_{i:06d}.png"), img)
    path = tmp_path / "edit.vpy"
    path.write_text(SCRIPT)
    return path


@pytest.fixture
def tracked(monkeypatch):
    """Weak references to every Engine built, and a count of model loads."""
    engines: list[weakref.ref] = []
    loads = []
    make_engine, load = remaster.Engine, shared.load_checkpoint

    def engine(*args, **kwargs):
        e = make_engine(*args, **kwargs)
        engines.append(weakref.ref(e))
        return e

    def counted_load(*args, **kwargs):
        loads.append(args[0])
        return load(*args, **kwargs)
    monkeypatch.setattr(remaster, "Engine", engine)
    monkeypatch.setattr(shared, "load_checkpoint", counted_load)
    return engines, loads


def evaluate(script: Path, weights: Path) -> vs.VideoNode:
    """What an editor does on every edit: run the script, take its output."""
    vs.clear_outputs()
    runpy.run_path(str(script), init_globals={"weights": str(weights),
                                              "refs": str(script.parent / "refs")})
    return vs.get_output(0).clip


def seek(clip: vs.VideoNode, rng: random.Random, frames: int) -> list[bytes]:
    picked = rng.sample(range(clip.num_frames), frames)
    return [b"".join(np.asarray(f[p]).tobytes() for p in range(f.format.num_planes))
            for f in (clip.get_frame(n) for n in picked)]


@pytest.mark.slow
def test_twenty_evaluations_share_models_and_free_everything(lite_weights, script, tracked):
    engines, loads = tracked
    rng = random.Random(5)
    gc.collect()
    assert len(shared._shared) == 0, "another test left a model alive"
    memory, tensors = [], []
    model_name = None
    for i in range(EVALUATIONS):
        clip = evaluate(script, lite_weights)
        model = engines[-1]().models
        assert list(shared._shared.values()) == [model]
        # a second evaluation while the first clip lives (an editor's second tab, or the
        # old clip not yet dropped): the same model object, not loaded again
        again = evaluate(script, lite_weights)
        assert engines[-1]().models is model and len(loads) == i + 1
        frames = seek(clip, rng, 2) + seek(again, rng, 1)
        assert all(len(b) == 64 * 48 * 3 for b in frames)     # YUV420P8 in, YUV444P8 out
        if model_name is None:
            model_name = clip.get_frame(0).props["_RemasterModel"]
        engine_refs = engines[-2:]
        previous_model = weakref.ref(model)
        vs.clear_outputs()
        del clip, again, model, frames
        gc.collect()
        assert all(e() is None for e in engine_refs), "a dropped clip kept its engine"
        assert previous_model() is None, "a dropped clip kept its model"
        assert len(shared._shared) == 0
        memory.append(rss())
        tensors.append(live_tensors())
    assert len(loads) == EVALUATIONS and model_name == "seeded-lite"
    growth = max(memory[WARM_UP:]) - memory[WARM_UP - 1]
    print(f"RSS after each evaluation (MB): {[m >> 20 for m in memory]}; growth after "
          f"warm-up {growth / 2**20:.1f} MB; live tensors {tensors}")
    assert growth < RSS_GROWTH_LIMIT, [m >> 20 for m in memory]
    assert max(tensors[WARM_UP:]) <= tensors[WARM_UP - 1] + 16, tensors


def test_same_frames_after_reevaluation(lite_weights, script):
    # seeking at random in a re-evaluated script gives the very same frames
    first = evaluate(script, lite_weights)
    a = [first.get_frame(n) for n in (13, 3, 9)]
    a = [b"".join(np.asarray(f[p]).tobytes() for p in range(3)) for f in a]
    vs.clear_outputs()
    del first
    gc.collect()
    second = evaluate(script, lite_weights)
    b = [second.get_frame(n) for n in (3, 9, 13)]
    b = [b"".join(np.asarray(f[p]).tobytes() for p in range(3)) for f in b]
    vs.clear_outputs()
    assert a == [b[2], b[0], b[1]]
