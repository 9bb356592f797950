"""Output frames describe their colour: `_Matrix`, `_Primaries`, `_Transfer`, `_Range`.

The output is composed in CIE Lab and converted to sRGB (BT.709 primaries, IEC 61966-2-1
transfer), then to YUV with the matrix and range the filter read from its input.
"""
from __future__ import annotations

import numpy as np
import pytest
import vapoursynth as vs

import vsremaster
from clips import from_arrays, moving_pattern, planes
from vsremaster.finish.output import SRGB_PRIMARIES, SRGB_TRANSFER, output_props
from vsremaster.frames.formats import stored_keys

core = vs.core
H, W = 48, 64
# float32: the three encodings differ in their last bits, which bfloat16 would magnify
SMALL = dict(mindim=48, ref_mindim=32, device_index=-1, chunk=4, fp16=False)


@pytest.fixture(scope="module")
def grey():
    return moving_pattern(4, H, W, seed=3)


def yuv444p16(grey: np.ndarray, matrix: int, full: bool) -> vs.VideoNode:
    """A YUV444P16 clip whose luma is `grey` in the given range, neutral chroma."""
    y = core.resize.Point(from_arrays(grey, vs.GRAYS), format=vs.GRAY16,
                          range_s="full" if full else "limited")
    uv = core.std.BlankClip(y, format=vs.YUV444P16, color=[0, 32768, 32768])
    yuv = core.std.ShufflePlanes([y, uv, uv], [0, 1, 2], vs.YUV)
    return core.std.SetFrameProps(yuv, _Matrix=matrix, _Range=int(full))


def tags(f: vs.VideoFrame) -> dict:
    return {k: int(f.props[k]) for k in ("_Matrix", "_Primaries", "_Transfer", "_Range")
            if k in f.props}


def test_output_props_rule():
    yuv, rgb, gray = (core.get_video_format(f) for f in (vs.YUV420P8, vs.RGB24, vs.GRAY8))
    assert output_props(yuv, 5, False, True) == {"_Matrix": 5, "_Range": 0, "_Primaries": 1,
                                                 "_Transfer": 13}
    assert output_props(yuv, 1, True, True)["_Range"] == 1
    assert output_props(rgb, 5, True, True) == {"_Matrix": 0, "_Range": 1, "_Primaries": 1,
                                                "_Transfer": 13}
    # not composed (restoration only): the input's primaries and transfer still hold
    assert output_props(yuv, 6, False, False) == {"_Matrix": 6, "_Range": 0}
    assert output_props(gray, 1, True, False) == {"_Range": 1}
    assert (SRGB_PRIMARIES, SRGB_TRANSFER) == (1, 13)


def test_this_vapoursynth_says_range_with_range_prop():
    """What the rule is built on: this core stores `_Range` (1 = full); `_ColorRange`
    (0 = full) is only a deprecated alias of it, which sets and deletes `_Range`."""
    clip = core.std.BlankClip(format=vs.YUV444P8, width=8, height=8, length=1, color=[235, 128, 128])
    f = core.resize.Point(core.std.SetFrameProps(clip, _Matrix=1), format=vs.YUV444P8,
                          range_s="full").get_frame(0)
    assert int(f.props["_Range"]) == int(vs.RANGE_FULL) == 1
    assert stored_keys(f.props) >= {"_Range"} and "_ColorRange" not in stored_keys(f.props)
    copy = f.copy()
    with pytest.warns(DeprecationWarning):
        assert "_ColorRange" in copy.props                  # an alias, not a key
        del copy.props["_ColorRange"]                       # ... that deletes `_Range`
        legacy = core.std.SetFrameProps(clip, _Matrix=1, _ColorRange=0)       # full
    assert "_Range" not in stored_keys(copy.props)
    got = legacy.get_frame(0)
    assert int(got.props["_Range"]) == 1 and "_ColorRange" not in stored_keys(got.props)
    assert np.asarray(core.resize.Point(legacy, format=vs.RGB24).get_frame(0)[0])[0, 0] == 235


@pytest.mark.parametrize("fmt,matrix,full", [
    (vs.GRAY8, 1, False), (vs.YUV420P8, 1, False), (vs.YUV420P10, 6, False),
    (vs.RGB24, 0, True)], ids=["gray8", "yuv420p8", "yuv420p10-bt601", "rgb24"])
def test_colorized_frames_are_tagged_srgb(lite_weights, grey, fmt, matrix, full):
    clip = from_arrays(grey, fmt)
    if fmt == vs.YUV420P10:
        clip = core.std.SetFrameProps(clip, _Matrix=6)
    clip = core.std.SetFrameProps(clip, _Primaries=5, _Transfer=4)      # what the input said
    out = vsremaster.Remaster(clip, weights=lite_weights, **SMALL)
    assert tags(out.get_frame(1)) == {"_Matrix": matrix, "_Primaries": 1, "_Transfer": 13,
                                      "_Range": int(full)}
    assert "_ColorRange" not in stored_keys(out.get_frame(1).props)


def test_legacy_color_range_is_read_and_not_passed_on(lite_weights, grey):
    clip = core.std.RemoveFrameProps(yuv444p16(grey, 1, True), "_Range")
    with pytest.warns(DeprecationWarning):
        clip = core.std.SetFrameProps(clip, _ColorRange=0)                # full, old name
    f = vsremaster.Remaster(clip, weights=lite_weights, **SMALL).get_frame(0)
    assert int(f.props["_Range"]) == 1 and "_ColorRange" not in stored_keys(f.props)


def test_restoration_only_keeps_the_inputs_primaries_and_transfer(lite_weights, grey):
    clip = core.std.SetFrameProps(from_arrays(grey, vs.YUV420P8), _Primaries=5, _Transfer=4)
    out = vsremaster.Remaster(clip, weights=lite_weights, colorize=False, **SMALL)
    assert tags(out.get_frame(0)) == {"_Matrix": 1, "_Primaries": 5, "_Transfer": 4, "_Range": 0}


def _as_rgb(clip: vs.VideoNode, **props) -> np.ndarray:
    """Frame 1 as float RGB, converted as its props say (after setting `props`: the
    resizer lets frame props win over its *_in arguments)."""
    if props:
        clip = core.std.SetFrameProps(clip, **props)
    return np.stack(planes(core.resize.Point(clip, format=vs.RGBS).get_frame(1)))


def test_tags_describe_the_content(lite_weights, grey):
    """One picture with three encodings of its luma: decoded by their own tags, the three
    outputs are the same colours; decoded with another matrix, they are not. (tone="lab":
    with "keep" the output's luma is the input's code value whatever the matrix, so the
    colours of the three differ by how each matrix weighs the new chroma into luma.)"""
    outs = {key: vsremaster.Remaster(yuv444p16(grey, *key), weights=lite_weights,
                                     tone="lab", **SMALL)
            for key in [(1, False), (5, False), (1, True)]}
    bt709 = _as_rgb(outs[1, False])
    assert float(np.std(bt709[0] - bt709[2])) > 0.01            # it has colour to describe
    for key in [(5, False), (1, True)]:
        assert tags(outs[key].get_frame(1))["_Matrix"] == key[0]
        assert np.abs(_as_rgb(outs[key]) - bt709).max() < 2e-3, key
    # the tags matter: bt470bg content read as BT.709 gives other colours
    assert np.abs(_as_rgb(outs[5, False], _Matrix=1) - bt709).max() > 1e-2
    assert not np.array_equal(planes(outs[1, True].get_frame(1))[0],
                              planes(outs[1, False].get_frame(1))[0])
