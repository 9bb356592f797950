"""Property tests (hypothesis) over random sizes, formats, scene and reference layouts.

Invariants: the output has the source's size and length and the documented format
(GRAY in -> YUV444 at the same depth when colorizing, else the source's format); a
frame's bytes do not depend on the filter instance or the order frames are requested
in; and what happens in one scene never changes another scene's frames.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import vapoursynth as vs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vsremaster.remaster import build
from clips import from_arrays, moving_pattern, planes, scene_props

core = vs.core
FORMATS = [vs.GRAY8, vs.GRAY16, vs.GRAYS, vs.GRAYH, vs.YUV420P8, vs.YUV422P10, vs.YUV444P16,
           vs.YUV410P8, vs.YUV444PS, vs.RGB24, vs.RGB48, vs.RGBS, vs.RGBH]
#: a deeper search: VSREMASTER_EXAMPLES=100 pytest tests/test_properties.py
FAST = settings(max_examples=int(os.environ.get("VSREMASTER_EXAMPLES", 8)), deadline=None,
                database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def clips(draw, min_scenes: int = 1):
    """(format, width, height, frames, scene starts) of a random source."""
    fmt = core.get_video_format(draw(st.sampled_from(FORMATS)))
    mod_w, mod_h = 1 << fmt.subsampling_w, 1 << fmt.subsampling_h
    w = draw(st.integers(16, 80)) // mod_w * mod_w
    h = draw(st.integers(16, 80)) // mod_h * mod_h
    n = draw(st.integers(max(2, 2 * min_scenes), 12))
    cuts = draw(st.lists(st.integers(1, n - 1), min_size=min_scenes - 1, max_size=3, unique=True))
    return fmt, w, h, n, [0] + sorted(cuts)


def source(fmt, w, h, n, starts, seed: int = 0, changed: int | None = None) -> vs.VideoNode:
    """A clip of `n` frames with cuts at `starts`; each scene its own texture.

    `changed`: that scene gets another texture (for the isolation property).
    """
    frames = np.empty((n, h, w), np.float32)
    bounds = starts + [n]
    for k, (a, b) in enumerate(zip(bounds, bounds[1:])):
        frames[a:b] = moving_pattern(b - a, h, w, seed=seed + 7 * k + (1000 if k == changed else 0))
    if fmt.color_family == vs.RGB:        # a colour source: R, G, B differ
        frames = np.stack([frames, frames[:, ::-1, :] * 0.8, 1 - frames], axis=1)
    return from_arrays(frames, fmt.id, per_frame_props=scene_props(starts))


@st.composite
def ref_layouts(draw, n: int):
    """("none"|"files"|"synced"|"bank", [(anchor or None, seed)], size)."""
    kind = draw(st.sampled_from(["none", "files", "synced", "bank"]))
    count = n if kind == "synced" else draw(st.integers(1, 3))
    if kind == "bank" and count == n:
        count -= 1
    refs = [(draw(st.one_of(st.none(), st.integers(0, n - 1))), draw(st.integers(0, 99)))
            for _ in range(count)]
    size = (draw(st.integers(24, 64)), draw(st.integers(24, 64)))
    return kind, refs, size


def colour_field(seed: int, h: int, w: int) -> np.ndarray:
    """A smooth random RGB image [3, h, w] in [0, 1]."""
    rng = np.random.default_rng(seed)
    small = rng.random((3, 3, 4)).astype(np.float32)
    return np.stack([cv2.resize(c, (w, h), interpolation=cv2.INTER_LINEAR) for c in small])


def make_refs(layout, folder: Path):
    kind, refs, (rh, rw) = layout
    if kind == "none":
        return None
    images = [colour_field(seed, rh, rw) for _, seed in refs]
    if kind == "files":
        paths = []
        for i, ((anchor, _), img) in enumerate(zip(refs, images)):
            # a number at the end of the name anchors the image to that frame
            name = f"loose_{'abc'[i]}.png" if anchor is None else f"{'abc'[i]}_{anchor:06d}.png"
            bgr = (img.transpose(1, 2, 0)[..., ::-1] * 255).round().astype(np.uint8)
            cv2.imwrite(str(folder / name), bgr)
            paths.append(folder / name)
        return paths
    props = {i: {"_RemasterAnchor": a} for i, (a, _) in enumerate(refs) if a is not None}
    return from_arrays(np.stack(images), vs.RGB24, per_frame_props=None if kind == "synced" else props)


def frame_bytes(clip: vs.VideoNode, n: int) -> bytes:
    return b"".join(p.tobytes() for p in planes(clip.get_frame(n)))


def remaster(clip, weights, refs=None, **kw):
    return build(clip, refs=refs, weights=weights, mindim=32, ref_mindim=32, device_index=-1, **kw)


@FAST
@given(data=st.data())
def test_output_size_and_format(lite_weights, data):
    fmt, w, h, n, starts = data.draw(clips())
    colorize, restore = data.draw(st.booleans()), data.draw(st.booleans())
    pipe = remaster(source(fmt, w, h, n, starts), lite_weights, chunk=data.draw(st.integers(1, 6)),
                    colorize=colorize, restore=restore)
    out = pipe.clip
    expected = fmt
    if fmt.color_family != vs.RGB and colorize:         # GRAY/YUV in: YUV444 out
        expected = core.query_video_format(vs.YUV, fmt.sample_type, fmt.bits_per_sample, 0, 0)
    assert (out.width, out.height, out.num_frames) == (w, h, n)
    assert out.format.id == expected.id, (out.format.name, expected.name)
    assert pipe.scene_starts() == starts
    k = data.draw(st.integers(0, n - 1))
    f = out.get_frame(k)
    assert f.format.id == expected.id and (f.width, f.height) == (w, h)
    assert f.props["_RemasterScene"] == max(s for s in starts if s <= k)
    if fmt.sample_type == vs.FLOAT:
        assert all(np.isfinite(p.astype(np.float32)).all() for p in planes(f))


@pytest.mark.slow
@FAST
@given(data=st.data())
def test_same_frame_same_bytes_whatever_the_order(lite_weights, data):
    fmt, w, h, n, starts = data.draw(clips())
    layout = data.draw(ref_layouts(n))
    chunk = data.draw(st.integers(1, 6))
    max_refs = data.draw(st.integers(1, 3))
    order = data.draw(st.permutations(range(n)))[:4]
    with tempfile.TemporaryDirectory() as folder:
        refs = make_refs(layout, Path(folder))
        clip = source(fmt, w, h, n, starts)
        one = remaster(clip, lite_weights, refs, chunk=chunk, max_refs=max_refs).clip
        first = {k: frame_bytes(one, k) for k in order}
        assert all(frame_bytes(one, k) == first[k] for k in order[::-1])   # twice, same instance
        other = remaster(clip, lite_weights, refs, chunk=chunk, max_refs=max_refs).clip
        assert {k: frame_bytes(other, k) for k in reversed(order)} == first


@pytest.mark.slow
@FAST
@given(data=st.data())
def test_scene_isolation(lite_weights, data):
    fmt, w, h, n, starts = data.draw(clips(min_scenes=2))
    layout = data.draw(ref_layouts(n))
    changed = data.draw(st.integers(0, len(starts) - 1))
    chunk = data.draw(st.integers(1, 6))
    bounds = starts + [n]
    inside = range(bounds[changed], bounds[changed + 1])
    others = [k for k in range(n) if k not in inside]
    picked = data.draw(st.lists(st.sampled_from(others), min_size=1, max_size=3, unique=True))
    with tempfile.TemporaryDirectory() as folder:
        refs = make_refs(layout, Path(folder))
        a = remaster(source(fmt, w, h, n, starts), lite_weights, refs, chunk=chunk)
        b = remaster(source(fmt, w, h, n, starts, changed=changed), lite_weights, refs, chunk=chunk)
        assert [r for i, r in enumerate(a.ref_sets()) if i != changed] == \
            [r for i, r in enumerate(b.ref_sets()) if i != changed]
        for k in picked:
            assert frame_bytes(a.clip, k) == frame_bytes(b.clip, k), (k, starts, changed)
        # the changed scene did change (so the comparison above means something)
        k = data.draw(st.sampled_from(list(inside)))
        assert frame_bytes(a.clip, k) != frame_bytes(b.clip, k)
