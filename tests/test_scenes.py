"""Lazy scene bounds (SceneIndex) against the whole-clip scan, and per-scene reference sets.

The oracle is `oracles.scan` over the whole clip plus the block starts: bounds and
descriptors must be byte-identical to it, whatever the request order or threads.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clips import from_arrays, scene_props
from conftest import ROOT
from oracles import SceneScan, choose_sets, scan
from vsremaster.planning.scenes import THUMB, SceneIndex, ScanError, describe
from vsremaster.references import selection
from vsremaster.references.selection import choose_set
from vsremaster.references.sources import RefBank, RefError
from vsremaster.references.synced import SyncedRefs

core = vs.core
# the binary itself: killing the venv's Python wrapper on a timeout would leave it running
VSPIPE = next(p for p in (Path(vs.__file__).with_name("vspipe"),
                          Path(sys.executable).with_name("vspipe")) if p.is_file())
N = 40
LEVELS = (0.2, 0.75)


def flat_scenes(n: int, cuts, h: int = 24, w: int = 32, seed: int = 0) -> np.ndarray:
    """Frames whose level jumps by 0.55 at each cut (detected at 0.1), with faint noise."""
    rng = np.random.default_rng(seed)
    scene = np.cumsum([i in set(cuts) for i in range(n)])
    levels = np.array(LEVELS)[scene % 2] + 0.05 * (scene % 3)
    return (levels[:, None, None] + 0.02 * rng.random((n, h, w))).astype(np.float32)


def counted(clip: vs.VideoNode) -> tuple[vs.VideoNode, list[int]]:
    """`clip` and the list of the frame numbers VapourSynth asked it for."""
    reads: list[int] = []

    def note(n, f):
        reads.append(n)
        return f
    return core.std.ModifyFrame(clip, clip, note), reads


def expected(clip: vs.VideoNode, sc_threshold, block: int):
    """(whole-clip scan, scene starts with the block starts, {start: descriptor})."""
    full = scan(clip, sc_threshold)
    n = clip.num_frames
    starts = sorted(set(full.starts) | set(range(0, n, block)))
    per_frame = [describe(np.asarray(f[0]).copy())
                 for f in core.resize.Bilinear(clip, THUMB, THUMB).frames(close=True)]
    descs = {}
    for a, b in zip(starts, starts[1:] + [n]):
        descs[a] = (np.mean([d[0] for d in per_frame[a:b]], axis=0),
                    np.mean([d[1] for d in per_frame[a:b]], axis=0))
    return full, starts, descs


def assert_same_as_scan(clip, sc_threshold, block, seed=0):
    full, starts, descs = expected(clip, sc_threshold, block)
    index = SceneIndex(clip, sc_threshold, block)
    order = list(range(clip.num_frames))
    random.Random(seed).shuffle(order)
    ends = dict(zip(starts, starts[1:] + [clip.num_frames]))
    for n in order:
        a, b = index.bounds(n)
        assert a in ends and ends[a] == b and a <= n < b, (n, a, b)
    full_ends = dict(zip(full.starts, full.starts[1:] + [clip.num_frames]))
    for i, a in enumerate(starts):
        thumb, hist = index.descriptor(a)
        assert thumb.tobytes() == descs[a][0].tobytes() and hist.tobytes() == descs[a][1].tobytes()
        if full_ends.get(a) == ends[a]:        # a scene no block split: as scan() has it
            k = full.starts.index(a)
            assert thumb.tobytes() == full.thumbs[k].tobytes()
            assert hist.tobytes() == full.hists[k].tobytes()
    assert index.from_props == full.from_props
    return index


CUTS = {"none": [], "first": [1], "last": [N - 1], "every": list(range(1, N)),
        "some": [3, 7, 8, 20, 21, 33]}


@pytest.mark.parametrize("block", [7, 1000])
@pytest.mark.parametrize("cuts", list(CUTS))
def test_detected_bounds_equal_the_whole_scan(cuts, block):
    clip = from_arrays(flat_scenes(N, CUTS[cuts]))
    assert scan(clip, None).starts == [0] + CUTS[cuts]           # the clip does what it says
    index = assert_same_as_scan(clip, None, block)
    assert not index.from_props


@pytest.mark.parametrize("block", [1, 7, 1000])
@pytest.mark.parametrize("prop", ["_SceneChangePrev", "_SceneChangeNext"])
@pytest.mark.parametrize("cuts", list(CUTS))
def test_prop_bounds_equal_the_whole_scan(cuts, prop, block):
    # the content cuts elsewhere: props, not detection, must decide
    marks = {0: {prop: 0}}
    for s in CUTS[cuts]:
        marks[s if prop == "_SceneChangePrev" else s - 1] = {prop: 1}
    clip = from_arrays(flat_scenes(N, [5, 30]), per_frame_props=marks)
    assert scan(clip, None).starts == [0] + CUTS[cuts]
    index = assert_same_as_scan(clip, None, block)
    assert index.from_props


def test_sc_threshold_detects_even_with_props():
    clip = from_arrays(flat_scenes(N, [5, 30]), per_frame_props=scene_props([12]))
    index = assert_same_as_scan(clip, 0.1, 16)
    assert not index.from_props and index.bounds(12) == (5, 16)


def test_props_count_only_when_frame_0_has_them():
    """The documented rule (scan() looks at every frame): props on frame 12 only -> detection."""
    clip = from_arrays(flat_scenes(N, [5, 30]), per_frame_props={12: {"_SceneChangePrev": 1}})
    assert scan(clip, None).starts == [0, 12]
    index = SceneIndex(clip, None, 1000)
    assert index.bounds(12) == (5, 30) and not index.from_props


def test_a_long_clip_is_indexed_without_reading_and_a_request_reads_one_block():
    src, reads = counted(core.std.BlankClip(format=vs.GRAYS, width=64, height=48, length=200_000))
    index = SceneIndex(src, None)
    assert reads == [] and index.block == 1000
    assert index.bounds(150_500) == (150_000, 151_000)
    # frame 0 once, to see whether the clip has scene-change props; then n's block only
    assert set(reads) == {0} | set(range(150_000, 151_000))
    assert index.blocks_scanned == 1
    before = len(reads)
    assert index.bounds(150_999) == (150_000, 151_000) and index.descriptor(150_000)
    assert len(reads) == before                                  # cached
    assert index.bounds(199_999) == (199_000, 200_000)
    assert set(reads[before:]) == set(range(199_000, 200_000))


def test_sc_threshold_reads_only_the_block():
    src, reads = counted(core.std.BlankClip(format=vs.GRAYS, width=64, height=48, length=10_000))
    index = SceneIndex(src, 0.2, block=500)
    assert index.bounds(4321) == (4000, 4500) and set(reads) == set(range(4000, 4500))


def test_threads_at_once_scan_each_block_once():
    frames = flat_scenes(300, sorted(random.Random(3).sample(range(1, 300), 30)))
    src, reads = counted(from_arrays(frames))
    _, starts, _ = expected(from_arrays(frames), None, 64)
    index = SceneIndex(src, None, block=64)
    asked = [random.Random(i).randrange(64, 256) for i in range(16)]    # blocks 1-3
    got: dict[int, tuple[int, int]] = {}
    gate = threading.Barrier(len(asked))

    def ask(n):
        gate.wait()
        got[n] = index.bounds(n)
    threads = [threading.Thread(target=ask, args=(n,)) for n in asked]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ends = dict(zip(starts, starts[1:] + [300]))
    assert all(ends[a] == b and a <= n < b for n, (a, b) in got.items())
    blocks = {n // 64 for n in asked}
    assert index.blocks_scanned == len(blocks)
    assert set(reads) == {0} | {n for k in blocks for n in range(64 * k, 64 * k + 64)}


def test_a_frame_that_fails_names_itself_and_the_block_is_not_cached():
    def bad(n, f):
        if n == 37:
            raise ValueError("broken frame")
        return f
    clip = from_arrays(flat_scenes(N, [10]))
    index = SceneIndex(core.std.ModifyFrame(clip, clip, bad), None, block=16)
    for _ in range(2):
        with pytest.raises(vs.Error, match="(?s)frame 37: .*broken frame") as e:
            index.bounds(33)
        assert isinstance(e.value, ScanError) and e.value.frame == 37
    assert index.bounds(12) == (10, 16) and index.bounds(20) == (16, 32)


def test_a_failing_frame_0_is_named():
    def bad(n, f):
        if n == 0:
            raise ValueError("no frame 0")
        return f
    clip = from_arrays(flat_scenes(N, [10]))
    index = SceneIndex(core.std.ModifyFrame(clip, clip, bad), None)
    with pytest.raises(ScanError, match="(?s)frame 0: .*no frame 0"):
        index.bounds(20)


VPY = """
import random
import numpy as np
import vapoursynth as vs
from clips import from_arrays
from vsremaster.planning.scenes import SceneIndex
core = vs.core
core.num_threads = int(threads)
src = from_arrays(np.load(data))
index = SceneIndex(src, None, block=int(block))

