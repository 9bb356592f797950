"""A feature film's reference folder: thousands of anchored images, one per shot.

Real PNG files written here, a real VapourSynth clip whose frames mark scene cuts, and
the real filter: the bank keeps anchors (not images) at creation, reads an image when a
scene's set needs it, and keeps a bounded number of them (issue 35, item 5).
"""
from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest
import vapoursynth as vs

from clips import from_arrays, moving_pattern
from vsremaster import limits
from vsremaster.references.bank import LazyBank, RefBank
from vsremaster.references import selection
from vsremaster.references.sources import load_bank
from vsremaster.remaster import build

core = vs.core
SMALL = dict(mindim=48, ref_mindim=32, device_index=-1, chunk=2)
SHOT = 2                      # frames per shot of the synthetic film


def colour(i: int) -> list[int]:
    """A distinct BGR colour per reference (checked again on the canvas)."""
    return [(37 * i) % 256, (91 * i + 40) % 256, (53 * i + 90) % 256]


def write_refs(folder: Path, anchors, h: int = 12, w: int = 16) -> list[Path]:
    """One flat PNG per anchor, named by it (`ref_000134.png`); None: unanchored."""
    folder.mkdir(exist_ok=True)
    paths = []
    for i, a in enumerate(anchors):
        name = f"ref_{a:06d}.png" if a is not None else f"loose_{i}x.png"   # no number at the end
        path = folder / name
        cv2.imwrite(str(path), np.full((h, w, 3), colour(i), np.uint8))
        paths.append(path)
    return paths


def film(shots: int, h: int = 32, w: int = 48) -> vs.VideoNode:
    """`shots` flat shots of SHOT frames; a scene-change filter's props mark the cuts."""
    blank = core.std.BlankClip(format=vs.GRAY8, width=w, height=h, length=shots * SHOT,
                               color=[100])

    def mark(n, f):
        f = f.copy()
        f.props["_SceneChangePrev"] = int(n > 0 and n % SHOT == 0)
        return f
    return core.std.ModifyFrame(blank, blank, mark)


@pytest.fixture(scope="module")
def shot_refs(tmp_path_factory) -> Path:
    """1,500 anchored references, one at each shot's first frame."""
    folder = tmp_path_factory.mktemp("film") / "refs"
    write_refs(folder, [SHOT * i for i in range(1500)])
    return folder


