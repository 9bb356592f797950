"""NetworkR streamed in pieces equals one pass over the scene (model.streaming)."""
import copy

import pytest
import torch

from vsremaster.model import RESTORE_RADIUS, NetworkR
from vsremaster.model.fold import fold_batchnorm
from vsremaster.model import streaming
from vsremaster.model.streaming import (CONV_FORMS, FRAME_MIN_CHANNELS, FrameConv,
                                        RestorationStream, TemporalConv, WinogradConv,
                                        temporal_conv)

TOL = 1e-5


@pytest.fixture(scope="module")
def released():
    torch.manual_seed(1)
    return NetworkR(width=0.25).eval()


@pytest.fixture(scope="module", params=["released", "folded"])
def net(request, released):
    return fold_batchnorm(copy.deepcopy(released)) if request.param == "folded" else released


@pytest.fixture(params=CONV_FORMS)
def form(request, monkeypatch):
    """How the 3x3x3 convolutions stream: every stream test runs in every form (the
    Winograd ones with every stride-1 layer wide enough: the test networks are narrow)."""
    monkeypatch.setattr(streaming, "WINOGRAD_MIN_CHANNELS", 1)
    return request.param


KINDS = {"taps": TemporalConv, "frame": FrameConv, "winograd": WinogradConv,
         "winograd-frame": WinogradConv}


def one_pass(net, x):
    """NetworkR over frames x [T, 1, H, W] in one call, as frames."""
    return net(x.transpose(0, 1).unsqueeze(0))[0].transpose(0, 1)


def stream_all(stream, x, sizes, start=0, scene_start=True):
    """Push x [T, 1, H, W] (times start..) in pieces of `sizes` (cycled); outputs."""
    state, outs, i, k, times = stream.begin(start, scene_start), [], 0, 0, []
    while i < len(x):
        n = sizes[k % len(sizes)]
        k += 1
        before = state.next_out
        state, done = stream.push(state, x[i:i + n], last=i + n >= len(x))
        i += n
        if done is not None:
            assert torch.equal(done[0], x[before - start:before - start + len(done[1])])
            outs.append(done[1])
            times.append(before)
    assert state.finished
    return torch.cat(outs), times


@pytest.mark.parametrize("frames", [1, 2, 30])
@pytest.mark.parametrize("sizes", [[1], [4, 1, 7], [64]])
def test_pieces_equal_one_pass(net, released, form, frames, sizes):
    x = torch.rand(frames, 1, 16, 32, generator=torch.Generator().manual_seed(frames))
    with torch.no_grad():
        whole = one_pass(released, x)
        got, times = stream_all(RestorationStream(net, form=form), x, sizes)
        again, _ = stream_all(RestorationStream(net, form=form), x, [frames])
    assert times[0] == 0 and got.shape == whole.shape
    assert (got - whole).abs().max() < TOL
    assert torch.equal(got, again)          # the pieces do not change a single bit


