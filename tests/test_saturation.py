"""`saturation`: the model's a*b* scaled about neutral before the conversion, in both
finishes alike; 1.0 is the model's colour bit for bit; bad values are refused."""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
import vapoursynth as vs

import vsremaster
from vsremaster.finish.compose import saturated
from vsremaster.finish.expr import compose_linear_rgb
from vsremaster.references.fallback import NEUTRAL_AB
from vsremaster.remaster import build
from clips import frame_bytes, from_arrays, moving_pattern
from test_filter import red_and_blue_refs

core = vs.core
H, W = 48, 64
SMALL = dict(mindim=48, ref_mindim=32, device_index=-1)
FINISHES = ("graph", "device")


@pytest.fixture
def grey():
    return moving_pattern(6, H, W, seed=3)


@pytest.fixture
def refs(tmp_path):
    return [str(p) for p in red_and_blue_refs(tmp_path)]


def chroma(clip: vs.VideoNode) -> float:
    """Mean distance of the chroma planes from neutral, in 8-bit levels (YUV444P8)."""
    out = []
    for f in clip.frames():
        for p in (1, 2):
            out.append(np.abs(np.asarray(f[p], np.float64) - 128).mean())
    return float(np.mean(out))


# --- the formula ----------------------------------------------------------------------------

def test_saturated_scales_about_neutral_and_clips_as_the_conversion_does():
    ab = torch.tensor([NEUTRAL_AB, NEUTRAL_AB + 10 / 255, NEUTRAL_AB - 20 / 255, 0.99, 0.01])
    assert saturated(ab, 1.0) is ab                   # no operation at all
    lab = lambda x: x * 255 - 128                     # noqa: E731 - color.lab's decoding
    got = lab(saturated(ab, 1.5))
    torch.testing.assert_close(got, torch.tensor([0.0, 15.0, -30.0, 100.0, -100.0]),
                               atol=1e-4, rtol=0)
    torch.testing.assert_close(lab(saturated(ab, 0.0)), torch.zeros(5), atol=1e-4, rtol=0)


def test_the_cpu_program_is_todays_at_1_and_scales_otherwise():
    for tone in ("keep", "lab"):
        today = compose_linear_rgb(0, True, tone)
        assert compose_linear_rgb(0, True, tone, 1.0) == today
        assert compose_linear_rgb(0, True, tone, 1.3) != today
        assert " 1.3 *" in compose_linear_rgb(0, True, tone, 1.3)
        # an RGB input's own a*b* (no colorization) are never scaled
        assert compose_linear_rgb(0, False, tone, 1.3) == compose_linear_rgb(0, False, tone)


# --- the filter -------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("finish", FINISHES)
def test_saturation_1_is_the_default_bit_for_bit(lite_weights, grey, refs, finish):
    clip = from_arrays(grey, vs.YUV420P8)
    kw = dict(refs=refs, weights=lite_weights, finish=finish, **SMALL)
    default = build(clip, **kw).clip
    same = build(clip, saturation=1.0, **kw).clip
    more = build(clip, saturation=1.3, **kw).clip
    for n in range(clip.num_frames):
        assert frame_bytes(same, n) == frame_bytes(default, n), n
    assert frame_bytes(more, 2) != frame_bytes(default, 2)       # the check can fail


@pytest.mark.slow
@pytest.mark.parametrize("finish", FINISHES)
def test_saturation_scales_the_chroma(lite_weights, grey, refs, finish):
    """Output chroma grows with the factor (a*b* are linear in Cb/Cr near neutral, so
    about 1.3x, less where the conversion clips), and 0 gives neutral grey."""
    clip = from_arrays(grey, vs.GRAY8)
    kw = dict(refs=refs, weights=lite_weights, finish=finish, **SMALL)
    base = chroma(build(clip, **kw).clip)
    assert base > 3, base                    # the seeded model does colour these frames
    ratio = chroma(build(clip, saturation=1.3, **kw).clip) / base
    assert 1.15 <= ratio <= 1.35, ratio
    assert chroma(build(clip, saturation=0.0, **kw).clip) <= 0.6


FORMATS = [(vs.YUV420P10, "keep"), (vs.GRAY16, "lab"), (vs.YUV444PS, "keep"), ("RGB24", "keep"),
           ("RGBS", "lab")]


@pytest.mark.slow
@pytest.mark.parametrize("fmt,tone,saturation", [
    (fmt, tone, saturation) for i, (fmt, tone) in enumerate(FORMATS)
    for saturation in ((0.5, 2.5) if i % 2 else (1.3, 2.5))])
