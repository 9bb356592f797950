"""NetworkR over a long scene in pieces: exact, in bounded memory, no context recomputed.

NetworkR is a plain stack of 13 convolutions with 3 frames of temporal kernel, so
frame t of a layer's output needs frames t-1..t+1 of its input. A stream feeds the
scene to the network a piece at a time; each layer keeps the last two frames of its
input (its *carry*) for the next piece, and the scene's edges get the padding one
pass over the whole scene would give them (replication for the first layer, zeros for
the others). The outputs equal `NetworkR(scene)`, while memory grows with the piece
length only. States are immutable: resuming from one state twice gives the same result.

A stream can also begin inside a scene (no padding): its first output is then the
frame RESTORE_RADIUS frames after the first input, and from there on it is exact.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ConvBlock, UpBlock, upsample2x
from .restoration import L_MEAN, RESTORE_RADIUS, NetworkR


class _Layer:
    """One temporal layer applied to a piece with no padding in time.

    `replicate`: the layer is the first one, whose input the network pads by
    replication (in time too); the others pad time with zeros.
    """

    def __init__(self, module: nn.Module, replicate: bool = False):
        conv = module if isinstance(module, nn.Conv3d) else module.conv3d
        if conv.kernel_size[0] != 3 or conv.stride[0] != 1:
            raise ValueError("streaming needs temporal kernels of 3 with stride 1")
        self.module, self.conv, self.replicate = module, conv, replicate
        self.padding = (0, 0, 0) if replicate else (0,) + tuple(conv.padding[1:])

    def pad(self, frame: torch.Tensor) -> torch.Tensor:
        """The frame one pass puts beyond a scene edge next to `frame` [B, C, 1, H, W]."""
        return frame if self.replicate else torch.zeros_like(frame)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, C, T, H, W] (T >= 3) -> [B, C', T-2, H', W']."""
        m = self.module
        if self.replicate:
            x = F.pad(x, (1, 1, 1, 1, 0, 0), mode="replicate")
        if isinstance(m, UpBlock):
            x = upsample2x(x)
        y = F.conv3d(x, self.conv.weight, self.conv.bias, self.conv.stride, self.padding)
        if isinstance(m, (ConvBlock, UpBlock)):
            y = F.elu(m.bn(y))
        return y


def _layers(net: NetworkR) -> list[_Layer]:
    layers, replicate = [], False
    for m in net.layers:
        if isinstance(m, nn.ReplicationPad3d):
            replicate = True
            continue
        if not isinstance(m, (ConvBlock, UpBlock, nn.Conv3d)):
            raise TypeError(f"cannot stream a {type(m).__name__}")
        layers.append(_Layer(m, replicate))
        replicate = False
    if len(layers) != RESTORE_RADIUS:
        raise ValueError(f"expected {RESTORE_RADIUS} temporal layers, found {len(layers)}")
    return layers


@dataclass(frozen=True)
class StreamState:
    """Where a stream stands: the next input frame's time and each layer's carry."""

    next_in: int                        # time of the next frame to push
    next_out: int                       # time of the next output frame
    pad_start: bool                     # the stream began at a scene start
    carries: tuple                      # per layer: its last (<= 2) input frames, or None
    pending: torch.Tensor | None        # pushed inputs [B, 1, k, H, W] from next_out on
    finished: bool = False


class RestorationStream:
    """Piecewise evaluation of a NetworkR (see the module docstring)."""

    def __init__(self, net: NetworkR, max_frames: int | None = None):
        """max_frames: most output frames one layer computes in one call (None: all);
        bounds the scene's final drain, which each layer receives with its lag."""
        self.layers = _layers(net)
        self.max_frames = max_frames

    def begin(self, start: int, scene_start: bool) -> StreamState:
        """A stream whose first input frame is at time `start`.

        scene_start: `start` is a scene's first frame (padded as one pass pads it);
        otherwise outputs begin at `start + RESTORE_RADIUS`.
        """
        first_out = start if scene_start else start + RESTORE_RADIUS
        return StreamState(start, first_out, scene_start, (None,) * len(self.layers), None)

    def push(self, state: StreamState, x: torch.Tensor, last: bool = False
             ) -> tuple[StreamState, tuple[torch.Tensor, torch.Tensor] | None]:
        """Feed the next frames x [B, 1, T, H, W] (T may be 0 when `last`).

        last: x ends the scene (its far edge is padded and the stream finishes).
        Returns the new state and, when some outputs became final, (inputs, outputs):
        both [B, 1, n, H, W] for times `state.next_out` .. `+ n`, the network's input
        frames and its outputs (else None).
        """
        if state.finished:
            raise ValueError("the stream has finished")
        if last and x.shape[2]:
            # each layer lags a frame behind the one before: finishing the scene in the
            # same step would send x plus 12 lagging frames through the deepest layers
            # (each layer's whole output is held at once); draining in a step of its own
            # measured 811 vs 948 MB for a 17-frame piece at 320x176
            state, done = self._step(state, x, False)
            state, rest = self._step(state, x[:, :, :0], True)
            if done is None or rest is None:
                return state, done or rest
            return state, tuple(torch.cat([a, b], 2) for a, b in zip(done, rest))
        return self._step(state, x, last)

    def _apply(self, layer: _Layer, seq: torch.Tensor) -> torch.Tensor:
        n = seq.shape[2] - 2
        step = self.max_frames or n
        if n <= step:
            return layer(seq)
        return torch.cat([layer(seq[:, :, i:i + step + 2]) for i in range(0, n, step)], 2)

    def _step(self, state: StreamState, x: torch.Tensor, last: bool):
        h: torch.Tensor | None = x - L_MEAN if x.shape[2] else None
        carries = []
        for layer, carry in zip(self.layers, state.carries):
            parts = [] if carry is None else [carry]
            if carry is None and state.pad_start and h is not None:
                parts.append(layer.pad(h[:, :, :1]))
            if h is not None:
                parts.append(h)
            if last and parts:
                parts.append(layer.pad(parts[-1][:, :, -1:]))
            seq = torch.cat(parts, 2) if len(parts) > 1 else (parts[0] if parts else None)
            # a copy: a view would keep every layer's whole input alive with the state
            carries.append(None if seq is None else seq[:, :, -2:].clone())
            parts = h = None                    # seq holds the frames; free the rest first
            h = self._apply(layer, seq) if seq is not None and seq.shape[2] >= 3 else None
            seq = None

        pending = x if state.pending is None else torch.cat([state.pending, x], 2)
        if state.next_in < state.next_out:      # inputs before the first output: drop
            pending = pending[:, :, state.next_out - state.next_in:]
        done = None
        if h is not None:
            n = h.shape[2]
            done = (pending[:, :, :n], torch.clamp(pending[:, :, :n] + torch.tanh(h), 0, 1))
            pending = pending[:, :, n:]
        n_out = 0 if done is None else done[1].shape[2]
        new = StreamState(state.next_in + x.shape[2], state.next_out + n_out,
                          state.pad_start, tuple(carries), pending, last)
        return new, done
