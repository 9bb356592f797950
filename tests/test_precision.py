"""Precision: fp16 picks float16 on CUDA and bfloat16 on a CPU; bfloat16 on the CPU keeps
the engine's guarantees (same bytes whatever the order and seeks) and stays close to
float32."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import vapoursynth as vs

from vsremaster.engine.models import cpu_bfloat16, half_dtype
from vsremaster.engine.placement import pick_dtype
from vsremaster.remaster import build
from clips import frame_bytes, from_arrays, moving_pattern, planes, scene_props

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
REFS = str(Path(__file__).resolve().parents[1] / "samples" / "film" / "refs")
SMALL = dict(refs=REFS, mindim=48, ref_mindim=32, device_index=-1, chunk=4)
needs_bf16 = pytest.mark.skipif(cpu_bfloat16() is None,
                                reason="this CPU has no bfloat16 hardware (AMX or AVX512-BF16)")


def test_half_precision_is_float16_on_cuda_and_bfloat16_on_a_cpu():
    assert half_dtype(CUDA) == torch.float16 and half_dtype(CPU) == torch.bfloat16
    assert pick_dtype(None, CUDA) == pick_dtype(True, CUDA) == torch.float16
    assert pick_dtype(False, CUDA) == pick_dtype(False, CPU) == torch.float32


def test_the_cpu_default_is_bfloat16_only_with_bfloat16_hardware():
    want = torch.float32 if cpu_bfloat16() is None else torch.bfloat16
    assert pick_dtype(None, CPU) == want


def test_fp16_on_a_cpu_needs_bfloat16_hardware():
    if cpu_bfloat16() is None:
        with pytest.raises(vs.Error, match=r"Remaster: fp16=True on the CPU needs bfloat16"):
            pick_dtype(True, CPU)
    else:
        assert pick_dtype(True, CPU) == torch.bfloat16
    with pytest.raises(vs.Error, match=r"fp16 must be True, False or None"):
        pick_dtype("yes", CPU)


@needs_bf16
def test_bfloat16_bytes_do_not_depend_on_order_or_seeks(lite_weights):
    """The engine's fixed batches keep a frame's bits whatever was computed with it, in
    bfloat16 too: frames asked backwards and by seeks equal a linear render's."""
    clip = from_arrays(moving_pattern(40, 48, 64, seed=5), vs.GRAY8,
                       per_frame_props=scene_props([23]))
    linear = build(clip, weights=lite_weights, fp16=True, **SMALL)
    assert linear.engine.models.dtype == torch.bfloat16
    everything = [frame_bytes(linear.clip, n) for n in range(40)]
    again = build(clip, weights=lite_weights, fp16=True, **SMALL)
    for n in (39, 30, 11, 25, 2, 17, 0, 33):
        assert frame_bytes(again.clip, n) == everything[n], n
    backwards = build(clip, weights=lite_weights, fp16=True, **SMALL)
    assert [frame_bytes(backwards.clip, n) for n in reversed(range(40))] == everything[::-1]


@needs_bf16
def test_bfloat16_stays_close_to_float32(lite_weights):
    """Mean |difference| of the 8-bit outputs under a level, none far off (the bundled
    model on the sample film: 0.23 levels on average, benchmarks/cpu_half.py)."""
    clip = from_arrays(moving_pattern(24, 48, 64, seed=2), vs.GRAY8)
    outs = {}
    for fp16 in (False, True):
        pipe = build(clip, weights=lite_weights, fp16=fp16, **SMALL)
        assert pipe.engine.models.dtype == (torch.bfloat16 if fp16 else torch.float32)
        outs[fp16] = np.stack([np.stack(planes(f)) for f in pipe.clip.frames()]).astype(np.int16)
    diff = np.abs(outs[True] - outs[False])
    assert diff.mean() < 1.0 and np.percentile(diff, 99) <= 6, (diff.mean(), diff.max())
    assert diff.max() > 0            # bfloat16 really ran: float32 would give no difference
