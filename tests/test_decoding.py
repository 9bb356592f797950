"""Local-window decoding: one push == a per-frame oracle; streamed pieces == one push."""
import copy

import pytest
import torch
import torch.nn.functional as F

from vsremaster.model import Attention, NetworkC, attention_reference
from vsremaster.model.blocks import upsample2x
from vsremaster.model.colorization import FrameFeatures
from vsremaster.model.decoding import (WINDOW_RADIUS, DecoderStream, decode_scene,
                                       decoder_stages)
from vsremaster.model.fold import fold_batchnorm
from vsremaster.model import streaming
from vsremaster.model.streaming import WinogradConv, per_frame

TOL = 1e-5


@pytest.fixture(scope="module")
def net():
    """A narrow NetworkC, seeded, with attention that matters (gamma 0.5)."""
    torch.manual_seed(0)
    model = NetworkC(width=0.25).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, Attention):
                m.gamma.fill_(0.5)
    return model


def features(net, frames, seed=0, h=32, w=48, refs=None):
    """(skip, deep) [T, C, h, w] of random frames."""
    x = torch.rand(frames, 1, h, w, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return net.encode_frame_batch(x, refs)


def _five(t):
    return t.transpose(0, 1).unsqueeze(0)


def test_frame_batch_encoder_equals_released_encoder(net):
    x = torch.rand(6, 1, 32, 48, generator=torch.Generator().manual_seed(1))
    refs = torch.rand(1, 2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        enc = net.encode_refs(refs)
        skip, deep = net.encode_frame_batch(x, enc)
        want = net.encode_frames(_five(x), enc)
        batched = per_frame(lambda f: net.encode_frame_batch(f, enc), x, 4)
        moved = per_frame(lambda f: net.encode_frame_batch(f, enc), x[2:], 4)
    assert (_five(skip) - want.skip).abs().max() < TOL
    assert (_five(deep) - want.deep).abs().max() < TOL
    # in calls of a fixed number of frames, a frame's bits do not depend on its neighbours
    assert torch.equal(batched[1][2:], moved[1]) and torch.equal(batched[0][2:], moved[0])


def oracle(net, skip, deep):
    """Each frame on its own: attention over its clamped window, convs over replicated edges."""
    def attend(module, x):
        t = x.shape[2]
        out = []
        for i in range(t):
            window = [min(max(i + k, 0), t - 1) for k in range(-WINDOW_RADIUS, WINDOW_RADIUS + 1)]
            out.append(attention_reference(module, x[:, :, i:i + 1], x[:, :, window]))
        return torch.cat(out, 2)

    def conv(module, x):                 # temporal padding 1 of the module falls off the ends
        return module(F.pad(x, (0, 0, 0, 0, 1, 1), mode="replicate"))[:, :, 1:-1]

    out = attend(net.selfattn1, _five(deep))
    out = conv(net.up1.conv3d, torch.cat([upsample2x(out), _five(skip)], 1))
    out = attend(net.selfattn2, out)
    out = conv(net.conv2, out)
    for m in (*net.up2, *net.up3, *net.up4):
        out = conv(m, out)
    return torch.sigmoid(out)[0].transpose(0, 1)


@pytest.mark.parametrize("frames", [1, 3, 17])
def test_one_push_equals_per_frame_oracle(net, frames):
    skip, deep = features(net, frames, seed=frames)
    with torch.no_grad():
        got, want = decode_scene(net, skip, deep), oracle(net, skip, deep)
    assert got.shape == (frames, 2, 32, 48)
    assert (got - want).abs().max() < TOL


def test_first_attention_reaches_seven_frames_each_side(net):
    """Changing frame 20's features changes frames 13..27 of the first stage, no others."""
    skip, deep = features(net, 40, seed=3)
    other = deep.clone()
    other[20] += 1.0
    stage, r = decoder_stages(net)[0], WINDOW_RADIUS
    pad = lambda t: torch.cat([t[:1]] * r + [t] + [t[-1:]] * r)
    with torch.no_grad():
        a = stage.compute((pad(deep), pad(skip)), 40)
        b = stage.compute((pad(other), pad(skip)), 40)
    diff = (a - b).abs().amax(dim=(1, 2, 3))
    assert [t for t in range(40) if diff[t] > 0] == list(range(20 - r, 20 + r + 1))


def stream_all(stream, skip, deep, sizes, start=0, scene_start=True):
    state, outs, i, k, times = stream.begin(start, scene_start), [], 0, 0, []
    total = len(deep)
    while True:
        n = sizes[k % len(sizes)]
        k += 1
        before = state.next_out
        state, out = stream.push(state, (skip[i:i + n], deep[i:i + n]), last=i + n >= total)
        i += n
        if out is not None:
            outs.append(out)
            times.append(before)
        if state.finished:
            return torch.cat(outs), times


@pytest.mark.parametrize("frames", [1, 2, 30])
@pytest.mark.parametrize("sizes", [[1], [4, 1, 7], [64]])
def test_stream_in_pieces_equals_one_push_bit_for_bit(net, frames, sizes):
    skip, deep = features(net, frames, seed=10 + frames)
    with torch.no_grad():
        whole = decode_scene(net, skip, deep)
        got, times = stream_all(DecoderStream(net), skip, deep, sizes)
    assert times[0] == 0
    assert torch.equal(got, whole)


@pytest.mark.parametrize("form", ["frame", "winograd"])
@pytest.mark.parametrize("sizes", [[1], [4, 1, 7]])
def test_frame_forms_in_pieces_equal_their_one_push_and_the_oracle(net, sizes, form,
                                                                   monkeypatch):
    # Conv3d or Winograd calls of 3 frames: its own bits in any pieces and from a cold
    # start inside the scene, the oracle's values (the narrow test network's layers all
    # count as wide for Winograd here)
    monkeypatch.setattr(streaming, "WINOGRAD_MIN_CHANNELS", 1)
    skip, deep = features(net, 40, seed=12)
    stream = DecoderStream(net, batch=3, form=form)
    if form == "winograd":
        assert any(isinstance(s, WinogradConv) for s in stream.chain.stages)
    with torch.no_grad():
        whole, _ = stream_all(stream, skip, deep, [40])
        got, times = stream_all(stream, skip, deep, sizes)
        inside, later = stream_all(stream, skip[9:], deep[9:], sizes, start=9, scene_start=False)
        want = oracle(net, skip, deep)
    assert times[0] == 0 and torch.equal(got, whole)
    assert later[0] == 9 + stream.lag and torch.equal(inside, whole[9 + stream.lag:])
    assert (whole - want).abs().max() < TOL


def test_folded_network_in_fixed_batches_equals_one_push(net):
    folded = fold_batchnorm(copy.deepcopy(net))
    skip, deep = features(net, 26, seed=4)
    with torch.no_grad():
        whole = decode_scene(net, skip, deep)
        got, _ = stream_all(DecoderStream(folded, batch=4), skip, deep, [9])
    assert (got - whole).abs().max() < TOL


def test_stream_begun_inside_a_scene_gives_the_same_bits_after_its_lag(net):
    skip, deep = features(net, 60, seed=6)
    stream = DecoderStream(net)
    assert stream.lag == 2 * WINDOW_RADIUS + 8
    with torch.no_grad():
        whole = decode_scene(net, skip, deep)
        got, times = stream_all(stream, skip[11:], deep[11:], [5, 8], start=11, scene_start=False)
    assert times[0] == 11 + stream.lag
    assert torch.equal(got, whole[11 + stream.lag:])


def test_chunk_context_decodes_each_push_as_one_window(net):
    skip, deep = features(net, 20, seed=7)
    stream = DecoderStream(net, context="chunk")
    r = WINDOW_RADIUS
    with torch.no_grad():
        got, times = stream_all(stream, skip, deep, [12, 8])
        # the push that brought frames up to 12 finished frames 0..4 as one window
        idx = [min(max(i, 0), 19) for i in range(-r, 5 + r)]
        first = net.decode(FrameFeatures(_five(skip[idx]), _five(deep[idx])))
    assert times == [0, 5]
    assert (got[:5] - first[0].transpose(0, 1)[r:r + 5]).abs().max() < TOL


def test_states_are_immutable_and_carries_hold_only_the_window(net):
    skip, deep = features(net, 40, seed=8)
    stream = DecoderStream(net)
    with torch.no_grad():
        state, _ = stream.push(stream.begin(0, True), (skip[:30], deep[:30]))
        s1, out1 = stream.push(state, (skip[30:], deep[30:]), last=True)
        s2, out2 = stream.push(state, (skip[30:], deep[30:]), last=True)
        with pytest.raises(ValueError, match="finished"):
            stream.push(s1, None, last=True)
    assert torch.equal(out1, out2) and s1.finished and not state.finished
    for stage, carry in zip(stream.chain.stages, state.carries):
        held = getattr(carry, "frames", None) or (carry.ab, carry.a)
        for t in held:
            if t is not None:
                assert len(t) <= 2 * stage.radius
                assert t.untyped_storage().nbytes() == t.numel() * t.element_size()
