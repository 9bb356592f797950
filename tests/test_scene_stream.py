"""engine.streams.SceneStream: a scene through restoration, encoders and decoder."""
from __future__ import annotations

import torch

from vsremaster.engine.models import Models
from vsremaster.engine.streams import SceneStream
from vsremaster.model import NetworkC, NetworkR
from vsremaster.model.fold import fold_batchnorm


def _models() -> Models:
    torch.manual_seed(0)
    r = fold_batchnorm(NetworkR(0.125).eval())
    c = fold_batchnorm(NetworkC(0.125).eval())
    return Models(r, c, torch.device("cpu"), torch.float32, "")


def test_the_flush_at_a_scenes_end_is_a_step_of_its_own():
    """With `last`, the frames the streams hold back go through after the new frames,
    in a push of their own (the memory peak of one big flush), with the same bits."""
    stream = SceneStream(_models(), restore=True, colorize=True, batch=4)
    l = torch.rand(19, 1, 32, 48)
    seen = []
    push = stream.restoration.push

    def record(state, x, last=False):
        seen.append((None if x is None else len(x), last))
        return push(state, x, last)

    stream.restoration.push = record
    with torch.no_grad():
        _, stepped = stream.push(stream.begin(0, True), l, None, True, 8)
        assert seen == [(8, False), (8, False), (3, False), (None, True)]
        del stream.restoration.push
        _, whole = stream.push(stream.begin(0, True), l, None, True, 64)
    assert stepped.start == whole.start == 0 and stepped.length == whole.length == 19
    assert torch.equal(stepped.delta, whole.delta) and torch.equal(stepped.ab, whole.ab)
