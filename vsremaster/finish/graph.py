"""Finishing on a CPU: full-size output frames built of VapourSynth filters.

The engine hands out model-size results and VapourSynth does the full-size work: zimg's
bilinear upscale, `std.Expr` programs for the composition (`finish.expr`, the same
formulas as `finish.compose`), zimg for the sRGB curve, the YUV matrix, the range and the
sample type. It is many times faster than tensor operations at full size on a CPU.
"""
from __future__ import annotations

import vapoursynth as vs

from ..frames.source import full_size_l
from .expr import RESTORED_L, compose_linear_rgb, lab_of_linear_rgb
from ..frames.formats import SRGB_PRIMARIES, SRGB_TRANSFER, TRANSFER_LINEAR, srgb_linear
from .output import OWN_PROPS, colour_of


def graph_finish(results: vs.VideoNode, source: vs.VideoNode, out: vs.VideoFormat,
                 colorize: bool, tone: str = "keep", saturation: float = 1.0) -> vs.VideoNode:
    """The full-size output from model-size results, built of VapourSynth filters.

    results: model-size frames, planes (delta L, model a, model b) as RGBS, or (delta L)
    as GRAYS without colorization; their `OWN_PROPS` go to the output. The source's
    props are kept; colour props describe the output. tone, saturation: see
    `finish.compose` (saturation scales the model's a*b* only).
    """
    core = vs.core
    up = core.resize.Bilinear(results, source.width, source.height)
    planes = [core.std.ShufflePlanes(up, p, vs.GRAY) for p in range(up.format.num_planes)]
    family = source.format.color_family
    grey = out.replace(color_family=vs.GRAY, subsampling_w=0, subsampling_h=0)
    if family == vs.RGB:
        lab = _lab_planes(source)
        tone = "lab"                              # L from linear light: exact round trip
        if colorize:
            clips, from_model = [lab[0], planes[0], planes[1], planes[2]], True
        else:
            clips, from_model = [lab[0], planes[0], lab[1], lab[2]], False
    elif colorize:
        clips, from_model = [full_size_l(source)] + planes, True
    else:
        l_new = core.std.Expr([full_size_l(source), planes[0]], RESTORED_L, format=vs.GRAYS)
        return _props_from(results, luma_only(_converted(l_new, source, grey, False), source))
    lin = [core.std.Expr(clips, compose_linear_rgb(c, from_model, tone, saturation),
                          format=vs.GRAYS)
           for c in range(3)]
    # the props say what the planes hold (the resizer follows them over `*_in` arguments)
    rgb = core.std.SetFrameProps(core.std.ShufflePlanes(lin, [0, 0, 0], vs.RGB), _Matrix=0,
                                 _Transfer=TRANSFER_LINEAR, _Primaries=SRGB_PRIMARIES)
    composed = _converted(rgb, source, out, linear=True)
    if tone == "keep":                            # the restored luma itself, chroma laid over it
        l_new = core.std.Expr(clips[:2], RESTORED_L, format=vs.GRAYS)
        luma_plane = _converted(l_new, source, grey, False)
        joined = core.std.ShufflePlanes([luma_plane, composed, composed], [0, 1, 2], vs.YUV)
        composed = core.std.CopyFrameProps(joined, composed)       # the colour's props
    return _props_from(results, composed)


def _lab_planes(source: vs.VideoNode) -> list[vs.VideoNode]:
    """Model L, a*, b* (GRAYS) of an RGB source, from its linear light read as sRGB
    (`frames.formats.srgb_linear`)."""
    core = vs.core
    lin = srgb_linear(source)
    planes = [core.std.ShufflePlanes(lin, p, vs.GRAY) for p in range(3)]
    return [core.std.Expr(planes, lab_of_linear_rgb(c), format=vs.GRAYS) for c in range(3)]


def _converted(clip: vs.VideoNode, source: vs.VideoNode, out: vs.VideoFormat,
               linear: bool) -> vs.VideoNode:
    """`clip` (RGBS, linear light when `linear`; or GRAYS luma) in format `out`, with the
    matrix and range of each source frame (one resizer per combination)."""
    core = vs.core
    family = source.format.color_family
    made: dict = {}

    def pick(n: int, f: vs.VideoFrame) -> vs.VideoNode:
        try:
            key = colour_of(f.props, family)
        except ValueError as e:                       # PropError
            raise vs.Error(f"Remaster: frame {n}: {e}") from None
        if key not in made:
            matrix, full = key
            full = full or out.sample_type == vs.FLOAT          # float samples are full range
            args = {"range_s": "full" if full else "limited"}
            if clip.format.color_family == vs.RGB:
                if linear:                     # from linear light (the frames' props)
                    args.update(transfer=SRGB_TRANSFER, primaries=SRGB_PRIMARIES)
                if out.color_family == vs.YUV:
                    args["matrix"] = matrix
            made[key] = core.resize.Point(clip, format=out.id, **args)
        return made[key]

    blank = core.std.BlankClip(clip, format=out.id, width=clip.width, height=clip.height)
    return core.std.FrameEval(blank, pick, prop_src=source)


def _props_from(results: vs.VideoNode, out: vs.VideoNode) -> vs.VideoNode:
    return vs.core.std.CopyFrameProps(out, results, props=OWN_PROPS)


def luma_only(result: vs.VideoNode, source: vs.VideoNode) -> vs.VideoNode:
    """A luma result joined with the source's chroma (YUV input, no colorization)."""
    if source.format.color_family != vs.YUV:
        return result
    return vs.core.std.ShufflePlanes([result, source, source], [0, 1, 2], vs.YUV)
