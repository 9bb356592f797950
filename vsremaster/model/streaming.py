"""Temporal networks over a scene, a piece at a time, with bits that do not depend on the pieces.

A network is a chain of *stages*; output t of a stage depends on its inputs t-r..t+r
(r: the stage's radius). Frames are [T, C, H, W], time as the batch of 2-D operations:

- a 3x3x3 convolution, in one of two forms (`CONV_FORMS`):
  - "taps" (`TemporalConv`): one 2-D convolution per frame into three taps,
    z_u = (A_u, B_u, C_u), then y_t = (A_{t-1} + B_t) + C_{t+1}. Every frame's taps are
    computed once; a stream carries the partial sums of the outputs still waiting.
  - "frame" (`FrameConv`): channels-last Conv3d calls of a fixed number of output frames
    over their inputs; a stream carries the last 2 inputs. Layers with few output
    channels stay taps (`FRAME_MIN_CHANNELS`).
- `Windowed` stages (self attention over frames t-r..t+r, see `model.decoding`): a
  stream carries their last 2r input frames.

Beyond a scene's first and last frame a stage sees zeros or copies of the edge frame
(`edge`), as one pass over the whole scene with the released padding gives.

Fixed bits: a Conv3d's result for a frame changes in the last bits with the number of
frames in the call (measured with oneDNN), but not with the frame's place in a call of
one shape; a 2-D convolution gives every frame of a batch the same bits whatever the
batch (measured on the CPU; elsewhere calls are padded to a fixed number of frames,
`batch`, so kernels see one shape). Both forms therefore call kernels with one shape per
layer, and attention runs one frame per call. Which form is faster depends on the
machine (engine.streams.restoration_form has the figures). Hence a stream begun cold
inside a scene gives, from its first output on, exactly the bits of a stream begun at
the scene's first frame, and a frame's bytes do not depend on request order, seeks,
threads, or how a push was split after running out of memory. States are immutable:
resuming one twice gives the same result.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ConvBlock, UpBlock, batch_norm, elu, upsample2x
from .restoration import L_MEAN, RESTORE_RADIUS, NetworkR
from . import winograd

#: How a 3x3x3 convolution is streamed: "taps" (2-D taps in batches), "frame" (Conv3d
#: calls of a fixed number of frames), "winograd" (wide layers by Winograd, the rest
#: taps) or "winograd-frame" (wide layers by Winograd, the rest Conv3d calls).
CONV_FORMS = ("taps", "frame", "winograd", "winograd-frame")
#: Fewest output channels a convolution needs to take the "frame" form.
FRAME_MIN_CHANNELS = 8
#: Fewest input and output channels for Winograd's products to pay inside the filter:
#: the 128-channel layers lose, as each product copies its strided taps (RESULTS.md
#: "Float32 products by oneDNN", "Winograd for the 128-channel layers again").
WINOGRAD_MIN_CHANNELS = 256


def per_frame(fn, x: torch.Tensor, batch: int | None):
    """fn over frames x [T, ...] in calls of exactly `batch` frames (the last one padded
    with zeros), or in one call when batch is None. fn returns a tensor or a tuple."""
    if batch is None or x.shape[0] == batch:
        return fn(x)
    outs = []
    for i in range(0, x.shape[0], batch):
        part = x[i:i + batch]
        n = part.shape[0]
        if n < batch:
            part = torch.cat([part, part.new_zeros((batch - n, *part.shape[1:]))])
        out = fn(part)
        outs.append(tuple(t[:n] for t in out) if isinstance(out, tuple) else out[:n])
    if isinstance(outs[0], tuple):
        return tuple(torch.cat(ts) for ts in zip(*outs))
    return torch.cat(outs)


@dataclass(frozen=True)
class _ConvCarry:
    next_in: int                    # time of the next input frame
    next_out: int                   # time of the next output
    pad_first: bool                 # the scene's first frame is still to come
    ab: torch.Tensor | None         # A_{t-1} + B_t of the next output t
    a: torch.Tensor | None          # A of the last input frame
    c: torch.Tensor | None          # C of the last input frame (replicated edges only)


class Block3d:
    """What both forms share of a 3x3x3 block (Conv3d [+ BN + ELU]; an UpBlock upsamples
    first): its convolution, the per-frame work around it, and the streaming check."""

    def __init__(self, module: nn.Module, pad_space: bool = False):
        """pad_space: replicate-pad H and W by one first (the released NetworkR pads its
        input so)."""
        conv = module if isinstance(module, nn.Conv3d) else module.conv3d
        if tuple(conv.kernel_size) != (3, 3, 3) or conv.stride[0] != 1:
            raise ValueError("streaming needs 3x3x3 kernels with stride 1 in time")
        self.module, self.conv, self.pad_space = module, conv, pad_space
        self.channels = conv.out_channels

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """The block's per-frame work before the convolution (upsampling, spatial pad)."""
        if isinstance(self.module, UpBlock):
            x = upsample2x(x)
        if self.pad_space:
            x = F.pad(x, (1, 1, 1, 1), mode="replicate")
        return x

    def post(self, y: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """The work after the convolution (BN, ELU), into `out` when given."""
        if isinstance(self.module, nn.Conv3d):
            return y if out is None else out.copy_(y)
        return elu(batch_norm(self.module.bn, y), out)


class TemporalConv(Block3d):
    """A 3x3x3 block as taps (the "taps" form)."""

    radius = 1

    def __init__(self, module: nn.Module, edge: str = "zero", pad_space: bool = False,
                 batch: int | None = None):
        """edge: "zero" or "replicate" beyond the scene; pad_space: see Block3d;
        batch: frames per call."""
        super().__init__(module, pad_space)
        self.edge, self.batch = edge, batch
        c, w = self.channels, self.conv.weight
        # taps t-1, t, t+1 stacked as output channels; the bias rides on B
        self.weight = w.permute(2, 0, 1, 3, 4).reshape(3 * c, w.shape[1], *w.shape[3:])
        bias = self.conv.bias
        self.bias = None if bias is None else torch.cat(
            [torch.zeros_like(bias), bias, torch.zeros_like(bias)])

    def taps(self, x: torch.Tensor) -> torch.Tensor:
        """Frames x [T, Cin, H, W] -> taps [T, 3 * Cout, H', W']."""
        # one layout whatever the previous stage gave: oneDNN's kernel, and with it the
        # bits, differs between channels-last and contiguous inputs
        return F.conv2d(self.prepare(x).contiguous(), self.weight, self.bias, self.conv.stride[1:],
                        self.conv.padding[1:])

    def begin(self, start: int, scene_start: bool) -> _ConvCarry:
        return _ConvCarry(start, start if scene_start else start + 1, scene_start, None, None, None)

    def _edge(self, z: torch.Tensor) -> torch.Tensor:
        return z if self.edge == "replicate" else torch.zeros_like(z)

    def step(self, carry: _ConvCarry, x: torch.Tensor | None, last: bool):
        """Take the next input frames (or None); return (carry, outputs or None)."""
        c, t0 = self.channels, carry.next_out
        z = None if x is None else per_frame(self.taps, x, self.batch)
        z0, pad_first = carry.next_in, carry.pad_first      # z0: time of z[0]
        if pad_first and z is not None:
            z = torch.cat([self._edge(z[:1]), z])           # the frame before the scene
            z0, pad_first = z0 - 1, False
        next_in = carry.next_in + (0 if x is None else len(x))
        last_c = carry.c if z is None or self.edge != "replicate" else z[-1:, 2 * c:]
        a, parts = carry.a, [] if carry.ab is None else [carry.ab]
        if z is not None:                                  # A_{t-1} + B_t, t from t0 on
            za, zb = z[:, :c], z[:, c:2 * c]
            if a is not None:
                parts.append(torch.cat([a, za[:-1]]) + zb)
            elif len(z) > 1:
                parts.append(za[:-1] + zb[1:])
            a = za[-1:]
        sums = None if not parts else torch.cat(parts) if len(parts) > 1 else parts[0]
        cs = [] if z is None else [z[t0 + 1 - z0:, 2 * c:]]  # C_{t+1}
        if last and sums is not None:
            cs.append(last_c if self.edge == "replicate" else torch.zeros_like(sums[:1]))
        n = sum(len(t) for t in cs)
        if sums is None or not n:
            return _ConvCarry(next_in, t0, pad_first, sums, a, _own(last_c)), None
        y = self.post(sums[:n] + (torch.cat(cs) if len(cs) > 1 else cs[0]))
        if last:
            return _ConvCarry(next_in, t0 + n, False, None, None, None), y
        return _ConvCarry(next_in, t0 + n, pad_first, _own(sums[n:]), _own(a), _own(last_c)), y


def _own(t: torch.Tensor | None) -> torch.Tensor | None:
    """A copy holding only its own frames (a view would keep a whole batch alive)."""
    return None if t is None or not len(t) else t.clone()


@dataclass(frozen=True)
class _WindowCarry:
    next_out: int
    lo: int                         # time of frames[0][0]
    frames: tuple | None            # the stage's inputs from `lo` on


class Windowed:
    """A stage whose output t reads inputs t-radius..t+radius (beyond the scene: `edge`).

    Subclasses define `compute(window, n, start)`: window a tuple of n + 2r frames each
    (`Frames`, or tensors [n + 2r, ...]: slicing either gives tensors; the first member
    is the stage's input, further members side inputs aligned in time), returning the
    outputs of the n middle frames, times start .. start + n.
    """

    radius: int
    #: beyond the scene: "replicate" (copies of the edge frame) or "zero"
    edge = "replicate"

    def prepare(self, x: tuple) -> tuple:
        """Per-frame work on new inputs, done once per frame before they are windowed."""
        return x

    def compute(self, window: tuple, n: int, start: int) -> torch.Tensor:
        raise NotImplementedError

    def begin(self, start: int, scene_start: bool) -> _WindowCarry:
        return _WindowCarry(start if scene_start else start + self.radius, start, None)

    def step(self, carry: _WindowCarry, x, last: bool):
        new = None if x is None else self.prepare(x if isinstance(x, tuple) else (x,))
        members = [m for m in (carry.frames, new) if m is not None]
        # the inputs from `lo` on, held as the pieces they came in: a push is not copied
        # into one window
        frames = tuple(Frames(list(ts)) for ts in zip(*members))
        r, o, lo = self.radius, carry.next_out, carry.lo
        hi = lo + (len(frames[0]) if frames else 0)
        stop = hi if last else hi - r
        if not frames or stop <= o:
            return _WindowCarry(o, lo, tuple(f[:] for f in frames) or None), None
        # inputs o-r .. stop+r, the scene's edge frames repeated beyond it
        before, after = max(0, lo - (o - r)), max(0, stop + r - hi)
        window = tuple(f.window(max(0, o - r - lo), before, after, self.edge == "zero")
                       for f in frames)
        y = self.compute(window, stop - o, o)
        keep = max(0, stop - r - lo)
        kept = tuple(f[keep:].clone() for f in frames)
        return _WindowCarry(stop, lo + keep, kept if len(kept[0]) else None), y


class Frames:
    """Consecutive frames [T, ...] held as the pieces they came in.

    A slice is a tensor: a view when it lies in one piece, else its parts joined (a
    convolution call's few frames rather than a whole push).
    """

    def __init__(self, pieces: list[torch.Tensor]):
        self.pieces = [p for p in pieces if len(p)] or pieces[:1]
        self.length = sum(len(p) for p in self.pieces)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, s: slice) -> torch.Tensor:
        a, b, step = s.indices(self.length)
        if step != 1:
            raise ValueError("Frames slices take consecutive frames")
        parts, at = [], 0
        for p in self.pieces:
            if at < b and a < at + len(p):
                parts.append(p[max(0, a - at):b - at])
            at += len(p)
        if not parts:
            return self.pieces[0][:0]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def window(self, skip: int, before: int, after: int, zero: bool = False) -> "Frames":
        """These frames from `skip` on, with `before` copies of the first of them and
        `after` of the last (or zeros) around them."""
        first, last = self[skip:skip + 1], self[self.length - 1:]
        if zero:
            first = last = torch.zeros_like(first)
        # copies joined by cat keep the frames' memory layout (kernels, and with them the
        # bits, differ between layouts)
        pieces = [torch.cat([first] * before)] if before else []
        at = 0
        for p in self.pieces:
            if at + len(p) > skip:
                pieces.append(p[max(0, skip - at):])
            at += len(p)
        if after:
            pieces.append(torch.cat([last] * after))
        return Frames(pieces)