def test_the_cpu_and_device_finishes_agree_with_saturation(lite_weights, grey, refs,
                                                           saturation, fmt, tone):
    """Both finishes scale alike, the clipping of far-out colours included (2.5)."""
    if isinstance(fmt, str):                           # RGB input: the model's ab replace its own
        rgb = np.stack([grey, grey * 0.8, grey * 0.6], 1).astype(np.float32)
        clip = from_arrays(rgb, getattr(vs, fmt))
    else:
        clip = from_arrays(grey, fmt)
    kw = dict(refs=refs, weights=lite_weights, tone=tone, saturation=saturation, **SMALL)
    graph, device = build(clip, finish="graph", **kw).clip, build(clip, finish="device", **kw).clip
    assert graph.format.id == device.format.id
    scale = 255.0 if graph.format.sample_type == vs.FLOAT else \
        255.0 / ((1 << graph.format.bits_per_sample) - 1)
    for n in (0, 3):
        g, d = graph.get_frame(n), device.get_frame(n)
        for p in range(graph.format.num_planes):
            diff = np.abs(np.asarray(g[p], np.float64) - np.asarray(d[p], np.float64)) * scale
            assert diff.mean() <= 1 and diff.max() <= 4, (n, p, diff.mean(), diff.max())


@pytest.mark.slow
def test_rgb_input_takes_the_scaled_model_colour(lite_weights, grey, refs):
    rgb = np.stack([grey, grey * 0.8, grey * 0.6], 1).astype(np.float32)
    clip = from_arrays(rgb, vs.RGB24)
    kw = dict(refs=refs, weights=lite_weights, **SMALL)

    def spread(out):             # mean distance of R and B from G: the colour's strength
        f = out.get_frame(2)
        r, g, b = (np.asarray(f[p], np.float64) for p in range(3))
        return float(np.abs(r - g).mean() + np.abs(b - g).mean())

    assert spread(vsremaster.Remaster(clip, saturation=1.5, **kw)) > \
        spread(vsremaster.Remaster(clip, **kw)) * 1.2
    assert spread(vsremaster.Remaster(clip, saturation=0.0, **kw)) < 1.5


# --- refusals ---------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -0.1, 4.01, True, "1.2",
                                   None, [1.2]])
def test_bad_saturation_is_refused(lite_weights, value):
    clip = from_arrays(moving_pattern(2, H, W), vs.GRAY8)
    with pytest.raises(vs.Error, match=r"Remaster: saturation must be .*not "):
        vsremaster.Remaster(clip, weights=lite_weights, saturation=value, **SMALL)


def test_saturation_without_colorization_is_refused(lite_weights, grey):
    """colorize=False keeps the input's own colour: a factor would silently do nothing."""
    clip = from_arrays(grey, vs.YUV420P8)
    with pytest.raises(vs.Error, match=r"saturation=1.3 needs colorize=True.*allowed with "
                                       r"colorize=False: 1.0"):
        vsremaster.Remaster(clip, weights=lite_weights, colorize=False, saturation=1.3,
                            **SMALL)
    plain = vsremaster.Remaster(clip, weights=lite_weights, colorize=False, **SMALL)
    same = vsremaster.Remaster(clip, weights=lite_weights, colorize=False, saturation=1.0,
                               **SMALL)
    assert frame_bytes(plain, 1) == frame_bytes(same, 1)


def test_confidence_takes_no_saturation(lite_weights, grey):
    clip = from_arrays(grey, vs.GRAY8)
    with pytest.raises(vs.Error, match="saturation"):
        vsremaster.Confidence(clip, weights=lite_weights, saturation=1.3, **SMALL)


# --- the measurement ---------------------------------------------------------------------------

def test_evaluation_scores_the_scaled_colour(one_torch_thread):
    """saturation=0 makes the model's colour grey, which the protocol scores as its grey
    input baseline; 1.0 is the unscaled score."""
    import seeded
    from test_evaluation import _frames, _models
    from vsremaster.evaluation import protocol
    model_r, model_c = _models()
    for model, state in zip((model_r, model_c), seeded.state_dicts(0.125)):
        model.load_state_dict(state)
    run = lambda **kw: protocol.evaluate_frames(                  # noqa: E731
        _frames(), model_r, model_c, protocol.EvalConfig(frames=6, mindim=32, **kw))
    plain, one, grey_, more = run(), run(saturation=1.0), run(saturation=0.0), \
        run(saturation=1.3)
    assert plain["psnr_ab"] == one["psnr_ab"]
    assert grey_["psnr_ab"] == pytest.approx(grey_["input_psnr_ab"], abs=1e-4)
    assert more["psnr_ab"] != one["psnr_ab"]


def test_evaluate_refuses_a_bad_saturation():
    run = subprocess.run([sys.executable, "-m", "vsremaster", "evaluate", "nothing.mp4",
                          "--saturation", "nan"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert "--saturation nan: allowed: a finite number from 0 to 4" in run.stderr
