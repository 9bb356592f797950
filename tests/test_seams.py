"""No seams: every frame's colour comes from its own centred window (issue 12's figures).

The seam figure is the largest local step of the output's chroma: a frame-to-frame
change divided by the mean of its four neighbouring changes, over each scene's interior.
"""
from __future__ import annotations

import pytest

from conftest import ROOT
from vsremaster.evaluation.seams import film_seam, pan_seam

BUNDLED = ROOT / "models" / "vsremaster-lite.safetensors"


@pytest.mark.slow
def test_a_slow_pan_has_no_step_at_chunk_bounds():
    """The bundled model on a slowly panning colour scene, 60 frames in chunks of 24: the
    centred decoding steps no more than 1.2 anywhere; the released chunk decoding, run
    beside it, steps at its chunk bounds (so the figure can see a seam)."""
    got = pan_seam(BUNDLED, frames=60, variants=({"context": "chunk"},),
                   filter_args={"chunk": 24})
    ours, chunked = got["ours"], got["ours[context=chunk]"]
    print({k: (round(v["seam"], 3), v["seam_at"]) for k, v in got.items()})
    assert ours["seam"] <= 1.2, ours["seam"]
    assert chunked["seam"] > ours["seam"] and chunked["seam_at"] in (23, 47)


@pytest.mark.slow
@pytest.mark.shared
def test_the_sample_film_has_no_seam_beyond_the_naive_windows(shared_film):
    """The film sample with its references (lite model, mindim 64): ours' largest local
    step within 10 % of the naive 15-frame window's (which has no chunks at all)."""
    video, refs = shared_film
    got = film_seam(video, refs, BUNDLED, frames=96, mindim=64, compare=True,
                    filter_args={"chunk": 24})
    print({k: (round(v["seam"], 3), v["seam_at"]) for k, v in got.items()})
    assert got["ours"]["seam"] <= 1.1 * got["naive"]["seam"], got