def lazily(n):
    a, b = index.bounds(n)
    thumb, hist = index.descriptor(a)
    return core.std.SetFrameProps(src, Start=a, Stop=b, Thumb=float(thumb.sum()))

out = core.std.FrameEval(src, lazily)
order = list(range(src.num_frames))
random.Random(int(seed)).shuffle(order)
core.std.Splice([out[n] for n in order]).set_output()
"""


@pytest.mark.parametrize("threads", [1, 4])
def test_vspipe_renders_lazy_bounds_from_frame_eval_in_random_order(tmp_path, threads):
    """bounds() scans from inside std.FrameEval's callback while vspipe's threads render.

    With one thread, a scan through clip.frames() here never finishes: it keeps its
    pool thread while waiting. The index's synchronous requests give it back.
    """
    n, block, seed = 300, 32, 5
    frames = flat_scenes(n, sorted(random.Random(1).sample(range(1, n), 40)))
    np.save(tmp_path / "frames.npy", frames)
    (tmp_path / "lazy.vpy").write_text(VPY)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]))
    cmd = [str(VSPIPE), "-r", "4", "-j", str(tmp_path / "props.json"),
           "-a", f"data={tmp_path / 'frames.npy'}", "-a", f"threads={threads}",
           "-a", f"block={block}", "-a", f"seed={seed}", str(tmp_path / "lazy.vpy"), "--"]
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail("vspipe did not finish in 120 s: a deadlock")
    assert run.returncode == 0, run.stderr
    got = json.loads((tmp_path / "props.json").read_text())
    _, starts, descs = expected(from_arrays(frames), None, block)
    ends = dict(zip(starts, starts[1:] + [n]))
    order = list(range(n))
    random.Random(seed).shuffle(order)
    assert len(got) == n
    for m, props in zip(order, got):
        a = max(s for s in starts if s <= m)
        assert (props["Start"], props["Stop"]) == (a, ends[a]), m
        assert props["Thumb"] == pytest.approx(float(descs[a][0].sum()), rel=1e-12)


# -- reference sets ------------------------------------------------------------------
FRAMES = np.random.default_rng(7).random((N, 24, 32)).astype(np.float32)
SETTINGS = settings(max_examples=int(os.environ.get("VSREMASTER_EXAMPLES", 15)), deadline=None,
                    database=None, suppress_health_check=[HealthCheck.too_slow])


def ref_images(count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(rng.random((rng.integers(8, 20), rng.integers(8, 20), 3)) * 255).astype(np.uint8)
            for _ in range(count)]


@pytest.mark.slow
@SETTINGS
@given(data=st.data())
def test_choose_set_equals_choose_sets(data):
    n = data.draw(st.integers(2, N), label="frames")
    cuts = data.draw(st.lists(st.integers(1, n - 1), max_size=6, unique=True), label="cuts")
    block = data.draw(st.integers(2, n + 3), label="block")
    anchors = data.draw(st.lists(st.one_of(st.none(), st.integers(0, n + 5)), max_size=7),
                        label="anchors")
    max_refs = data.draw(st.integers(0, 4), label="max_refs")
    clip = from_arrays(FRAMES[:n], per_frame_props=scene_props(sorted(cuts)))
    _, starts, descs = expected(clip, None, block)
    bank = RefBank(ref_images(len(anchors), len(cuts)), list(anchors))
    whole = SceneScan(starts, True, [descs[s][0] for s in starts], [descs[s][1] for s in starts])
    want = choose_sets(bank, whole, n, max_refs)
    index = SceneIndex(clip, None, block)
    got = [choose_set(bank, index, *index.bounds(s), max_refs) for s in starts]
    assert got == want


def test_reference_descriptors_are_computed_once_per_bank(monkeypatch):
    calls = []
    real = selection.ref_descriptor
    monkeypatch.setattr(selection, "ref_descriptor", lambda img: calls.append(1) or real(img))
    clip = from_arrays(flat_scenes(N, [5, 12, 30]))
    index = SceneIndex(clip, None, 16)
    bank = RefBank(ref_images(4, 0), [None, 3, None, None])
    sets = [choose_set(bank, index, *index.bounds(s), 4) for s in (0, 5, 12, 16, 30, 32)]
    assert len(calls) == 3 and all(s[0] == 1 for s in sets)       # the anchored one first


def synced_refs(n: int, blank: set[int]) -> vs.VideoNode:
    rng = np.random.default_rng(2)
    frames = rng.random((n, 3, 24, 32)).astype(np.float32)
    for b in blank:
        frames[b] = 0.5
    return from_arrays(frames, vs.RGB24)


def test_synced_refs_are_read_lazily_at_scene_starts():
    clip = from_arrays(flat_scenes(N, [5, 12, 30]))
    index = SceneIndex(clip, None, 16)
    refs, reads = counted(synced_refs(N, blank={12}))
    synced = SyncedRefs(refs)
    assert reads == []
    starts = [0, 5, 12, 16, 30, 32]
    sets = {s: choose_set(synced, index, *index.bounds(s), 3) for s in starts}
    assert sets == {s: (() if s == 12 else (s,)) for s in starts}
    assert sorted(set(reads)) == starts
    rgb = synced_refs(N, blank={12})
    for s in [0, 5, 16, 30, 32]:
        f = rgb.get_frame(s)
        img = np.stack([np.asarray(f[p]) for p in range(3)], -1)
        assert synced.images[s].tobytes() == img.tobytes()
    with pytest.raises(KeyError):
        synced.images[12]
    assert choose_set(synced, index, 5, 12, 0) == ()
    before = len(reads)
    choose_set(synced, index, 12, 16, 3)                     # blank: remembered
    assert len(reads) == before


def test_a_synced_refs_frame_that_fails_is_named():
    def bad(n, f):
        if n == 5:
            raise ValueError("broken ref")
        return f
    refs = synced_refs(N, set())
    synced = SyncedRefs(core.std.ModifyFrame(refs, refs, bad))
    assert synced.image(0) is not None
    with pytest.raises(RefError, match="(?s)refs clip frame 5 .*broken ref"):
        synced.image(5)
