"""Frames out: the output format, the colour props frames carry, and writing them.

The colour is composed in CIE Lab and converted to sRGB, so composed frames say BT.709
primaries and the sRGB transfer (H.273 codes), with the matrix and range they were
converted with.
"""
from __future__ import annotations

import numpy as np
import vapoursynth as vs

from ..color.ycbcr import supported_matrix
# SRGB_*: what the filter composes its colour output in (CIE Lab converted to sRGB)
from ..frames.formats import SRGB_PRIMARIES, SRGB_TRANSFER, is_full_range, matrix_of, \
    stored_keys

RGB_MATRIX = 0


#: Props the filter adds to every frame (copied from the results to the output).
OWN_PROPS = ["_RemasterScene", "_RemasterRefs", "_RemasterModel", "_RemasterNote",
             "_RemasterConfidence"]


def output_format(fmt: vs.VideoFormat, colorize: bool) -> vs.VideoFormat:
    """GRAY/YUV in -> YUV444 of the same sample type (GRAY when not colorizing a GRAY
    clip, the input's YUV format when not colorizing YUV); RGB in -> the same RGB."""
    if fmt.color_family == vs.RGB:
        return fmt
    if not colorize:
        return fmt
    return vs.core.query_video_format(vs.YUV, fmt.sample_type, fmt.bits_per_sample, 0, 0)


def colour_of(props, family: vs.ColorFamily) -> tuple[int, bool]:
    """(matrix, full range) of a source frame, as the output keeps them. The frames come
    from `source.checked`, which has checked all their colour props (PropError here only
    for a `_Matrix`/`_Range` of a frame that did not pass there)."""
    matrix = supported_matrix(matrix_of(props)) if family == vs.YUV else 1
    return matrix, is_full_range(props, family)


def output_props(out_format: vs.VideoFormat, matrix: int, full_range: bool,
                 composed: bool) -> dict:
    """The colour props of a frame the filter outputs in `out_format`.

    matrix, full_range: what the filter converted YUV output with. composed: whether the
    frame was composed in Lab and converted to sRGB (colorizing, or RGB input); if not
    (a luma-only restoration), the input's primaries and transfer still describe it and
    are left as they are. GRAY output keeps its `_Matrix` as well.
    """
    props = {"_Range": int(vs.RANGE_FULL if full_range else vs.RANGE_LIMITED)}
    if out_format.color_family == vs.RGB:
        props["_Matrix"] = RGB_MATRIX
    elif out_format.color_family == vs.YUV:
        props["_Matrix"] = int(matrix)
    if composed:
        props.update(_Primaries=SRGB_PRIMARIES, _Transfer=SRGB_TRANSFER)
    return props


def write_planes(frame: vs.VideoFrame, data) -> None:
    """Copy [P, H, W] samples (any array) into a writable frame's planes."""
    for p in range(frame.format.num_planes):
        np.copyto(np.asarray(frame[p]), data[p], casting="unsafe")


def set_props(frame: vs.VideoFrame, source_props, extra: dict) -> None:
    """Copy the source frame's props, then add/override `extra`."""
    props = frame.props
    for key in source_props.keys():
        props[key] = source_props[key]
    if "_Range" in extra and "_ColorRange" in stored_keys(props):
        del props["_ColorRange"]        # an older core's own key; `_Range` says it now
    for key, value in extra.items():
        props[key] = value
