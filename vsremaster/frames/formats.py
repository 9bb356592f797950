"""Which formats the filter takes and gives, and the colour props it reads and writes."""
from __future__ import annotations

from dataclasses import dataclass

import vapoursynth as vs

#: Frame-prop defaults when a source does not say (documented in README).
DEFAULT_MATRIX = 1          # BT.709
UNSPECIFIED_MATRIX = 2


def is_full_range(props, family: vs.ColorFamily) -> bool:
    """Range from `_Range` (R74+: 1 = full) or legacy `_ColorRange` (0 = full).

    Default: full for RGB, limited for GRAY/YUV.
    """
    if "_Range" in props:
        return int(props["_Range"]) == 1
    if "_ColorRange" in props:
        return int(props["_ColorRange"]) == 0
    return family == vs.RGB


def mark_full_range(props) -> None:
    """Mark a frame as full range (the legacy `_ColorRange` would contradict it: dropped)."""
    props["_Range"] = 1
    if "_ColorRange" in props:
        del props["_ColorRange"]


#: What `check_format` accepts, in words (error messages end with it).
SUPPORTED = "GRAY, YUV or RGB with 8-16 bit integer or 16/32 bit float samples"


def is_variable(fmt: vs.VideoFormat | None) -> bool:
    """Whether a clip's format varies per frame (VapourSynth then reports an UNDEFINED one)."""
    return fmt is None or fmt.id == 0 or fmt.color_family == vs.UNDEFINED


def check_format(fmt: vs.VideoFormat | None) -> str | None:
    """Why `fmt` is not supported, or None when it is (the caller names the argument)."""
    if is_variable(fmt):
        return f"has a variable format (it changes from frame to frame); allowed: a constant {SUPPORTED}"
    if fmt.color_family not in (vs.GRAY, vs.YUV, vs.RGB):
        return f"has color family {fmt.color_family.name}; allowed: {SUPPORTED}"
    if fmt.sample_type == vs.INTEGER and not 8 <= fmt.bits_per_sample <= 16:
        return (f"has {fmt.bits_per_sample}-bit integer samples ({fmt.name}); "
                f"allowed: {SUPPORTED}")
    if fmt.sample_type == vs.FLOAT and fmt.bits_per_sample not in (16, 32):
        return (f"has {fmt.bits_per_sample}-bit float samples ({fmt.name}); "
                f"allowed: {SUPPORTED}")
    return None


def output_format(fmt: vs.VideoFormat, colorize: bool) -> vs.VideoFormat:
    """YUV in -> same; RGB in -> same; GRAY in -> YUV444 at the same depth when colorizing."""
    if fmt.color_family != vs.GRAY or not colorize:
        return fmt
    return vs.core.query_video_format(vs.YUV, fmt.sample_type, fmt.bits_per_sample, 0, 0)


def matrix_of(props) -> int:
    """A YUV frame's `_Matrix`, with BT.709 where it is unset, unspecified or RGB (0)."""
    matrix = int(props.get("_Matrix", UNSPECIFIED_MATRIX))
    return DEFAULT_MATRIX if matrix in (UNSPECIFIED_MATRIX, 0) else matrix


@dataclass(frozen=True)
class ColorProps:
    """Colour description of a source, from its first frame's props (with defaults)."""

    matrix: int
    full_range: bool

    @classmethod
    def of(cls, clip: vs.VideoNode, props) -> "ColorProps":
        family = clip.format.color_family
        matrix = matrix_of(props) if family == vs.YUV else DEFAULT_MATRIX
        return cls(matrix, is_full_range(props, family))


def _default_matrix(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
    if f.format.color_family != vs.YUV or matrix_of(f.props) == f.props.get("_Matrix"):
        return f
    f = f.copy()
    f.props["_Matrix"] = matrix_of(f.props)
    return f


def to_rgb24(clip: vs.VideoNode) -> vs.VideoNode:
    """Any supported clip (even of variable format or size) as RGB24 at its own size.

    YUV frames that do not state their matrix are read as BT.709.
    """
    variable = is_variable(clip.format)
    if not variable and clip.format.color_family == vs.GRAY:
        clip = vs.core.std.ShufflePlanes(clip, [0, 0, 0], vs.RGB)
    elif variable or clip.format.color_family == vs.YUV:
        clip = vs.core.std.ModifyFrame(clip, clip, _default_matrix)
    return vs.core.resize.Bicubic(clip, format=vs.RGB24)
