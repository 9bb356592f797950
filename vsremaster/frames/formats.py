"""Which formats the filter takes and gives, and the colour props it reads and writes.

Frame props come from anywhere (a source filter, a user's SetFrameProps), so every prop
the filter reads goes through a reader here that checks its type and range and raises a
PropError naming the prop and what is allowed; the caller adds which clip and frame.
"""
from __future__ import annotations

import math
from numbers import Integral, Real

import vapoursynth as vs

#: Frame-prop defaults when a source does not say (documented in README).
DEFAULT_MATRIX = 1          # BT.709
UNSPECIFIED_MATRIX = 2
#: The codes VapourSynth's resizer converts with (others make it fail, or need more
#: props than the filter passes: 10/12/13/14 are refused for YUV).
YUV_MATRICES = {0: "RGB (read as BT.709)", 1: "BT.709", 2: "unspecified (read as BT.709)",
                4: "FCC", 5: "BT.470BG", 6: "SMPTE 170M", 7: "SMPTE 240M", 8: "YCgCo",
                9: "BT.2020 NCL"}
RGB_MATRICES = {0: "RGB", 2: "unspecified"}
TRANSFERS = frozenset({1, 2, *range(4, 19)})
PRIMARIES = frozenset({1, 2, *range(4, 13), 22})
#: The model's colour is CIE Lab of sRGB: BT.709 primaries and the IEC 61966-2-1
#: transfer (H.273 code points); linear light is transfer 8.
SRGB_PRIMARIES = 1
SRGB_TRANSFER = 13
TRANSFER_LINEAR = 8


class PropError(ValueError):
    """A frame prop of the wrong type or out of range; the message names it."""


def int_prop(props, key: str) -> int | None:
    """An integer prop, None when absent; PropError for any other type (a float, NaN, a
    string, bytes, an array of several values, a frame)."""
    value = props.get(key)
    if value is None or (isinstance(value, Integral) and not isinstance(value, bool)):
        return value
    if isinstance(value, list):
        # VapourSynth returns a one-element array as a plain value: this is several
        raise PropError(f"{key} is an array of {len(value)} values; allowed: one integer")
    raise PropError(f"{key} is a {type(value).__name__} ({repr(value)[:40]}); allowed: an "
                    "integer")


def _code(props, key: str, allowed, words: str) -> int | None:
    value = int_prop(props, key)
    if value is not None and value not in allowed:
        raise PropError(f"{key} is {value}; allowed: {words}")
    return value
def stored_keys(props) -> set[str]:
    """The props a frame really holds. R81's FrameProps also answers to `_ColorRange`, the
    deprecated name of `_Range` (0 = full), as an alias with a DeprecationWarning:
    `"_ColorRange" in props` is true whenever `_Range` is set, and deleting it deletes
    `_Range`. Older cores stored `_ColorRange` as a key of its own."""
    return set(props.keys())


def is_full_range(props, family: vs.ColorFamily) -> bool:
    """Range from `_Range` (1 = full, 0 = limited) or, where a core stored it, the
    deprecated `_ColorRange` (0 = full, 1 = limited).

    Default: full for RGB, limited for GRAY/YUV. PropError for other types or values.
    """
    keys = stored_keys(props)
    if "_Range" in keys:
        return _code(props, "_Range", (0, 1), "0 (limited) or 1 (full)") == 1
    if "_ColorRange" in keys:
        return _code(props, "_ColorRange", (0, 1), "0 (full) or 1 (limited)") == 0
    return family == vs.RGB


def scene_change(props, key: str) -> bool:
    """`_SceneChangePrev`/`_SceneChangeNext` as a bool (absent: False).

    Allowed: an integer (non-zero marks a cut, as misc.SCDetect writes 0 or 1); a float
    0.0 or 1.0 is read the same. NaN, strings, bytes and arrays are PropErrors.
    """
    value = props.get(key)
    if isinstance(value, Real) and not isinstance(value, (bool, Integral)):
        if math.isnan(value) or value not in (0.0, 1.0):
            raise PropError(f"{key} is the float {value!r}; allowed: 0 or 1")
        return value == 1.0
    value = int_prop(props, key)
    return bool(value)


def check_passed_through(props) -> None:
    """PropError when `_Transfer` or `_Primaries` (kept on the output, read by the resizer
    on the way) is not a code the resizer knows."""
    _code(props, "_Transfer", TRANSFERS, f"one of {_ranges(TRANSFERS)} (ITU-T H.273)")
    _code(props, "_Primaries", PRIMARIES, f"one of {_ranges(PRIMARIES)} (ITU-T H.273)")


def check_color_props(props, family: vs.ColorFamily) -> None:
    """PropError for any colour prop of a frame of `family` the filter or the resizer
    cannot use (`_Matrix`, `_Range`/`_ColorRange`, `_Transfer`, `_Primaries`)."""
    if family == vs.YUV:
        matrix_of(props)
    elif family == vs.RGB:
        _code(props, "_Matrix", RGB_MATRICES, "0 (RGB) or 2 (unspecified) on an RGB frame")
    is_full_range(props, family)
    check_passed_through(props)


def _ranges(codes) -> str:
    codes, parts, start = sorted(codes), [], None
    for i, c in enumerate(codes):
        start = c if start is None else start
        if i + 1 == len(codes) or codes[i + 1] != c + 1:
            parts.append(str(c) if c == start else f"{start}-{c}")
            start = None
    return ", ".join(parts)


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


def matrix_of(props) -> int:
    """A YUV frame's `_Matrix`, with BT.709 where it is unset, unspecified or RGB (0).

    PropError for other types and for codes the filter cannot convert with.
    """
    words = ", ".join(f"{k} ({v})" for k, v in YUV_MATRICES.items())
    matrix = _code(props, "_Matrix", YUV_MATRICES, words)
    return DEFAULT_MATRIX if matrix in (None, UNSPECIFIED_MATRIX, 0) else matrix


def _default_matrix(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
    if f.format.color_family != vs.YUV:
        return f
    try:
        if matrix_of(f.props) == f.props.get("_Matrix"):
            return f
    except PropError as e:
        raise vs.Error(f"frame {n}: {e}") from None
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


def srgb_linear(clip: vs.VideoNode) -> vs.VideoNode:
    """An RGB clip's linear light (RGBS), its samples read as sRGB (the model's
    convention) whatever `_Transfer`/`_Primaries` say, so a neutral colour gives back
    the same samples."""
    srgb = vs.core.std.SetFrameProps(clip, _Transfer=SRGB_TRANSFER, _Primaries=SRGB_PRIMARIES)
    return vs.core.resize.Point(srgb, format=vs.RGBS, transfer=TRANSFER_LINEAR,
                                primaries=SRGB_PRIMARIES)
