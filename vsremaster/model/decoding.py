"""NetworkC's cross-frame part with temporally local self attention, streamed over a scene.

The released `NetworkC.decode` mixes every frame processed together: both self
attentions span the whole chunk, so a frame's colour depends on where the chunk was cut.
Here every cross-frame operation is centred on the frame it computes:

- each self attention lets the queries of frame t attend the keys of frames t-7..t+7
  (`WINDOW_RADIUS`);
- each 3x3x3 convolution sees frames t-1..t+1;
- beyond the scene's first and last frame, every operation sees copies of that edge frame
  (so an edge frame's keys repeat in its neighbours' windows, as edge replication gives).

A frame's result then depends on its scene only, never on how the scene is cut into
pieces: `DecoderStream` computes it piece by piece (model.streaming), with the same result
and the same cost per frame whatever the piece size. `context="chunk"` keeps the released
decoding for comparison: the frames finished by one push, with WINDOW_RADIUS frames of
context each side, share both self attentions.

Frames are [T, C, H, W] (time first), features come from `NetworkC.encode_frame_batch`.
"""
from __future__ import annotations

import torch

from .blocks import Attention, upsample2x
from .colorization import FrameFeatures, NetworkC
from .streaming import Chain, ChainState, Windowed, per_frame, temporal_conv

#: Frames each side that a self attention sees (the model's 15-frame window).
WINDOW_RADIUS = 7
#: How a stream decodes: "frame" centres every cross-frame operation on its frame;
#: "chunk" decodes each push's frames as one window (the released way, for comparison).
CONTEXTS = ("frame", "chunk")


class WindowAttention(Windowed):
    """Self attention: queries of frame t attend keys of frames t-r..t+r.

    With `skip`, the input is (x, skip) and the result is joined as `NetworkC.up1` joins
    it: the upsampled attention output concatenated with the skip features.
    """

    def __init__(self, attn: Attention, skip: bool = False, batch: int | None = None,
                 radius: int = WINDOW_RADIUS):
        self.attn, self.skip, self.batch, self.radius = attn, skip, batch, radius

    def compute(self, window: tuple, n: int, start: int = 0) -> torch.Tensor:
        x, r = window[0][:], self.radius
        a = self.attn
        k = per_frame(lambda f: a.project(a.key_conv, f), x, self.batch)      # [T, S, C/8]
        v = per_frame(lambda f: a.project(a.value_conv, f), x, self.batch)    # [T, S, C]
        out = torch.cat([a.attend_frame(x[r + j:r + j + 1],
                                        k[j:j + 2 * r + 1].reshape(1, -1, k.shape[2]),
                                        v[j:j + 2 * r + 1].reshape(1, -1, v.shape[2]))
                         for j in range(n)])
        if self.skip:
            return torch.cat([upsample2x(out), window[1][r:r + n]], 1)
        return out


class WholeWindow(Windowed):
    """The released decode over each chunk plus WINDOW_RADIUS frames each side.

    chunk_of(t) -> (start, stop): the chunk holding frame t (default: everything a push
    finishes is one chunk)."""

    radius = WINDOW_RADIUS

    def __init__(self, net: NetworkC, chunk_of=None):
        self.net, self.chunk_of = net, chunk_of

    def compute(self, window: tuple, n: int, start: int = 0) -> torch.Tensor:
        r, out, t = self.radius, [], start
        while t < start + n:
            stop = start + n if self.chunk_of is None else min(self.chunk_of(t)[1], start + n)
            a, b = t - start, stop - start + 2 * r
            deep, skip = (w[a:b].transpose(0, 1).unsqueeze(0) for w in window)
            ab = self.net.decode(FrameFeatures(skip, deep))[0].transpose(0, 1)
            out.append(ab[r:r + stop - t])
            t = stop
        return torch.cat(out)


def decoder_stages(net: NetworkC, context: str = "frame", batch: int | None = 1,
                   radius: int = WINDOW_RADIUS, chunk_of=None, form: str = "taps") -> list:
    """NetworkC's decode as a chain of cross-frame stages (a sigmoid follows).

    radius: frames each side a self attention sees (WINDOW_RADIUS; less for previews);
    chunk_of: with context="chunk", t -> (start, stop) of the chunk holding frame t;
    form: how the 3x3x3 convolutions stream (model.streaming.CONV_FORMS)."""
    if context not in CONTEXTS:
        raise ValueError(f"context must be one of {CONTEXTS}, not {context!r}")
    if context == "chunk":
        return [WholeWindow(net, chunk_of)]
    conv = lambda m: temporal_conv(m, form, "replicate", batch=batch)  # noqa: E731
    attend = lambda a, **kw: WindowAttention(a, batch=batch, radius=radius, **kw)  # noqa: E731
    return [attend(net.selfattn1, skip=True), conv(net.up1.conv3d),
            attend(net.selfattn2), conv(net.conv2),
            *(conv(m) for m in (*net.up2, *net.up3, *net.up4))]


class DecoderStream:
    """NetworkC's decode over a scene, piece by piece (see the module docstring).

    A stream begun inside a scene has no frames before its start: its first output is
    `lag` frames after its first input.
    """

    def __init__(self, net: NetworkC, context: str = "frame", batch: int | None = 1,
                 radius: int = WINDOW_RADIUS, chunk_of=None, form: str = "taps"):
        """batch: frames per convolution call (fixed, so kernels always see one shape);
        radius: frames each side a self attention sees; chunk_of: see WholeWindow;
        form: how the 3x3x3 convolutions stream (CONV_FORMS; engine.streams.decoder_form
        picks one, benchmarks/conv_forms.py compares them)."""
        self.chain = Chain(decoder_stages(net, context, batch, radius, chunk_of, form))
        self.lag = self.chain.lag
        self.chunked = context == "chunk"

    def begin(self, start: int, scene_start: bool) -> ChainState:
        return self.chain.begin(start, scene_start)

    def push(self, state: ChainState, feats: tuple[torch.Tensor, torch.Tensor] | None,
             last: bool = False) -> tuple[ChainState, torch.Tensor | None]:
        """Feed (skip, deep) features [n, 512, ...] of the next frames (None: only when
        `last`). Returns the new state and ab [k, 2, H, W] in [0, 1] of times
        `state.next_out` .. `+ k`, or None when no frame became final."""
        x = None if feats is None else (feats[1], feats[0])
        state, out = self.chain.push(state, x, last)
        if out is None or self.chunked:
            return state, out
        return state, torch.sigmoid(out)


def decode_scene(net: NetworkC, skip: torch.Tensor, deep: torch.Tensor) -> torch.Tensor:
    """ab [T, 2, H, W] of a whole scene's features [T, C, h, w] in one push."""
    stream = DecoderStream(net)
    return stream.push(stream.begin(0, True), (skip, deep), last=True)[1]