def test_fixed_batches_keep_the_bits(released, form):
    x = torch.rand(30, 1, 16, 32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        a, _ = stream_all(RestorationStream(released, batch=3, form=form), x, [6])
        b, _ = stream_all(RestorationStream(released, batch=3, form=form), x, [1, 8])
        c, _ = stream_all(RestorationStream(released, batch=3, form=form), x[7:], [5],
                          start=7, scene_start=False)
        whole = one_pass(released, x)
    assert torch.equal(a, b) and (a - whole).abs().max() < TOL
    assert torch.equal(c, a[7 + RESTORE_RADIUS:])


def test_stream_started_inside_a_scene_gives_the_same_bits_after_the_radius(net, form):
    x = torch.rand(40, 1, 16, 32, generator=torch.Generator().manual_seed(1))
    stream = RestorationStream(net, form=form)
    with torch.no_grad():
        whole, _ = stream_all(stream, x, [8])
        got, times = stream_all(stream, x[9:], [5], start=9, scene_start=False)
    assert times[0] == 9 + RESTORE_RADIUS
    assert torch.equal(got, whole[9 + RESTORE_RADIUS:])


def test_outputs_appear_radius_frames_after_their_input(net, form):
    stream = RestorationStream(net, form=form)
    x = torch.rand(20, 1, 16, 32)
    with torch.no_grad():
        state, done = stream.push(stream.begin(0, True), x[:RESTORE_RADIUS])
        assert done is None and state.next_out == 0 and state.next_in == RESTORE_RADIUS
        state, done = stream.push(state, x[RESTORE_RADIUS:RESTORE_RADIUS + 3])
        assert len(done[1]) == 3 and state.next_out == 3


def test_states_are_immutable(net, form):
    stream = RestorationStream(net, form=form)
    x = torch.rand(30, 1, 16, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        state, _ = stream.push(stream.begin(0, True), x[:20])
        _, first = stream.push(state, x[20:], last=True)
        _, again = stream.push(state, x[20:], last=True)
        assert torch.equal(first[1], again[1])
        finished, _ = stream.push(state, x[20:], last=True)
        with pytest.raises(ValueError, match="finished"):
            stream.push(finished, x[:1])


def test_networks_that_cannot_stream_are_refused():
    net = NetworkR(0.25)
    net.layers[2].conv3d.stride = (2, 1, 1)
    with pytest.raises(ValueError, match="stride 1"):
        RestorationStream(net)


def test_state_holds_only_its_own_frames(net, form):
    # a carry that were a view would keep its layer's whole input alive with the state
    stream = RestorationStream(net, form=form)
    with torch.no_grad():
        state, _ = stream.push(stream.begin(0, True), torch.rand(20, 1, 16, 32))
    held = [t for carry in state.chain.carries
            for t in getattr(carry, "frames", None) or (carry.ab, carry.a, carry.c)
            if t is not None] + [state.pending]
    assert all(len(t) <= RESTORE_RADIUS for t in held)
    for t in held:
        assert t.untyped_storage().nbytes() == t.numel() * t.element_size()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_temporal_conv_is_the_released_convolution(form, dtype):
    block = NetworkR(0.25).eval().layers[3].to(dtype)
    x = torch.rand(6, block.conv3d.in_channels, 8, 12, dtype=dtype)
    with torch.no_grad():
        want = block(torch.nn.functional.pad(x.transpose(0, 1)[None], (0, 0, 0, 0, 1, 1)))
        conv = temporal_conv(block, form)
        assert type(conv) is KINDS[form]
        carry, y = conv.step(conv.begin(0, True), x, last=True)
    # bfloat16: the taps round three partial sums, Conv3d one (a quantum at |y| ~ 1);
    # Winograd rounds its transformed tiles too (the engine runs it in float32 only)
    quanta = 4 if form.startswith("winograd") else 1
    tol = TOL if dtype == torch.float32 else quanta * 2 ** -7 * max(1, float(want.abs().max()))
    assert y.dtype == dtype and (y - want[0].transpose(0, 1)[1:-1]).abs().max() < tol


def test_frame_conv_keeps_a_frames_bits_in_any_piece_and_position():
    # one Conv3d shape per frame: a frame's bits do not depend on how frames arrive
    block = NetworkR(0.25).eval().layers[3].to(torch.bfloat16)
    x = torch.rand(12, block.conv3d.in_channels, 8, 12, dtype=torch.bfloat16)
    conv = FrameConv(block, batch=3)
    with torch.no_grad():
        _, whole = conv.step(conv.begin(0, True), x, last=True)
        carry, first = conv.step(conv.begin(0, True), x[:5], last=False)
        _, rest = conv.step(carry, x[5:], last=True)
        _, inside = conv.step(conv.begin(4, False), x[4:], last=True)
    assert torch.equal(torch.cat([first, rest]), whole)
    assert torch.equal(inside, whole[5:])


def test_the_frame_form_keeps_taps_for_few_output_channels(released):
    stages = RestorationStream(released, form="frame").chain.stages
    kinds = [type(s) for s in stages]
    assert kinds[:-1] == [FrameConv] * (len(stages) - 1) and kinds[-1] is TemporalConv
    assert stages[-1].channels < FRAME_MIN_CHANNELS <= stages[-2].block.channels


def test_an_unknown_conv_form_is_refused():
    with pytest.raises(ValueError, match="conv form must be one of"):
        RestorationStream(NetworkR(0.25), form="fft")


def test_frames_slice_pieces_as_views_and_join_only_across_them():
    from vsremaster.model.streaming import Frames
    x = torch.rand(7, 4, 3, 5).contiguous(memory_format=torch.channels_last)
    f = Frames([x[:3], x[3:3], x[3:]])
    assert len(f) == 7 and torch.equal(f[:], x)
    inside = f[4:6]
    assert torch.equal(inside, x[4:6]) and inside.data_ptr() == x[4].data_ptr()   # a view
    across = f[1:5]
    assert torch.equal(across, x[1:5]) and across.data_ptr() != x[1].data_ptr()
    assert f[7:].shape == (0, 4, 3, 5)
    w = f.window(2, 2, 3)                    # x[2:] with 2 copies of x[2] before, 3 of x[6] after
    want = torch.cat([x[2:3]] * 2 + [x[2:]] + [x[6:7]] * 3)
    assert len(w) == 10 and torch.equal(w[:], want)
    assert w[:].is_contiguous(memory_format=torch.channels_last)     # one layout, one kernel
    z = f.window(0, 1, 1, zero=True)[:]
    assert torch.equal(z[0], torch.zeros_like(x[0])) and torch.equal(z[1:8], x)
    with pytest.raises(ValueError):
        f[::2]
