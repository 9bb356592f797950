"""The output clips: each frame asks the engine for its cell and is finished.

`ColourFrames.eval` runs inside VapourSynth's frame requests (FrameEval): it plans the
frame's cell and hands VapourSynth the model-size frames the cell needs, so VapourSynth
itself fetches them (no get_frame while rendering); `frame` then gets the cell's results
and writes the output frame, either model-size results for the graph finish or a frame
composed on the device.
"""
from __future__ import annotations

import functools

import numpy as np
import vapoursynth as vs

from ..engine.runner import Engine, Request
from ..frames.source import frame_array, frame_at
from ..planning.scenes import ScanError
from ..references import fallback
from .device import DeviceComposer
from .graph import graph_finish, luma_only
from .output import output_format, set_props, write_planes


def colour_clip(parts, clip, colorize: bool, device, finish, confidence: bool, tone: str,
                saturation: float = 1.0):
    """Remaster's output clip over shared parts (`remaster._Parts`); saturation scales
    the model's a*b* (`compose.saturated`)."""
    engine, small, models = parts.engine, parts.small, parts.models
    finish = finish or ("device" if device.type == "cuda" else "graph")
    out_fmt = output_format(clip.format, colorize)
    if finish == "graph":
        planes = vs.RGBS if colorize else vs.GRAYS
        blank = vs.core.std.BlankClip(small, format=planes, keep=True)
        render = ColourFrames(engine, small, blank, models.name, None)
        out = graph_finish(vs.core.std.FrameEval(blank, render.eval), clip, out_fmt, colorize,
                           tone, saturation)
    else:
        composed = out_fmt if colorize or clip.format.color_family == vs.RGB else \
            out_fmt.replace(color_family=vs.GRAY, subsampling_w=0, subsampling_h=0)
        blank = vs.core.std.BlankClip(clip, format=composed.id, keep=True)
        render = ColourFrames(engine, small, blank, models.name,
                         (clip, DeviceComposer(device, clip.format, composed, tone,
                                               saturation)))
        out = vs.core.std.FrameEval(blank, render.eval)
        if composed.color_family == vs.GRAY:
            out = luma_only(out, clip)
    render.parts, render.confidence_prop = parts, confidence
    return out


def confidence_clip(parts, clip) -> vs.VideoNode:
    """Confidence's output: the map at 1/8 of the model size, upscaled to the clip's size."""
    small = parts.small
    blank = vs.core.std.BlankClip(small, format=vs.GRAYS, width=small.width // 8,
                                  height=small.height // 8, keep=True)
    render = ConfidenceFrames(parts.engine, small, blank, parts.models.name, None)
    render.parts = parts
    out = vs.core.resize.Bilinear(vs.core.std.FrameEval(blank, render.eval),
                                  clip.width, clip.height)
    return vs.core.std.CopyFrameProps(out, clip, props=SOURCE_TIMING_PROPS)


#: Source frame props the confidence clip keeps (its colour props would not describe it).
SOURCE_TIMING_PROPS = ["_DurationNum", "_DurationDen", "_AbsoluteTime",
                       "_SceneChangePrev", "_SceneChangeNext"]


def mean_confidence(done, j: int) -> float:
    """The mean match confidence of frame j of a finished cell."""
    if done.ready is not None:
        done.ready.synchronize()
    return float(done.finished.confidence[j].double().mean())


class ColourFrames:
    """The per-frame glue between VapourSynth and the engine.

    Graph finishing: each frame is the model-size result of its cell (planes delta L,
    a, b). Device finishing: the source frame comes along and the frame is composed.
    """

    #: add `_RemasterConfidence` (the engine then finishes confidences)
    confidence_prop = False

    def __init__(self, engine: Engine, small, blank, model_name: str, device_finish):
        self.engine, self.small, self.blank = engine, small, blank
        self.model_name = model_name
        self.source, self.compose = device_finish or (None, None)

    def eval(self, n: int) -> vs.VideoNode:
        try:
            req = self.engine.request(n)
        except ScanError as e:
            raise vs.Error(f"Remaster: clip {e}") from None
        except vs.Error:
            raise
        except Exception as e:       # noqa: BLE001 - every failure reaches the user named
            raise vs.Error(f"Remaster: frame {n}: {e}") from None
        clips = [self.blank] + ([self.source] if self.source is not None else []) \
            + [frame_at(self.small, i, n) for i in req.raw]
        return vs.core.std.ModifyFrame(self.blank, clips, functools.partial(self.frame, req=req))

    def frame(self, n: int, f: list[vs.VideoFrame], req: Request) -> vs.VideoFrame:
        try:
            return self._frame(n, f, req)
        except vs.Error:
            raise
        except Exception as e:       # noqa: BLE001 - every failure reaches the user named
            raise vs.Error(f"Remaster: frame {n}: {e}") from e

    def _result(self, n: int, f, req: Request):
        """(the frames as a list, the finished cell, n's index in it); the raw frames
        follow the blank (and the source frame when composing on the device)."""
        f = f if isinstance(f, list) else [f]          # ModifyFrame passes one clip's alone
        first = 1 if self.source is None else 2
        raw = {i: frame_array(fr) for i, fr in zip(req.raw, f[first:])}
        done = self.engine.result(req, raw)
        return f, done, n - done.cell.start

    def _props(self, done) -> dict:
        """The props every output frame of a cell gets."""
        extra = {"_RemasterScene": done.cell.scene_start, "_RemasterModel": self.model_name}
        if done.refs:
            extra["_RemasterRefs"] = list(done.refs)
        return extra

    def _frame(self, n: int, f, req: Request) -> vs.VideoFrame:
        f, done, j = self._result(n, f, req)
        result = f[0].copy()
        extra = self._props(done)
        if self.confidence_prop:
            extra["_RemasterConfidence"] = mean_confidence(done, j)
        if done.note:
            extra[fallback.NOTE_PROP] = done.note
        if self.source is None:
            fin = done.finished
            planes = [fin.delta[j] if fin.delta is not None else None]
            if fin.ab is not None:
                planes += list(fin.ab[j])
            write_planes(result, [np.zeros(result[0].shape, np.float32) if p is None
                                  else p.reshape(result[0].shape).cpu().numpy() for p in planes])
            set_props(result, {}, extra)
        else:
            extra.update(self.compose(f[1], done, j, result))
            set_props(result, f[1].props, extra)
        return result


class ConfidenceFrames(ColourFrames):
    """The per-frame glue of `Confidence`: each frame is its cell's confidence map."""

    def _frame(self, n: int, f, req: Request) -> vs.VideoFrame:
        f, done, j = self._result(n, f, req)
        result = f[0].copy()
        write_planes(result, done.finished.confidence[j].cpu().numpy())
        set_props(result, {}, {**self._props(done),
                               "_RemasterConfidence": mean_confidence(done, j)})
        return result
