"""One scene through the networks: restoration stream -> per-frame encoders -> decoder stream.

A `SceneStream` takes model-size luminance a piece at a time and gives back finished
frames as model-size results: the restoration's change of L and the colour (ab). Each
part is a stream of its own (model.streaming, model.decoding); the encoders between them
work on each frame alone. Pieces are pushed in steps of at most `step` frames, which
bounds the memory a push needs; the bits do not depend on the steps.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..model import RefEncoding
from ..references.fallback import NEUTRAL_AB
from ..model.decoding import WINDOW_RADIUS, DecoderStream
from ..model.streaming import ChainState, RestorationStream, StreamState, per_frame
from .models import Models


@dataclass(frozen=True)
class Finished:
    """Model-size results of frames `start` .. `start + len`: `delta` [n, 1, h, w]
    (restored minus input L; None without restoration) and `ab` [n, 2, h, w] in [0, 1]
    (None without colorization), float32 on the models' device."""

    start: int
    length: int
    delta: torch.Tensor | None
    ab: torch.Tensor | None

    def part(self, start: int, stop: int) -> "Finished":
        a, b = start - self.start, stop - self.start
        return Finished(start, stop - start, *(None if t is None else t[a:b]
                                               for t in (self.delta, self.ab)))

    def neutral(self, size: tuple[int, int], device) -> "Finished":
        """The same frames with neutral colour (a* = b* = 0) as their ab, at model size."""
        ab = torch.full((self.length, 2, *size), NEUTRAL_AB, device=device)
        return Finished(self.start, self.length, self.delta, ab)

    def own(self) -> "Finished":
        """A copy holding only its own frames (a slice would keep the whole push alive)."""
        return Finished(self.start, self.length, *(None if t is None else t.clone()
                                                   for t in (self.delta, self.ab)))

    @staticmethod
    def join(parts: list["Finished"]) -> "Finished | None":
        if not parts:
            return None
        cat = lambda ts: None if ts[0] is None else torch.cat(ts)        # noqa: E731
        return Finished(parts[0].start, sum(p.length for p in parts),
                        cat([p.delta for p in parts]), cat([p.ab for p in parts]))


@dataclass(frozen=True)
class SceneState:
    """Where a scene stream stands; immutable."""

    restore: StreamState | None
    decode: ChainState | None
    waiting: torch.Tensor | None       # deltas of restored frames whose ab is still to come
    waiting_at: int                    # time of waiting[0] (or of the next restored frame)
    next_in: int
    next_out: int
    finished: bool = False

    @property
    def nbytes(self) -> int:
        """Bytes of the tensors the state holds (caches bound themselves by this)."""
        return _tensor_bytes(self)


def _tensor_bytes(obj, seen=None) -> int:
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, (tuple, list)):
        return sum(_tensor_bytes(o, seen) for o in obj)
    if hasattr(obj, "__dataclass_fields__"):
        return sum(_tensor_bytes(getattr(obj, f), seen) for f in obj.__dataclass_fields__)
    return 0


class SceneStream:
    """The networks a scene goes through, as one stream (see the module docstring)."""

    def __init__(self, models: Models, *, restore: bool, colorize: bool, context: str = "frame",
                 batch: int = 1, window: int = WINDOW_RADIUS, chunk_of=None):
        """batch: frames per call of every per-frame computation (fixed: the bits then do
        not depend on which frames are computed together); window: frames each side a
        self attention sees; chunk_of: with context="chunk", t -> the chunk holding t."""
        self.models, self.batch = models, batch
        self.restoration = RestorationStream(models.restore, batch) if restore else None
        self.decoder = DecoderStream(models.colorize, context, batch, window, chunk_of) \
            if colorize else None
        #: frames after t that output t waits for
        self.lag = sum(s.lag for s in (self.restoration, self.decoder) if s is not None)
        #: the decoder decodes each push as one window: pieces must reach it whole
        self.whole_pieces = self.decoder is not None and self.decoder.chunked

    def begin(self, start: int, scene_start: bool) -> SceneState:
        """A stream from time `start`: the scene's first frame, or inside the scene (then
        outputs begin `lag` frames later)."""
        r = self.restoration.begin(start, scene_start) if self.restoration else None
        t = r.next_out if r else start
        d = self.decoder.begin(t, scene_start) if self.decoder else None
        return SceneState(r, d, None, t, start, d.next_out if d else t)

    def push(self, state: SceneState, l: torch.Tensor | None, refs: RefEncoding | None,
             last: bool, step: int) -> tuple[SceneState, Finished | None]:
        """Push model L [n, 1, h, w] (float32 on the device; None or n = 0 only when
        `last`) in steps of at most `step` frames. Returns the new state and the frames
        it finished, from `state.next_out` on."""
        n = 0 if l is None else len(l)
        done, held = [], []
        for i in range(0, max(n, 1), step):
            stop = min(i + step, n)
            end = last and stop == n
            r, restored, delta = self._restore(state.restore, l[i:stop] if n else None, end)
            state = SceneState(r, state.decode, _append(state.waiting, delta), state.waiting_at,
                               state.next_in + stop - i, state.next_out)
            if self.decoder is None:
                state, fin = self._finish(state, restored, end)
            else:
                held.append(None if restored is None else self._encode(restored, refs))
                if self.whole_pieces and stop < n:
                    continue           # the decoder takes the whole piece at once
                state, fin = self._decode(state, held, end)
                held = []
            if fin is not None:
                done.append(fin)
        return state, Finished.join(done)

    def _restore(self, r: StreamState | None, x: torch.Tensor | None, last: bool):
        """(stream state, restored frames or None, their delta or None)."""
        if x is not None:
            x = x.to(self.models.dtype)
        if self.restoration is None:
            return r, x, None
        r, done = self.restoration.push(r, x, last)
        if done is None:
            return r, None, None
        l_in, l_out = done
        return r, l_out, l_out.float() - l_in.float()

    def _encode(self, restored: torch.Tensor, refs: RefEncoding | None):
        net = self.models.colorize
        return per_frame(lambda f: net.encode_frame_batch(f, refs), restored, self.batch)

    def _finish(self, state: SceneState, restored, last: bool):
        """Without colorization, restored frames are finished as they come."""
        n = 0 if restored is None else len(restored)
        delta = state.waiting
        new = SceneState(state.restore, None, None, state.waiting_at + n, state.next_in,
                         state.next_out + n, last)
        return new, Finished(state.next_out, n, delta, None) if n else None

    def _decode(self, state: SceneState, held: list, last: bool):
        feats = [f for f in held if f is not None]
        feats = None if not feats else tuple(torch.cat(t) for t in zip(*feats))
        d, ab = self.decoder.push(state.decode, feats, last)
        n = 0 if ab is None else len(ab)
        waiting, at, delta = state.waiting, state.waiting_at, None
        if waiting is not None:
            # deltas of frames before the decoder's first output (a cold start) get none
            early = state.decode.next_out - at
            if early > 0:
                waiting, at = waiting[early:], at + early
            delta, waiting, at = waiting[:n], waiting[n:], at + n
            waiting = waiting.clone() if len(waiting) else None
        elif self.restoration is None:
            at += n
        new = SceneState(state.restore, d, waiting, at, state.next_in, state.next_out + n, last)
        return new, Finished(state.next_out, n, delta, ab.float()) if n else None


def _append(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    if b is None:
        return a
    return b if a is None else torch.cat([a, b])
