"""NetworkR streamed in pieces equals one pass over the scene (model.streaming)."""
import copy

import pytest
import torch

from vsremaster.model import RESTORE_RADIUS, NetworkR
from vsremaster.model.fold import fold_batchnorm
from vsremaster.model.streaming import RestorationStream, TemporalConv

TOL = 1e-5


@pytest.fixture(scope="module")
def released():
    torch.manual_seed(1)
    return NetworkR(width=0.25).eval()


@pytest.fixture(scope="module", params=["released", "folded"])
def net(request, released):
    return fold_batchnorm(copy.deepcopy(released)) if request.param == "folded" else released


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
def test_pieces_equal_one_pass(net, released, frames, sizes):
    x = torch.rand(frames, 1, 16, 32, generator=torch.Generator().manual_seed(frames))
    with torch.no_grad():
        whole = one_pass(released, x)
        got, times = stream_all(RestorationStream(net), x, sizes)
        again, _ = stream_all(RestorationStream(net), x, [frames])
    assert times[0] == 0 and got.shape == whole.shape
    assert (got - whole).abs().max() < TOL
    assert torch.equal(got, again)          # the pieces do not change a single bit


def test_fixed_batches_keep_the_bits(released):
    x = torch.rand(20, 1, 16, 32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        a, _ = stream_all(RestorationStream(released, batch=3), x, [6])
        b, _ = stream_all(RestorationStream(released, batch=3), x, [1, 8])
        whole = one_pass(released, x)
    assert torch.equal(a, b) and (a - whole).abs().max() < TOL


def test_stream_started_inside_a_scene_gives_the_same_bits_after_the_radius(net):
    x = torch.rand(40, 1, 16, 32, generator=torch.Generator().manual_seed(1))
    stream = RestorationStream(net)
    with torch.no_grad():
        whole, _ = stream_all(stream, x, [8])
        got, times = stream_all(stream, x[9:], [5], start=9, scene_start=False)
    assert times[0] == 9 + RESTORE_RADIUS
    assert torch.equal(got, whole[9 + RESTORE_RADIUS:])


def test_outputs_appear_radius_frames_after_their_input(net):
    stream = RestorationStream(net)
    x = torch.rand(20, 1, 16, 32)
    with torch.no_grad():
        state, done = stream.push(stream.begin(0, True), x[:RESTORE_RADIUS])
        assert done is None and state.next_out == 0 and state.next_in == RESTORE_RADIUS
        state, done = stream.push(state, x[RESTORE_RADIUS:RESTORE_RADIUS + 3])
        assert len(done[1]) == 3 and state.next_out == 3


def test_states_are_immutable(net):
    stream = RestorationStream(net)
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


def test_state_holds_only_its_own_frames(net):
    # a carry that were a view would keep its layer's whole input alive with the state
    stream = RestorationStream(net)
    with torch.no_grad():
        state, _ = stream.push(stream.begin(0, True), torch.rand(20, 1, 16, 32))
    held = [t for carry in state.chain.carries for t in (carry.ab, carry.a, carry.c)
            if t is not None] + [state.pending]
    assert all(len(t) <= RESTORE_RADIUS for t in held)
    for t in held:
        assert t.untyped_storage().nbytes() == t.numel() * t.element_size()


def test_a_temporal_conv_is_the_released_convolution():
    block = NetworkR(0.25).eval().layers[3]
    x = torch.rand(6, block.conv3d.in_channels, 8, 12)
    with torch.no_grad():
        want = block(torch.nn.functional.pad(x.transpose(0, 1)[None], (0, 0, 0, 0, 1, 1)))
        conv = TemporalConv(block)
        carry, y = conv.step(conv.begin(0, True), x, last=True)
    assert (y - want[0].transpose(0, 1)[1:-1]).abs().max() < TOL