def test_1500_anchored_refs_are_read_per_scene(lite_weights, shot_refs):
    pipe = build(film(1500), refs=shot_refs, weights=lite_weights, max_refs=1, **SMALL)
    bank = pipe.bank
    assert isinstance(bank, LazyBank) and len(bank) == 1500
    assert len(bank.cache) == 0                       # nothing decoded at creation
    for shot in range(0, 1500, 5):                    # 300 scenes
        start = SHOT * shot
        assert pipe.scenes.bounds(start) == (start, start + SHOT)
        ids, canvas = pipe.references(start, start + SHOT)
        assert ids == (shot,)
        b, g, r = colour(shot)
        centre = canvas[0, :, canvas.shape[2] // 2, canvas.shape[3] // 2] * 255
        assert np.allclose(centre, [r, g, b], atol=1), (shot, centre)
    # bounded whatever the number of scenes seen
    assert len(bank.cache) == limits.REF_CACHE_IMAGES
    assert bank.cache.nbytes <= limits.REF_CACHE_BYTES
    assert len(pipe.references._canvases) <= 8 and len(pipe.references._sets) <= 64
    f = pipe.clip.get_frame(SHOT * 1234 + 1)
    assert f.props["_RemasterRefs"] == 1234


def test_creation_keeps_anchors_not_images(tmp_path):
    """Python's allocations while the bank is made stay far below the images' bytes."""
    write_refs(tmp_path / "refs", [SHOT * i for i in range(1500)], h=48, w=64)
    images = 1500 * 48 * 64 * 3                        # 13.8 MB if every image were kept
    tracemalloc.start()
    try:
        bank = load_bank(tmp_path / "refs")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(bank, LazyBank)
    assert peak < images / 4, peak
    assert bank.images[7][0, 0].tolist() == colour(7)[::-1]


def brute_force(anchors, start: int, stop: int, max_refs: int) -> list[int]:
    """The rule for anchored references, by a pass over the whole bank."""
    anchored = [i for i, a in enumerate(anchors) if a is not None]
    mid = (start + stop - 1) / 2
    inside = sorted((i for i in anchored if start <= anchors[i] < stop),
                    key=lambda i: (abs(anchors[i] - mid), i))
    if not inside and anchored:
        dist = {i: max(start - anchors[i], anchors[i] - (stop - 1), 0) for i in anchored}
        inside = sorted(i for i in anchored if dist[i] == min(dist.values()))
    return inside[:max_refs]


def test_anchored_choice_by_bisection_equals_a_pass_over_the_bank():
    rng = np.random.default_rng(35)
    for _ in range(300):
        n = int(rng.integers(1, 40))
        anchors = [None if rng.random() < 0.2 else int(rng.integers(0, 60)) for _ in range(n)]
        bank = RefBank([np.zeros((1, 1, 3), np.uint8)] * n, anchors)
        for _ in range(10):
            start = int(rng.integers(0, 70))
            stop = start + int(rng.integers(1, 12))
            max_refs = int(rng.integers(1, 5))
            assert selection._anchored(bank, start, stop, max_refs) == \
                brute_force(anchors, start, stop, max_refs), (anchors, start, stop, max_refs)


def test_a_lazy_bank_gives_the_same_sets_and_bits_as_one_read_whole(lite_weights, tmp_path,
                                                                    monkeypatch):
    """Anchored and unanchored references: read per scene, or whole (a bank that fits the
    cache), the filter chooses the same sets and writes the same bits."""
    n = 24
    grey = moving_pattern(n, 32, 48, seed=3)
    grey[8:16] = 1 - grey[8:16]
    clip = from_arrays(grey, vs.GRAY8, per_frame_props={0: {"_SceneChangePrev": 0},
                                                        8: {"_SceneChangePrev": 1},
                                                        16: {"_SceneChangePrev": 1}})
    write_refs(tmp_path / "refs", [None, 3, None, 18, None, 30, None], h=20, w=28)
    frames = [0, 9, 20]

    def render():
        pipe = build(clip, refs=tmp_path / "refs", weights=lite_weights, max_refs=3, **SMALL)
        return pipe, pipe.ref_sets(), [[np.asarray(p).copy() for p in pipe.clip.get_frame(i)]
                                       for i in frames]
    whole, whole_sets, whole_bits = render()
    assert isinstance(whole.bank, RefBank)
    monkeypatch.setattr(limits, "REF_CACHE_IMAGES", 2)
    lazy, lazy_sets, lazy_bits = render()
    assert isinstance(lazy.bank, LazyBank) and len(lazy.bank.cache) <= 2
    assert lazy_sets == whole_sets and any(None in [lazy.bank.anchors[i] for i in s]
                                           for s in lazy_sets)
    for a, b in zip(whole_bits, lazy_bits):
        assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_a_bad_file_among_thousands_is_named_before_anything_is_decoded(lite_weights, tmp_path,
                                                                        shot_refs):
    folder = tmp_path / "refs"
    folder.mkdir()
    for p in sorted(shot_refs.iterdir())[:2000]:
        (folder / p.name).symlink_to(p)
    (folder / "ref_000777.png").write_text("not an image\n")
    with pytest.raises(vs.Error, match=r"Remaster: refs image '.*ref_000777\.png' is not a "
                                       r"readable image"):
        build(film(1500), refs=folder, weights=lite_weights, **SMALL)


def test_a_file_that_breaks_after_its_header_is_named_by_its_scene(lite_weights, tmp_path,
                                                                   shot_refs):
    """A big bank is decoded per scene: a body damaged behind a good header is found when
    its scene is first needed, and that scene's frames say which file it is."""
    folder = tmp_path / "refs"
    folder.mkdir()
    for p in sorted(shot_refs.iterdir())[:100]:
        (folder / p.name).symlink_to(p)
    bad = folder / "ref_000020.png"
    data = bad.read_bytes()
    bad.unlink()
    bad.write_bytes(data[:len(data) // 2])
    pipe = build(film(100), refs=folder, weights=lite_weights, max_refs=1, **SMALL)
    assert isinstance(pipe.bank, LazyBank)
    with pytest.raises(vs.Error, match=r"Remaster: frame 20: refs image '.*ref_000020\.png' is "
                                       "not a readable image"):
        pipe.clip.get_frame(20)
    assert pipe.clip.get_frame(22).props["_RemasterRefs"] == 11


@pytest.mark.parametrize("kind", ["folder", "list", "clip"])
def test_the_bank_index_limit_is_refused_before_reading(lite_weights, tmp_path, monkeypatch, kind):
    paths = write_refs(tmp_path / "refs", [SHOT * i for i in range(40)] + [None] * 3)
    refs = {"folder": tmp_path / "refs", "list": paths,
            "clip": core.std.BlankClip(format=vs.RGB24, width=16, height=12, length=500)}[kind]
    monkeypatch.setattr(limits, "MAX_BANK_INDEX_BYTES", 5000)
    with pytest.raises(vs.Error) as info:
        build(film(40), refs=refs, weights=lite_weights, **SMALL)
    message = str(info.value)
    assert message.startswith("Remaster: refs"), message
    assert "to choose from" in message and "allowed: at most 5.0 kB" in message, message


def bank_clip(count: int, every: int) -> vs.VideoNode:
    """A refs clip of another length: frame i coloured colour(i), anchored at i * every."""
    blank = core.std.BlankClip(format=vs.RGB24, width=16, height=12, length=count)

    def paint(n, f):
        f = f.copy()
        b, g, r = colour(n)
        for p, v in enumerate((r, g, b)):
            np.asarray(f[p])[:] = v
        f.props["_RemasterAnchor"] = n * every
        return f
    return core.std.ModifyFrame(blank, blank, paint)


def test_a_long_refs_clip_is_read_per_scene(lite_weights):
    pipe = build(film(300), refs=bank_clip(300, SHOT), weights=lite_weights, max_refs=1, **SMALL)
    bank = pipe.bank
    assert isinstance(bank, LazyBank) and len(bank) == 300 and len(bank.cache) == 0
    for shot in range(0, 300, 3):
        ids, canvas = pipe.references(SHOT * shot, SHOT * shot + SHOT)
        assert ids == (shot,)
        b, g, r = colour(shot)
        assert np.allclose(canvas[0, :, 8, 8] * 255, [r, g, b], atol=1)
    assert len(bank.cache) == limits.REF_CACHE_IMAGES


@pytest.mark.slow
def test_10000_anchored_refs(lite_weights, tmp_path):
    """A film of 10,000 shots: creation reads headers only, in seconds."""
    write_refs(tmp_path / "refs", [SHOT * i for i in range(10_000)])
    t = time.perf_counter()
    tracemalloc.start()
    try:
        pipe = build(film(10_000), refs=tmp_path / "refs", weights=lite_weights, max_refs=1,
                     **SMALL)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - t < 60
    assert isinstance(pipe.bank, LazyBank) and len(pipe.bank.cache) == 0
    assert peak < 20e6, peak
    for shot in (0, 4321, 9999):
        assert pipe.clip.get_frame(SHOT * shot).props["_RemasterRefs"] == shot
