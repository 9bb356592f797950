"""Scenes without references: weights that colour worse than grey keep them grey and say so."""
from __future__ import annotations

import numpy as np
import pytest
import vapoursynth as vs

import vsremaster
from clips import from_arrays, moving_pattern, planes, scene_props
from conftest import ROOT
from vsremaster.references import fallback
from vsremaster.remaster import build

core = vs.core
H, W = 48, 64
SMALL = dict(mindim=48, ref_mindim=32, device_index=-1, chunk=4)
BUNDLED = ROOT / "models" / "vsremaster-lite.safetensors"


@pytest.fixture(scope="module")
def flagged_weights(tmp_path_factory, lite_dicts):
    """Seeded lite weights: unmarked, and marked `without_refs=grey` or `colour`."""
    from vsremaster.model.checkpoint import save_checkpoint
    folder = tmp_path_factory.mktemp("fallback")
    return {flag: save_checkpoint(folder / f"{flag}.safetensors", *lite_dicts, name=f"lite-{flag}",
                                  width="0.25", **({"without_refs": flag} if flag != "none" else {}))
            for flag in ("none", "grey", "colour")}


def red_ref(tmp_path):
    import cv2
    img = np.zeros((32, 48, 3), np.uint8)
    img[:] = (30, 30, 220)                          # BGR red
    cv2.imwrite(str(tmp_path / "red.png"), img)
    return [tmp_path / "red.png"]


def chroma_spread(f: vs.VideoFrame) -> float:
    return max(float(np.abs(p.astype(np.float64) - 128).max()) for p in planes(f)[1:])


def test_rule():
    assert fallback.keeps_grey("vsremaster-lite-step2500")
    assert not fallback.keeps_grey("vsremaster-lite-step2500", {"without_refs": "colour"})
    assert fallback.keeps_grey("anything", {"without_refs": "grey"})
    assert not fallback.keeps_grey("remasternet.pth.tar", {})


def test_bundled_model_keeps_reference_less_frames_grey_and_says_so(tmp_path):
    grey = moving_pattern(4, H, W, seed=5)
    clip = from_arrays(grey, vs.GRAY8)
    plain = vsremaster.Remaster(clip, weights=str(BUNDLED), **SMALL)
    f = plain.get_frame(1)
    assert f.props["_RemasterModel"] == "vsremaster-lite-step2500"
    assert chroma_spread(f) == 0                      # U = V = 128: grey
    note = f.props[fallback.NOTE_PROP]
    note = note.decode() if isinstance(note, bytes) else note
    assert "no colour references" in note and "vsremaster-lite-step2500" in note
    # the luma is still restored: not the input's
    assert not np.array_equal(planes(f)[0], planes(clip.get_frame(1))[0])
    coloured = vsremaster.Remaster(clip, refs=red_ref(tmp_path), weights=str(BUNDLED), **SMALL)
    g = coloured.get_frame(1)
    assert chroma_spread(g) > 2 and fallback.NOTE_PROP not in g.props


@pytest.mark.parametrize("flag,grey_out", [("none", False), ("colour", False), ("grey", True)])
def test_weights_metadata_decides(flagged_weights, flag, grey_out):
    clip = from_arrays(moving_pattern(4, H, W, seed=6), vs.YUV420P8)
    f = vsremaster.Remaster(clip, weights=flagged_weights[flag], **SMALL).get_frame(2)
    assert (chroma_spread(f) == 0) == grey_out
    assert (fallback.NOTE_PROP in f.props) == grey_out


def test_only_the_scenes_without_a_reference_stay_grey(flagged_weights):
    """A synchronised refs clip whose frame at the second scene's start is blank."""
    grey = moving_pattern(12, H, W, seed=7)
    clip = from_arrays(grey, vs.GRAY8, per_frame_props=scene_props([6]))
    colours = np.zeros((12, 3, 32, 40), np.float32)
    colours[0, 0], colours[0, 2] = 0.9, 0.2           # frame 0: a red reference; frame 6 blank
    refs = from_arrays(colours, vs.RGB24)
    pipe = build(clip, refs=refs, weights=flagged_weights["grey"], **SMALL)
    assert pipe.ref_sets() == [(0,), ()]
    second = pipe.clip.get_frame(8)
    assert chroma_spread(second) == 0 and fallback.NOTE_PROP in second.props
    first = pipe.clip.get_frame(2)
    assert chroma_spread(first) > 0 and fallback.NOTE_PROP not in first.props
    # the grey scene ran no colorization: only restoration (lag 13) pushed its frames
    assert pipe.engine.grey_stream.lag == 13 and pipe.engine.runs["refs"] == 1


def test_restoration_only_has_no_note(flagged_weights):
    clip = from_arrays(moving_pattern(4, H, W, seed=8), vs.GRAY8)
    f = vsremaster.Remaster(clip, weights=flagged_weights["grey"], colorize=False,
                            **SMALL).get_frame(0)
    assert fallback.NOTE_PROP not in f.props