def _calls(frames: Frames, n: int, batch: int):
    """(t, inputs) of the 3x3x3 calls for outputs t .. t + batch of `frames` (n + 2
    frames): inputs [batch + 2, ...] channels last, the last call's padded with copies
    of its last frame (their outputs are dropped)."""
    for t in range(0, n, batch):
        w = frames[t:t + batch + 2]
        if len(w) < batch + 2:
            w = torch.cat([w] + [w[-1:]] * (batch + 2 - len(w)))
        yield t, w.contiguous(memory_format=torch.channels_last)


class FrameConv(Windowed):
    """A 3x3x3 block as Conv3d calls of exactly `batch` output frames each (the last call
    of a push padded with copies of its last frame, whose outputs are dropped).

    Frames are kept channels last, which [T, C, H, W] -> [1, C, T, H, W] turns into
    channels-last-3d without a copy (oneDNN's fast layout for Conv3d).
    """

    radius = 1

    def __init__(self, module: nn.Module, edge: str = "zero", pad_space: bool = False,
                 batch: int | None = 1):
        """As `TemporalConv`; batch: output frames per call (fixed: one shape, one set
        of bits per frame)."""
        self.block = Block3d(module, pad_space)
        self.edge, self.batch = edge, batch or 1
        conv = self.block.conv
        # a weight in the input's layout: else every call converts it (measured: a third
        # of the time)
        self.weight = conv.weight.contiguous(memory_format=torch.channels_last_3d)
        self.bias = conv.bias
        self.stride, self.padding = (1, *conv.stride[1:]), (0, *conv.padding[1:])

    def prepare(self, x: tuple) -> tuple:
        return (self.block.prepare(x[0]).contiguous(memory_format=torch.channels_last),)

    def compute(self, window: tuple, n: int, start: int = 0) -> torch.Tensor:
        b, out = self.batch, None
        for t, w in _calls(window[0], n, b):
            y = F.conv3d(w.transpose(0, 1)[None], self.weight, self.bias, self.stride,
                         self.padding)[0].transpose(0, 1)
            if out is None:                 # whole calls: each call's post sees one shape
                out = torch.empty((-(-n // b) * b, *y.shape[1:]), dtype=y.dtype,
                                  device=y.device, memory_format=torch.channels_last)
            self.block.post(y, out[t:t + b])
        return out[:n]


class WinogradConv(FrameConv):
    """A wide 3x3x3 block (stride 1, zero padding 1 in space) as `FrameConv`, each call
    of `batch` output frames multiplying in Winograd's domain (`model.winograd`).

    Frames too large for winograd.SCRATCH_BYTES go in bands of tile rows; a layer whose
    one row of tiles does not fit takes the Conv3d calls (the choice depends only on
    the layer and the frame size, so every frame of a clip gets the same form).
    """

    def __init__(self, module: nn.Module, edge: str = "zero", batch: int | None = 1):
        super().__init__(module, edge, False, batch)
        if not winograd_wide(self.block.conv):
            raise ValueError("Winograd needs a wide 3x3x3 convolution with stride 1, padding 1")
        self.u = winograd.cached_weight(self.block.conv)

    def compute(self, window: tuple, n: int, start: int = 0) -> torch.Tensor:
        b, x = self.batch, window[0]
        first = x[:1]
        _, cin, h, wd = first.shape
        cout = self.block.channels
        if not winograd.fits(b, h, wd, cin, cout, 3, first.element_size()):
            return super().compute(window, n, start)
        y = first.new_empty(-(-n // b) * b, h, wd, cout)
        for t, w in _calls(x, n, b):
            winograd.convolve(w.permute(0, 2, 3, 1), self.u, self.bias, y[t:t + b])
            part = y[t:t + b].permute(0, 3, 1, 2)
            self.block.post(part, part)
        return y[:n].permute(0, 3, 1, 2)


def winograd_wide(conv: nn.Conv3d) -> bool:
    """Whether WinogradConv computes this 3x3x3 convolution and it is wide enough to
    gain (WINOGRAD_MIN_CHANNELS)."""
    return winograd.suits(conv, WINOGRAD_MIN_CHANNELS)


def temporal_conv(module: nn.Module, form: str, edge: str = "zero", pad_space: bool = False,
                  batch: int | None = None):
    """A streaming stage for a 3x3x3 block in `form` (see CONV_FORMS); batch: frames per
    call (fixed; None: any, taps only)."""
    if form not in CONV_FORMS:
        raise ValueError(f"conv form must be one of {CONV_FORMS}, not {form!r}")
    block = Block3d(module)
    if form.startswith("winograd") and not pad_space and winograd_wide(block.conv):
        return WinogradConv(module, edge, batch)
    # a few output channels (the networks' last layers) stay taps: channels-last Conv3d
    # was many times slower there (RESULTS.md "The restoration as Conv3d calls")
    if form in ("frame", "winograd-frame") and block.channels >= FRAME_MIN_CHANNELS:
        return FrameConv(module, edge, pad_space, batch)
    return TemporalConv(module, edge, pad_space, batch)


@dataclass(frozen=True)
class ChainState:
    """Where a stream stands: the next input's and output's times and each stage's carry."""

    next_in: int
    next_out: int
    carries: tuple
    finished: bool = False


class Chain:
    """Stages pushed piece by piece (see the module docstring)."""

    def __init__(self, stages: list):
        self.stages = stages
        #: frames after t that output t waits for
        self.lag = sum(stage.radius for stage in stages)

    def begin(self, start: int, scene_start: bool) -> ChainState:
        """A stream whose first input is at time `start`: the scene's first frame
        (padded as one pass pads it), or inside the scene (outputs begin `lag` later)."""
        carries, t = [], start
        for stage in self.stages:
            carries.append(stage.begin(t, scene_start))
            t = carries[-1].next_out
        return ChainState(start, t, tuple(carries))

    def push(self, state: ChainState, x, last: bool = False):
        """Feed the next input frames (a tensor or a tuple of aligned tensors; None when
        there are none, then only with `last`).

        Returns the new state and the outputs for times `state.next_out` onwards, or None.
        """
        if state.finished:
            raise ValueError("the stream has finished")
        count = _length(x)
        h = x if count else None
        carries = []
        for stage, carry in zip(self.stages, state.carries):
            carry, h = stage.step(carry, h, last)
            carries.append(carry)
        return ChainState(state.next_in + count, state.next_out + _length(h), tuple(carries),
                          last), h


def _length(x) -> int:
    if x is None:
        return 0
    return len(x[0] if isinstance(x, tuple) else x)


@dataclass(frozen=True)
class StreamState:
    """A restoration stream: the chain's state and inputs still waiting for their output."""

    chain: ChainState
    next_in: int
    pending: torch.Tensor | None        # inputs [k, 1, H, W] from `next_out` on

    @property
    def next_out(self) -> int:
        return self.chain.next_out

    @property
    def finished(self) -> bool:
        return self.chain.finished


def restoration_stages(net: NetworkR, batch: int | None = 1, form: str = "taps") -> list:
    """NetworkR's 13 temporal layers as streaming stages (convolutions in `form`)."""
    stages, pad = [], False
    for m in net.layers:
        if isinstance(m, nn.ReplicationPad3d):
            pad = True
            continue
        if not isinstance(m, (ConvBlock, UpBlock, nn.Conv3d)):
            raise TypeError(f"cannot stream a {type(m).__name__}")
        stages.append(temporal_conv(m, form, "replicate" if pad else "zero", pad, batch))
        pad = False
    if len(stages) != RESTORE_RADIUS:
        raise ValueError(f"expected {RESTORE_RADIUS} temporal layers, found {len(stages)}")
    return stages


class RestorationStream:
    """NetworkR over a scene piece by piece: outputs equal `NetworkR(scene)`."""

    def __init__(self, net: NetworkR, batch: int | None = 1, form: str = "taps"):
        """batch: frames per convolution call (None: any, taps only; fixed on devices
        whose kernels depend on the batch size); form: how convolutions stream
        (CONV_FORMS)."""
        self.chain = Chain(restoration_stages(net, batch, form))
        self.lag = self.chain.lag

    def begin(self, start: int, scene_start: bool) -> StreamState:
        return StreamState(self.chain.begin(start, scene_start), start, None)

    def push(self, state: StreamState, x: torch.Tensor | None, last: bool = False):
        """Feed model L frames x [T, 1, H, W] (None or T = 0: only when `last`).

        Returns the new state and, when outputs became final, (inputs, outputs), both
        [n, 1, H, W] for times `state.next_out` .. `+ n`; else None.
        """
        if x is not None and not len(x):
            x = None
        chain, h = self.chain.push(state.chain, None if x is None else x - L_MEAN, last)
        pending, next_in = state.pending, state.next_in
        if x is not None:
            pending = x if pending is None else torch.cat([pending, x])
            next_in += len(x)
        if pending is not None:
            # inputs before the first output (a stream begun inside a scene) get none
            early = state.next_out - (next_in - len(pending))
            if early > 0:
                pending = pending[early:]
        done = None
        if h is not None:
            n = len(h)
            done = (pending[:n], torch.clamp(pending[:n] + torch.tanh(h), 0, 1))
            pending = pending[n:]
        return StreamState(chain, next_in, _own(pending)), done
