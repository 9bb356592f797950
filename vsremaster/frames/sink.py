"""VapourSynth frames out: writing results into frames and the clip's final format."""
from __future__ import annotations

import numpy as np
import vapoursynth as vs

from .formats import ColorProps, mark_full_range


def write_planes(frame: vs.VideoFrame, data: np.ndarray) -> None:
    """Copy float32 [P, H, W] into a writable float frame's planes."""
    for p in range(frame.format.num_planes):
        np.copyto(np.asarray(frame[p]), data[p])


def set_props(frame: vs.VideoFrame, source_props, extra: dict) -> None:
    """Copy the source frame's props, mark the float frame as full-range, add `extra`."""
    props = frame.props
    for key in source_props.keys():
        props[key] = source_props[key]
    if frame.format.color_family == vs.RGB:
        props["_Matrix"] = 0
    mark_full_range(props)
    for key, value in extra.items():
        props[key] = value


def to_output(work: vs.VideoNode, source: vs.VideoNode, out_fmt: vs.VideoFormat,
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
