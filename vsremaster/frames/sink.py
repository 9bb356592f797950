"""VapourSynth frames out: writing results into frames and the clip's final format."""
from __future__ import annotations

import numpy as np
import vapoursynth as vs

from .formats import DEFAULT_MATRIX, ColorProps, output_props, stored_keys


def write_planes(frame: vs.VideoFrame, data: np.ndarray) -> None:
    """Copy float32 [P, H, W] into a writable float frame's planes."""
    for p in range(frame.format.num_planes):
        np.copyto(np.asarray(frame[p]), data[p])


def set_props(frame: vs.VideoFrame, source_props, extra: dict) -> None:
    """Copy the source frame's props, describe the float frame (`output_props`: full
    range; composed in Lab to sRGB when it is RGB), add `extra`."""
    props = frame.props
    for key in source_props.keys():
        props[key] = source_props[key]
    if "_ColorRange" in stored_keys(props):     # an older core's own key; `_Range` says it
        del props["_ColorRange"]
    own = output_props(frame.format, DEFAULT_MATRIX, True, frame.format.color_family == vs.RGB)
    for key, value in {**own, **extra}.items():
        props[key] = value


def to_output(work: vs.VideoNode, source: vs.VideoNode, out_fmt: vs.VideoFormat,
              colour: ColorProps) -> vs.VideoNode:
    """The filter's float result (RGBS, or GRAYS luma) in the output format, its colour
    props (`output_props`) saying what the conversion made."""
    out = _convert(work, source, out_fmt, colour)
    composed = work.format.color_family == vs.RGB
    return vs.core.std.SetFrameProps(out, **output_props(out_fmt, colour.matrix,
                                                         colour.full_range, composed))


def _convert(work: vs.VideoNode, source: vs.VideoNode, out_fmt: vs.VideoFormat,
             colour: ColorProps) -> vs.VideoNode:
    """Convert the filter's float result (RGBS, or GRAYS luma) to the output format."""
    core = vs.core
    rng = {"range_s": "full" if colour.full_range else "limited"}
    if work.format.color_family == vs.RGB:
        if out_fmt.color_family == vs.YUV:
            return core.resize.Bicubic(work, format=out_fmt.id, matrix=colour.matrix, **rng)
        return core.resize.Point(work, format=out_fmt.id, **rng)
    luma_fmt = out_fmt.replace(color_family=vs.GRAY, subsampling_w=0, subsampling_h=0)
    luma = core.resize.Point(work, format=luma_fmt.id, **rng)
    if out_fmt.color_family == vs.GRAY:
        return luma
    return core.std.ShufflePlanes([luma, source, source], [0, 1, 2], vs.YUV)
