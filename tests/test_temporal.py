"""Temporal-consistency metrics on inputs whose figures can be worked out by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from vsremaster.evaluation import temporal


def _drift(t: int = 20, step: float = 0.1, jump_at: int | None = None, jump: float = 2.0):
    """ab [t, 2, 4, 4]: every pixel's a*, b* grow by `step` per frame (+`jump` from `jump_at`)."""
    values = np.arange(t) * step
    if jump_at is not None:
        values[jump_at:] += jump
    return np.broadcast_to(values[:, None, None, None], (t, 2, 4, 4)).copy()


def _pan(t: int = 24, speed: int = 1, seed: int = 0):
    """ab [t, 2, 16, 32]: a random chroma field rolling `speed` px per frame (periodic)."""
    field = np.random.default_rng(seed).uniform(-40, 40, (2, 16, 32))
    return np.stack([np.roll(field, speed * i, axis=-1) for i in range(t)])


def test_chroma_changes_and_mean_change_by_hand():
    ab = _drift(5, 0.5)
    np.testing.assert_allclose(temporal.chroma_changes(ab), [0.5] * 4)
    assert temporal.mean_change(ab) == pytest.approx(0.5)
    # a cut at frame 3: the pair 2 -> 3 (a jump of 10) is not counted
    jumped = _drift(6, 0.5, jump_at=3, jump=10.0)
    assert temporal.mean_change(jumped) == pytest.approx((4 * 0.5 + 10.5) / 5)
    assert temporal.mean_change(jumped, starts=[0, 3]) == pytest.approx(0.5)
    assert math.isnan(temporal.mean_change(ab[:1]))


def test_local_steps_by_hand():
    np.testing.assert_allclose(temporal.local_steps([1, 1, 1, 1, 1]), [1.0])
    np.testing.assert_allclose(temporal.local_steps([1, 2, 6, 2, 1, 3]), [6 / 1.5, 2 / 3])
    np.testing.assert_allclose(temporal.local_steps([0, 0, 0, 0, 0]), [1.0])   # static: no step
    assert temporal.local_steps([0, 0, 1, 0, 0])[0] == math.inf
    assert len(temporal.local_steps([1, 1, 1, 1])) == 0           # no interior pair


def test_uniform_pan_has_local_steps_of_one():
    step, at = temporal.seam(_pan())
    assert step == pytest.approx(1.0, abs=1e-9) and 2 <= at <= 20
    step, _ = temporal.seam(_pan(t=30, speed=2, seed=3))
    assert step == pytest.approx(1.0, abs=1e-9)


def test_a_single_jump_is_a_large_local_step_where_it_happens():
    step, at = temporal.seam(_drift(20, 0.1, jump_at=10, jump=2.0))
    assert at == 9                                    # the change from frame 9 to 10
    assert step == pytest.approx(2.1 / 0.1)
    # near a scene's edges a pair has no two neighbours each side: not in the interior
    step, at = temporal.seam(_drift(20, 0.1, jump_at=1, jump=2.0))
    assert step == pytest.approx(1.0) and at is not None


def test_a_jump_at_a_scene_cut_is_no_seam():
    ab = _drift(20, 0.1, jump_at=10, jump=2.0)
    step, at = temporal.seam(ab, starts=[0, 10])
    assert step == pytest.approx(1.0)
    assert math.isnan(temporal.seam(ab[:5])[0]) and temporal.seam(ab[:5])[1] is None


def test_js_divergence_bounds():
    p = np.array([0.5, 0.5, 0.0, 0.0])
    q = np.array([0.0, 0.0, 0.5, 0.5])
    assert temporal.js_divergence(p, p) == 0.0
    assert temporal.js_divergence(p, q) == pytest.approx(math.log(2))
    r = np.array([0.5, 0.0, 0.5, 0.0])                # half the mass shared
    assert temporal.js_divergence(p, r) == pytest.approx(0.5 * math.log(2))


def test_histograms_count_8_bit_levels():
    rgb = np.zeros((1, 3, 2, 2))
    rgb[0, 0] = [[0.0, 1.0], [1.0, 1.0]]              # R: one pixel at 0, three at 255
    rgb[0, 1] = 0.5                                   # G: all at round(127.5) = 128
    h = temporal.histograms(rgb)
    assert h.shape == (1, 3, 256) and np.allclose(h.sum(-1), 1)
    assert h[0, 0, 0] == 0.25 and h[0, 0, 255] == 0.75 and h[0, 1, 128] == 1.0


def test_cdc_of_identical_frames_is_zero():
    frame = np.random.default_rng(0).uniform(0, 1, (3, 8, 8))
    out = temporal.cdc(np.stack([frame] * 8))
    assert out == {"cdc_d1": 0.0, "cdc_d2": 0.0, "cdc_d4": 0.0, "cdc": 0.0}


def test_cdc_of_alternating_black_and_white_by_hand():
    # every frame one colour: neighbours (d = 1) share no bin (JS = ln 2); d = 2 and 4
    # compare a frame with its own colour (0); CDC is their mean.
    rgb = np.stack([np.full((3, 4, 4), float(i % 2)) for i in range(9)])
    out = temporal.cdc(rgb)
    assert out["cdc_d1"] == pytest.approx(math.log(2))
    assert out["cdc_d2"] == out["cdc_d4"] == 0.0
    assert out["cdc"] == pytest.approx(math.log(2) / 3)
    # scenes of 2 frames: only d = 1 pairs lie inside a scene
    split = temporal.cdc(rgb[:4], starts=[0, 2])
    assert split["cdc_d1"] == pytest.approx(math.log(2))
    assert math.isnan(split["cdc_d2"]) and split["cdc"] == pytest.approx(math.log(2))


def test_temporal_metrics_of_a_still_grey_clip():
    rgb = np.full((7, 3, 8, 8), 0.5)
    m = temporal.temporal_metrics(rgb)
    assert m["mean_dab"] == 0.0 and m["seam"] == 1.0 and m["cdc"] == 0.0
    assert set(m) == {"mean_dab", "seam", "seam_at", "cdc", "cdc_d1", "cdc_d2", "cdc_d4"}


def test_temporal_metrics_take_the_ab_a_caller_has():
    """Given a*b* are used as they are (not converted from the RGB again)."""
    rgb = np.full((20, 3, 8, 8), 0.5)
    ab = _drift(jump_at=10)
    m = temporal.temporal_metrics(rgb, ab=ab)
    assert m["mean_dab"] == pytest.approx(temporal.mean_change(ab)) and m["seam_at"] == 9
    assert m["cdc"] == 0.0                          # the CDC still reads the RGB
    assert temporal.temporal_metrics(rgb, ab=temporal.rgb_to_ab(rgb)) == \
        temporal.temporal_metrics(rgb)
