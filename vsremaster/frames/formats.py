"""Which formats the filter takes and gives, and the colour props it reads and writes."""
from __future__ import annotations

from dataclasses import dataclass

import vapoursynth as vs

#: Frame-prop defaults when a source does not say (documented in README).
DEFAULT_MATRIX = 1          # BT.709
UNSPECIFIED_MATRIX = 2
RGB_MATRIX = 0
#: What the filter composes its colour output in: CIE Lab (D65) converted to sRGB, whose
#: primaries are BT.709's and whose transfer is IEC 61966-2-1 (H.273 code points).
SRGB_PRIMARIES = 1
SRGB_TRANSFER = 13


def stored_keys(props) -> set[str]:
    """The props a frame really holds. R81's FrameProps also answers to `_ColorRange`, the
    deprecated name of `_Range` (0 = full), as an alias with a DeprecationWarning:
    `"_ColorRange" in props` is true whenever `_Range` is set, and deleting it deletes
    `_Range`. Older cores stored `_ColorRange` as a key of its own."""
    return set(props.keys())


def is_full_range(props, family: vs.ColorFamily) -> bool:
    """Range from `_Range` (1 = full, 0 = limited) or, where a core stored it, the
    deprecated `_ColorRange` (0 = full, 1 = limited).

    Default: full for RGB, limited for GRAY/YUV.
    """
    keys = stored_keys(props)
    if "_Range" in keys:
        return int(props["_Range"]) == 1
    if "_ColorRange" in keys:
        return int(props["_ColorRange"]) == 0
    return family == vs.RGB


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
