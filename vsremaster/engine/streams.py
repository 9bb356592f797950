"""One scene through the networks: restoration stream -> per-frame encoders -> decoder stream.

A `SceneStream` takes model-size luminance a piece at a time and gives back finished
frames as model-size results: the restoration's change of L, the colour (ab) and, when
asked, the match confidence of the source-reference attention (model.blocks). Each
part is a stream of its own (model.streaming, model.decoding); the encoders between them
work on each frame alone. With a colour size below the model size (`color_mindim`) the
encoders take the restored L brought down to it, and the decoder's ab and the confidence
are brought back up to model size (model.sizes), so the results keep one shape. Pieces
are pushed in steps of at most `step` frames, which bounds the memory a push needs; the
bits do not depend on the steps.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..model import RefEncoding, to_colour_size, to_model_size
from ..references.fallback import NEUTRAL_AB
from ..model.decoding import WINDOW_RADIUS, DecoderStream
from ..model.streaming import ChainState, RestorationStream, StreamState, per_frame
from .models import Models


@dataclass(frozen=True)
class Finished:
    """Model-size results of frames `start` .. `start + len`: `delta` [n, 1, h, w]
    (restored minus input L; None without restoration) and `ab` [n, 2, h, w] in [0, 1]
    (None without colorization), float32 on the models' device; `confidence`
    [n, 1, h/8, w/8] in [0, 1] (None unless the stream computes it)."""

    start: int
    length: int
    delta: torch.Tensor | None
    ab: torch.Tensor | None
    confidence: torch.Tensor | None = None

    @property
    def tensors(self) -> tuple:
        return self.delta, self.ab, self.confidence

    def part(self, start: int, stop: int) -> "Finished":
        a, b = start - self.start, stop - self.start
        return Finished(start, stop - start, *(None if t is None else t[a:b]
                                               for t in self.tensors))

    def neutral(self, size: tuple[int, int], device, confidence: bool = False) -> "Finished":
        """The same frames with neutral colour (a* = b* = 0) as their ab, at model size;
        with `confidence`, a confidence of 0 (nothing was matched)."""
        ab = torch.full((self.length, 2, *size), NEUTRAL_AB, device=device)
        conf = torch.zeros(self.length, 1, size[0] // 8, size[1] // 8, device=device) \
            if confidence else None
        return Finished(self.start, self.length, self.delta, ab, conf)

    def own(self) -> "Finished":
        """A copy holding only its own frames (a slice would keep the whole push alive)."""
        return Finished(self.start, self.length, *(None if t is None else t.clone()
                                                   for t in self.tensors))

    @staticmethod
    def join(parts: list["Finished"]) -> "Finished | None":
        if not parts:
            return None
        cat = lambda ts: None if ts[0] is None else torch.cat(ts)        # noqa: E731
        return Finished(parts[0].start, sum(p.length for p in parts),
                        *(cat(ts) for ts in zip(*(p.tensors for p in parts))))


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
    waiting_conf: torch.Tensor | None = None     # their confidences (from waiting_at too)

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


def restoration_form(models: Models, batch: int) -> tuple[str, int]:
    """How the restoration's 3x3x3 convolutions stream on `models`' device and dtype:
    (form, frames per call) (model.streaming.CONV_FORMS).

    Each is the fastest form measured on that device and dtype (benchmarks/conv_forms.py;
    RESULTS.md "The restoration as Conv3d calls on a CPU", "Winograd on the CPU in
    float32", "Half precision on the CPU"): on a CPU in float32 channels-last Conv3d
    calls of `batch` frames, the wide layers by Winograd; in bfloat16 Conv3d calls of one
    frame; elsewhere the taps (Conv3d on cuDNN is not yet checked for fixed bits).
    """
    if models.device.type != "cpu":
        return "taps", batch
    if models.dtype == torch.bfloat16:
        return "frame", 1
    return ("winograd-frame" if "restoration" in models.winograd else "frame"), batch


def decoder_form(models: Models) -> str:
    """How the decoder's 3x3x3 convolutions stream, the fastest measured form each
    (benchmarks/conv_forms.py; RESULTS.md "Winograd on the CPU in float32", "OpenMP
    teams ended between jobs"): on a CPU in float32 "winograd" (wide layers by
    Winograd, the rest taps); on a CPU in bfloat16 "frame" (Conv3d calls of the engine's
    batch); elsewhere the taps, which beat "frame" there."""
    if "decoder" in models.winograd:
        return "winograd"
    return "frame" if models.device.type == "cpu" and models.dtype == torch.bfloat16 else "taps"


class SceneStream:
    """The networks a scene goes through, as one stream (see the module docstring)."""

    def __init__(self, models: Models, *, restore: bool, colorize: bool, context: str = "frame",
                 batch: int = 1, window: int = WINDOW_RADIUS, chunk_of=None,
                 confidence: bool = False, sizes: tuple | None = None):
        """batch: frames per call of every per-frame computation (fixed: the bits then do
        not depend on which frames are computed together); window: frames each side a
        self attention sees; chunk_of: with context="chunk", t -> the chunk holding t;
        confidence: also finish each frame's match confidence (needs colorize); sizes:
        (model size, colour size), each (h, w), when the colorization runs smaller (None
        or equal sizes: nothing is resized, so the bits are those without color_mindim)."""
        self.models, self.batch = models, batch
        self.sizes = sizes if colorize and sizes and tuple(sizes[0]) != tuple(sizes[1]) \
            else None
        self.confidence = confidence and colorize
        form, per_call = restoration_form(models, batch)
        self.restoration = RestorationStream(models.restore, per_call, form) \
            if restore else None
        self.decoder = DecoderStream(models.colorize, context, batch, window, chunk_of,
                                     decoder_form(models)) if colorize else None
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
        it finished, from `state.next_out` on.

        With `last`, the streams' flush (the frames each still holds back: 13 in the
        restoration, more in the decoder) is a step of its own after the new frames:
        flushed together with the last step they made the scene's end the render's
        memory peak (RESULTS.md, "The streaming engine").
        """
        n = 0 if l is None else len(l)
        pieces = [l[i:i + step] for i in range(0, n, step)] + ([None] if last else [])
        done, held = [], []
        for k, piece in enumerate(pieces):
            end = piece is None
            r, restored, delta = self._restore(state.restore, piece, end)
            feats = None if restored is None or self.decoder is None else \
                self._encode(restored, refs)
            conf = None
            if feats is not None and self.confidence:
                feats, conf = feats[:2], feats[2]
            state = SceneState(r, state.decode, _append(state.waiting, delta), state.waiting_at,
                               state.next_in + (0 if end else len(piece)), state.next_out,
                               False, _append(state.waiting_conf, conf))
            if self.decoder is None:
                state, fin = self._finish(state, restored, end)
            else:
                held.append(feats)
                if self.whole_pieces and k + 1 < len(pieces):
                    continue           # the decoder takes the whole push at once
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
        net, conf, sizes = self.models.colorize, self.confidence, self.sizes
        if sizes is None:
            return per_frame(lambda f: net.encode_frame_batch(f, refs, conf), restored,
                             self.batch)
        (h, w), colour = sizes

        def encode(f):          # inside the fixed batch: a frame's bits never see others
            out = net.encode_frame_batch(to_colour_size(f, colour), refs, conf)
            return out[:2] + (to_model_size(out[2], (h // 8, w // 8)),) if conf else out
        return per_frame(encode, restored, self.batch)

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
        if n and self.sizes is not None:
            ab = per_frame(lambda f: to_model_size(f, self.sizes[0]), ab.float(), self.batch)
        # what waits from waiting_at on: frames before the decoder's first output (a cold
        # start) get none, the next n go out with their ab
        early = max(0, state.decode.next_out - state.waiting_at)
        delta, waiting = _take(state.waiting, early, n)
        conf, waiting_conf = _take(state.waiting_conf, early, n)
        at = state.waiting_at + early + n \
            if state.waiting is not None or self.restoration is None else state.waiting_at
        new = SceneState(state.restore, d, waiting, at, state.next_in, state.next_out + n, last,
                         waiting_conf)
        return new, Finished(state.next_out, n, delta, ab.float(), conf) if n else None


def _take(waiting: torch.Tensor | None, skip: int, n: int):
    """(the n frames after the first `skip`, the rest or None) of a waiting tensor."""
    if waiting is None:
        return None, None
    rest = waiting[skip + n:]
    return waiting[skip:skip + n], rest.clone() if len(rest) else None


def _append(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    if b is None:
        return a
    return b if a is None else torch.cat([a, b])
