"""NetworkR streamed in pieces equals one pass over the scene (model.streaming)."""
import copy

import pytest
import torch

from vsremaster.model import RESTORE_RADIUS, NetworkR
from vsremaster.model.fold import fold_batchnorm
from vsremaster.model.streaming import RestorationStream

TOL = 1e-5


@pytest.fixture(scope="module", params=["released", "folded"])
def net(request, seeded_models):
    model_r = seeded_models[0]
    return fold_batchnorm(copy.deepcopy(model_r)) if request.param == "folded" else model_r


def stream_all(stream, x, sizes, start=0, scene_start=True):
    """Push x [1, 1, T, H, W] (times start..) in pieces of `sizes` (cycled); outputs."""
    state, outs, i, k = stream.begin(start, scene_start), [], 0, 0
    times = []
    while i < x.shape[2]:
        n = sizes[k % len(sizes)]
        k += 1
        before = state.next_out
        state, done = stream.push(state, x[:, :, i:i + n], last=i + n >= x.shape[2])
        i += n
        if done is not None:
            assert torch.equal(done[0], x[:, :, before - start:before - start + done[1].shape[2]])
            outs.append(done[1])
            times.append(before)
    assert state.finished
    return torch.cat(outs, 2), times


@pytest.mark.parametrize("frames", [1, 2, 30])
@pytest.mark.parametrize("sizes", [[1], [4, 1, 7], [64]])
def test_pieces_equal_one_pass(net, frames, sizes):
    x = torch.rand(1, 1, frames, 16, 32, generator=torch.Generator().manual_seed(frames))
    stream = RestorationStream(net)
    with torch.no_grad():
        whole = net(x)
        got, _ = stream_all(stream, x, sizes)
    assert got.shape == whole.shape
    assert (got - whole).abs().max() < TOL


@pytest.mark.parametrize("max_frames", [1, 3])
def test_layers_in_blocks_equal_one_pass(net, max_frames):
    x = torch.rand(1, 1, 20, 16, 32, generator=torch.Generator().manual_seed(5))
    stream = RestorationStream(net, max_frames=max_frames)
    calls = []
    stream.layers = [_Counting(layer, calls) for layer in stream.layers]
    with torch.no_grad():
        whole = net(x)
        got, _ = stream_all(stream, x, [6])
    assert (got - whole).abs().max() < TOL
    assert max(calls) == max_frames


class _Counting:
    def __init__(self, layer, calls):
        self.layer, self.calls = layer, calls
        self.pad = layer.pad

    def __call__(self, seq):
        self.calls.append(seq.shape[2] - 2)
        return self.layer(seq)


def test_stream_started_inside_a_scene_is_exact_after_the_radius(net):
    x = torch.rand(1, 1, 40, 16, 32, generator=torch.Generator().manual_seed(1))
    stream = RestorationStream(net)
    with torch.no_grad():
        whole = net(x)
        got, times = stream_all(stream, x[:, :, 9:], [5], start=9, scene_start=False)
    assert times[0] == 9 + RESTORE_RADIUS
    assert got.shape[2] == 40 - 9 - RESTORE_RADIUS
    assert (got - whole[:, :, 9 + RESTORE_RADIUS:]).abs().max() < TOL


def test_outputs_appear_radius_frames_after_their_input(net):
    stream = RestorationStream(net)
    x = torch.rand(1, 1, 20, 16, 32)
    with torch.no_grad():
        state, done = stream.push(stream.begin(0, True), x[:, :, :RESTORE_RADIUS])
        assert done is None and state.next_out == 0 and state.next_in == RESTORE_RADIUS
        state, done = stream.push(state, x[:, :, RESTORE_RADIUS:RESTORE_RADIUS + 3])
        assert done[1].shape[2] == 3 and state.next_out == 3


def test_states_are_immutable(net):
    stream = RestorationStream(net)
    x = torch.rand(1, 1, 30, 16, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        state, _ = stream.push(stream.begin(0, True), x[:, :, :20])
        carries = [c.clone() for c in state.carries]
        _, first = stream.push(state, x[:, :, 20:], last=True)
        _, again = stream.push(state, x[:, :, 20:], last=True)
        assert torch.equal(first[1], again[1])
        assert all(torch.equal(a, b) for a, b in zip(carries, state.carries))
        finished, _ = stream.push(state, x[:, :, 20:], last=True)
        with pytest.raises(ValueError, match="finished"):
            stream.push(finished, x[:, :, :1])


def test_networks_that_cannot_stream_are_refused():
    net = NetworkR(0.25)
    net.layers[2].conv3d.stride = (2, 1, 1)
    with pytest.raises(ValueError, match="stride 1"):
        RestorationStream(net)


def test_state_holds_only_its_own_frames(net):
    # a carry that were a view would keep its layer's whole input alive with the state
    stream = RestorationStream(net)
    with torch.no_grad():
        state, _ = stream.push(stream.begin(0, True), torch.rand(1, 1, 20, 16, 32))
    for carry in state.carries:
        assert carry.shape[2] == 2
        assert carry.untyped_storage().nbytes() == carry.numel() * carry.element_size()
