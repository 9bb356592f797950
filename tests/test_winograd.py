"""Winograd's F(2x2, 3x3) convolutions (model.winograd) equal the direct ones, keep a
frame's bits wherever it is computed, and run inside the filter on a CPU in float32."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import vapoursynth as vs

from vsremaster.model import NetworkC, NetworkR, streaming, winograd
from vsremaster.model.blocks import ConvBlock, batch_norm, spatial
from vsremaster.model.fold import fold_batchnorm
from vsremaster.model.streaming import RestorationStream, WinogradConv
from vsremaster.engine import models as engine_models
from vsremaster.engine.streams import decoder_form, restoration_form
from vsremaster.remaster import build
from clips import frame_bytes, from_arrays, moving_pattern, scene_props

REFS = str(Path(__file__).resolve().parents[1] / "samples" / "film" / "refs")
SMALL = dict(refs=REFS, mindim=48, ref_mindim=32, device_index=-1, chunk=4)


def _rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) - 0.5


@pytest.mark.parametrize("taps", [1, 3])
def test_convolve_is_the_direct_convolution(taps):
    w, b = _rand(7, 5, taps, 3, 3, seed=1), _rand(7, seed=2)
    x = _rand(6, 5, 10, 14, seed=3)                      # [T, C, H, W]
    n = 6 - taps + 1
    want = F.conv3d(x.transpose(0, 1)[None], w, b, padding=(0, 1, 1))[0].transpose(0, 1)
    out = torch.empty(n, 10, 14, 7)
    got = winograd.convolve(x.permute(0, 2, 3, 1), winograd.weight_transform(w), b, out)
    assert got is out
    assert (got.permute(0, 3, 1, 2) - want).abs().max() < 1e-5


def test_a_frames_bits_do_not_depend_on_its_place_in_a_call():
    u, b = winograd.weight_transform(_rand(16, 16, 3, 3, 3, seed=4)), _rand(16, seed=5)
    x = _rand(8, 12, 16, 16, seed=6)                     # [T, H, W, C]
    calls = [winograd.convolve(x[t:t + 5], u, b, torch.empty(3, 12, 16, 16)) for t in range(4)]
    # output frame 3 is slot 2 of the first call, 1 of the second, 0 of the third
    assert torch.equal(calls[1][2], calls[2][1]) and torch.equal(calls[2][1], calls[3][0])


def test_frames_too_large_for_the_scratch_go_in_bands_of_rows(monkeypatch):
    w, b = _rand(6, 4, 3, 3, 3, seed=11), _rand(6, seed=12)
    u, x = winograd.weight_transform(w), _rand(5, 14, 10, 4, seed=13)   # 7 tile rows
    whole = winograd.convolve(x, u, b, torch.empty(3, 14, 10, 6))
    one_row = winograd.scratch_bytes(3, 2, 10, 4, 6, 3, 4)
    per_row = winograd.scratch_bytes(3, 4, 10, 4, 6, 3, 4) - one_row
    monkeypatch.setattr(winograd, "SCRATCH_BYTES", one_row + 2 * per_row)
    assert winograd.band_rows(3, 14, 10, 4, 6, 3, 4) == 3      # bands of 3, 3 and 1 rows
    banded = winograd.convolve(x, u, b, torch.empty(3, 14, 10, 6))
    assert (banded - whole).abs().max() < 1e-6
    monkeypatch.setattr(winograd, "SCRATCH_BYTES", one_row - 1)
    assert winograd.band_rows(3, 14, 10, 4, 6, 3, 4) == 0
    assert not winograd.fits(3, 14, 10, 4, 6, 3, 4)
    with pytest.raises(ValueError, match="needs more than SCRATCH_BYTES"):
        winograd.convolve(x, u, b, torch.empty(3, 14, 10, 6))


def test_conv2d_gives_a_frame_the_same_bits_in_any_batch():
    u, b = winograd.weight_transform(_rand(9, 6, 1, 3, 3, seed=7)), _rand(9, seed=8)
    x = _rand(5, 6, 8, 12, seed=9)
    whole = winograd.conv2d(x, u, b)
    assert whole.shape == (5, 9, 8, 12)
    assert torch.equal(winograd.conv2d(x[3:4], u, b), whole[3:4])
    assert torch.equal(winograd.conv2d(x[1:4], u, b), whole[1:4])


def test_attach_gives_wide_spatial_blocks_winograd(monkeypatch):
    narrow, wide = ConvBlock(8, 8).eval(), ConvBlock(16, 16).eval()
    strided = ConvBlock(16, 16, stride=(1, 2, 2)).eval()
    monkeypatch.setattr(winograd, "SPATIAL_MIN_CHANNELS", 16)
    for block in (narrow, wide, strided):
        winograd.attach(block)
    assert hasattr(wide, "winograd") and not hasattr(narrow, "winograd")
    assert not hasattr(strided, "winograd")
    x = _rand(3, 16, 40, 40, seed=10)                    # 400 tiles
    with torch.no_grad():
        got = spatial(wide, x)
        want = F.elu(wide.bn(wide.conv3d(x.transpose(0, 1)[None])))[0].transpose(0, 1)
    assert (got - want).abs().max() < 1e-5
    assert not torch.equal(got, want)                    # Winograd ran, not conv2d
    small = x[..., :8, :8]                               # 16 tiles: the direct conv2d
    with torch.no_grad():
        direct = F.conv2d(small, wide.conv3d.weight[:, :, 0], wide.conv3d.bias, padding=1)
        assert torch.equal(spatial(wide, small), F.elu(batch_norm(wide.bn, direct)))


def test_encoders_by_winograd_equal_the_direct_ones(monkeypatch):
    monkeypatch.setattr(winograd, "SPATIAL_MIN_CHANNELS", 1)
    monkeypatch.setattr(winograd, "SPATIAL_MIN_TILES", 1)
    torch.manual_seed(3)
    net = fold_batchnorm(NetworkC(width=0.25).eval())
    x = torch.rand(4, 1, 32, 48)
    with torch.no_grad():
        direct = net.encode_frame_batch(x)
        winograd.attach(net)
        fast = net.encode_frame_batch(x)
    # (a frame's bits with other frames: the engine encodes in fixed batches)
    for d, f in zip(direct, fast):
        assert (d - f).abs().max() < 1e-5 and not torch.equal(d, f)


def test_wide_layers_stream_by_winograd_unless_no_row_fits(monkeypatch):
    released = NetworkR(width=0.25).eval()
    monkeypatch.setattr(streaming, "WINOGRAD_MIN_CHANNELS", 32)
    stages = RestorationStream(released, 4, "winograd-frame").chain.stages
    wide = [s for s in stages if isinstance(s, WinogradConv)]
    assert wide and all(min(s.block.conv.in_channels, s.block.conv.out_channels) >= 32
                        for s in wide)
    x = torch.rand(9, 1, 32, 48)
    with torch.no_grad():
        want = released(x.transpose(0, 1)[None])[0].transpose(0, 1)
        fast, _ = _stream(RestorationStream(released, 4, "winograd-frame"), x)
        monkeypatch.setattr(winograd, "SCRATCH_BYTES", 0)    # not even a row of tiles
        direct, _ = _stream(RestorationStream(released, 4, "winograd-frame"), x)
        frame, _ = _stream(RestorationStream(released, 4, "frame"), x)
    assert (fast - want).abs().max() < 1e-5 and not torch.equal(fast, frame)
    assert torch.equal(direct, frame)


def _stream(stream, x):
    state, done = stream.push(stream.begin(0, True), x, last=True)
    return done[1], state


def test_bad_sizes_and_forms_are_refused():
    with pytest.raises(ValueError, match="Winograd needs"):
        WinogradConv(ConvBlock(256, 256, kernel=(3, 3, 3), stride=(1, 2, 2)))
    assert not winograd.fits(4, 9, 12, 8, 8, 3, 4)            # odd height
    assert winograd.fits(4, 8, 12, 8, 8, 3, 4)


def test_which_networks_go_by_winograd_follows_device_and_dtype():
    cpu, every = torch.device("cpu"), {"restoration", "encoders", "decoder"}
    assert engine_models.cpu_capability() == torch.backends.cpu.get_cpu_capability()
    assert engine_models.winograd_parts(torch.device("cuda"), torch.float32) == frozenset()
    assert engine_models.winograd_parts(cpu, torch.bfloat16) == frozenset()
    parts = engine_models.winograd_parts(cpu, torch.float32)
    assert parts == every
    models = engine_models.Models(NetworkR(0.125), NetworkC(0.125), cpu, torch.float32, "",
                                  parts)
    assert restoration_form(models, 4) == ("winograd-frame", 4)
    assert decoder_form(models) == "winograd"
    half = engine_models.Models(NetworkR(0.125), NetworkC(0.125), cpu, torch.bfloat16, "")
    assert restoration_form(half, 4) == ("frame", 1)
    assert decoder_form(half) == "frame"


@pytest.mark.slow
def test_the_filter_uses_winograd_on_a_cpu_and_keeps_the_bytes(lite_weights, tmp_path,
                                                                monkeypatch):
    """float32 on a CPU: wide layers by Winograd (thresholds lowered so the lite model
    has some); frames asked backwards and by seeks equal a linear render's, and stay
    within float rounding of the direct convolutions'."""
    weights = tmp_path / "w.pt"      # a file of its own: the loaded networks are shared
    shutil.copy(lite_weights, weights)
    clip = from_arrays(moving_pattern(30, 48, 64, seed=5), vs.GRAY8,
                       per_frame_props=scene_props([17]))
    direct = build(clip, weights=lite_weights, fp16=False, **SMALL)
    monkeypatch.setattr(streaming, "WINOGRAD_MIN_CHANNELS", 16)
    monkeypatch.setattr(winograd, "SPATIAL_MIN_CHANNELS", 16)
    monkeypatch.setattr(winograd, "SPATIAL_MIN_TILES", 1)
    linear = build(clip, weights=weights, fp16=False, **SMALL)
    for stream in (linear.engine.stream.restoration, linear.engine.stream.decoder):
        assert any(isinstance(s, WinogradConv) for s in stream.chain.stages)
    assert any(hasattr(m, "winograd") for m in linear.engine.models.colorize.modules())
    everything = [frame_bytes(linear.clip, n) for n in range(30)]
    again = build(clip, weights=weights, fp16=False, **SMALL)
    for n in (29, 20, 3, 17, 9, 0, 25):
        assert frame_bytes(again.clip, n) == everything[n], n
    backwards = build(clip, weights=weights, fp16=False, **SMALL)
    assert [frame_bytes(backwards.clip, n) for n in reversed(range(30))] == everything[::-1]
    a = np.frombuffer(b"".join(everything), np.uint8).astype(int)
    b = np.frombuffer(b"".join(frame_bytes(direct.clip, n) for n in range(30)), np.uint8)
    assert np.abs(a - b).max() <= 1
