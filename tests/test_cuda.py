"""CUDA correctness (runs where a GPU is present; CI machines have none)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import vapoursynth as vs

from vsremaster.remaster import build
from clips import from_arrays, moving_pattern, planes

pytestmark = pytest.mark.cuda


@pytest.fixture
def exact_fp32():
    # TF32 would trade float32 exactness for speed; the golden check needs float32
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@pytest.mark.shared
def test_golden_outputs_on_cuda_float32(golden_models, golden_case, exact_fp32):
    model_r, model_c = (m.to("cuda") for m in golden_models)
    try:
        with torch.no_grad():
            r = model_r(golden_case["input_l"].cuda()).cpu()
            ab = model_c(golden_case["restored_l"].cuda(), golden_case["refs"].cuda()).cpu()
    finally:
        model_r.cpu(), model_c.cpu()
    assert (r - golden_case["restored_l"]).abs().max() < 1e-4
    assert (ab - golden_case["ab_refs"]).abs().max() < 1e-4


@pytest.mark.shared
@pytest.mark.parametrize("dtype,tol", [(torch.float16, 2e-2), (torch.bfloat16, 5e-2)])
def test_half_precision_close_to_float32(golden_models, golden_case, dtype, tol):
    _, model_c = golden_models
    half = type(model_c)().to("cuda", dtype).eval()
    half.load_state_dict(model_c.state_dict())
    with torch.no_grad():
        ab = half(golden_case["restored_l"].cuda().to(dtype), golden_case["refs"].cuda().to(dtype))
    assert (ab.float().cpu() - golden_case["ab_refs"]).abs().max() < tol


@pytest.mark.shared
def test_filter_on_cuda_matches_cpu(golden_weights):
    grey = moving_pattern(12, 64, 96, seed=2)
    clip = from_arrays(grey, vs.YUV444P16)
    on_gpu = build(clip, weights=golden_weights, mindim=64, chunk=4, device_index=0, fp16=False)
    on_cpu = build(clip, weights=golden_weights, mindim=64, chunk=4, device_index=-1)
    assert on_gpu.engine.models.device.type == "cuda"
    for n in (0, 5, 11):
        a, b = planes(on_gpu.clip.get_frame(n)), planes(on_cpu.clip.get_frame(n))
        assert max(np.abs(x.astype(float) - y).max() for x, y in zip(a, b)) <= 2 * 257
    half = build(clip, weights=golden_weights, mindim=64, chunk=4, device_index=0)
    assert half.engine.models.dtype == torch.float16
    assert all(np.isfinite(p).all() for p in planes(half.clip.get_frame(3)))


@pytest.mark.shared
def test_reevaluating_twenty_times_keeps_vram_flat(golden_weights):
    import gc
    grey = moving_pattern(10, 64, 96, seed=3)
    clip = from_arrays(grey, vs.YUV420P8)
    levels = []
    for i in range(20):
        out = build(clip, weights=golden_weights, mindim=64, chunk=4, device_index=0).clip
        for n in (7, 1, 4):
            out.get_frame(n)
        del out
        gc.collect()
        levels.append(torch.cuda.memory_allocated())
    assert levels[-1] == 0 or levels[-1] <= levels[2]


@pytest.mark.shared
def test_cuda_bits_do_not_depend_on_seeks_or_threads(golden_weights):
    """Fixed-size frame batches keep cuDNN on one kernel per shape: a seek (cold start)
    gives the bytes of a linear render."""
    from clips import frame_bytes
    grey = moving_pattern(40, 64, 96, seed=4)
    clip = from_arrays(grey, vs.GRAY8)
    linear = build(clip, weights=golden_weights, mindim=64, chunk=4, device_index=0)
    everything = [frame_bytes(linear.clip, n) for n in range(40)]
    seek = build(clip, weights=golden_weights, mindim=64, chunk=4, device_index=0)
    for n in (37, 21, 2, 30, 22):
        assert frame_bytes(seek.clip, n) == everything[n], n


@pytest.mark.shared
def test_frames_finished_on_the_device_equal_the_vapoursynth_finish(golden_weights):
    grey = moving_pattern(8, 64, 96, seed=5)
    for fmt in (vs.GRAY8, vs.YUV420P10, vs.RGB24, vs.GRAYS):
        clip = from_arrays(grey, fmt)
        kw = dict(weights=golden_weights, mindim=64, chunk=4, device_index=0)
        device = build(clip, finish="device", **kw).clip
        graph = build(clip, finish="graph", **kw).clip
        for n in (0, 5):
            a, b = planes(device.get_frame(n)), planes(graph.get_frame(n))
            top = 1 if fmt != vs.GRAYS else 2e-4
            assert max(np.abs(x.astype(float) - y).max() for x, y in zip(a, b)) <= top, fmt


@pytest.mark.parametrize("form", ["taps", "frame"])
def test_restoration_forms_keep_the_bits_on_cuda(form):
    # the engine keeps the taps on CUDA until Conv3d calls of one shape are shown to keep
    # a frame's bits there too: this is that check (fp16, fixed calls of 8)
    from test_streaming import stream_all
    from vsremaster.model import RESTORE_RADIUS, NetworkR
    from vsremaster.model.streaming import RestorationStream
    torch.manual_seed(0)
    net = NetworkR(0.25).eval().half().cuda()
    x = torch.rand(40, 1, 64, 96, generator=torch.Generator().manual_seed(3)).half().cuda()
    with torch.no_grad():
        whole, _ = stream_all(RestorationStream(net, 8, form), x, [40])
        pieces, _ = stream_all(RestorationStream(net, 8, form), x, [3, 8, 1])
        inside, _ = stream_all(RestorationStream(net, 8, form), x[6:], [5], start=6,
                               scene_start=False)
    assert torch.equal(whole, pieces)
    assert torch.equal(inside, whole[6 + RESTORE_RADIUS:])
