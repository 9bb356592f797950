"""The filter end to end on in-memory clips, with the seeded weights (tests/seeded.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import vapoursynth as vs

import vsremaster
from vsremaster.model import RESTORE_RADIUS
from vsremaster.remaster import build
from clips import frame_bytes, from_arrays, moving_pattern, planes, scene_props

core = vs.core
H, W = 48, 64
SMALL = dict(mindim=48, ref_mindim=32, device_index=-1)


def red_and_blue_refs(tmp_path, anchors=(None, None)):
    paths = []
    import cv2
    for colour, anchor in zip(((0, 0, 220), (220, 0, 0)), anchors):   # BGR: red, blue
        img = np.zeros((40, 56, 3), np.uint8)
        img[:] = colour
        img[10:30, 10:40] = 255 - np.array(colour, np.uint8)
        name = f"ref_{anchor:06d}.png" if anchor is not None else f"ref_{colour[0]}x.png"
        cv2.imwrite(str(tmp_path / name), img)
        paths.append(tmp_path / name)
    return paths


@pytest.fixture
def grey(request):
    return moving_pattern(20, H, W, seed=1)


OUT_FORMATS = [
    (vs.GRAY8, vs.YUV444P8), (vs.GRAY16, vs.YUV444P16), (vs.GRAYS, vs.YUV444PS),
    (vs.YUV420P8, vs.YUV444P8), (vs.YUV422P10, vs.YUV444P10), (vs.YUV444P16, vs.YUV444P16),
    (vs.YUV420PS, vs.YUV444PS), (vs.YUV444PH, vs.YUV444PH),
    (vs.RGB24, vs.RGB24), (vs.RGB48, vs.RGB48), (vs.RGBS, vs.RGBS), (vs.RGBH, vs.RGBH),
]


@pytest.mark.parametrize("fmt,expected", OUT_FORMATS, ids=lambda f: core.get_video_format(f).name)
def test_every_format_round_trips(lite_weights, grey, fmt, expected):
    clip = from_arrays(grey[:6], fmt)
    out = vsremaster.Remaster(clip, weights=lite_weights, chunk=6, **SMALL)
    assert out.format.id == core.get_video_format(expected).id
    assert (out.width, out.height, out.num_frames) == (W, H, 6)
    f = out.get_frame(2)
    assert all(np.isfinite(p).all() for p in planes(f))
    if out.format.color_family == vs.YUV:     # colorized: chroma is not flat any more
        assert max(float(np.std(p)) for p in planes(f)[1:]) > 0


@pytest.mark.parametrize("fmt", [vs.GRAY8, vs.YUV420P8, vs.RGB24])
def test_colorize_false_keeps_colour_family(lite_weights, grey, fmt):
    clip = from_arrays(grey[:4], fmt)
    out = vsremaster.Remaster(clip, weights=lite_weights, colorize=False, chunk=4, **SMALL)
    assert out.format.id == clip.format.id


def test_restore_false_colorize_false_is_identity_on_luma(lite_weights, grey):
    clip = from_arrays(grey[:4], vs.YUV444P16)
    out = vsremaster.Remaster(clip, weights=lite_weights, restore=False, colorize=False, **SMALL)
    for n in range(4):
        a, b = planes(clip.get_frame(n)), planes(out.get_frame(n))
        assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_luma_keeps_full_resolution_detail_where_restoration_changes_nothing(lite_weights):
    # A frame of fine detail the model size cannot hold: the upscaled change is added
    # to the full-size input, so the detail survives.
    frames = moving_pattern(4, 96, 128, seed=3)
    frames[:, ::2, :] += 0.1
    clip = from_arrays(np.clip(frames, 0, 1), vs.GRAYS)
    out = vsremaster.Remaster(clip, weights=lite_weights, colorize=False, mindim=32, device_index=-1)
    res = planes(out.get_frame(1))[0]
    rows = res[::2].mean() - res[1::2].mean()
    assert rows > 0.05


def test_frame_alone_equals_linear_render(lite_weights, grey):
    clip = from_arrays(grey, vs.YUV420P8, per_frame_props=scene_props([11]))
    linear = vsremaster.Remaster(clip, weights=lite_weights, chunk=4, **SMALL)
    everything = [b"".join(p.tobytes() for p in planes(f)) for f in linear.frames()]
    for n in (0, 5, 11, 19, 7):
        alone = vsremaster.Remaster(clip, weights=lite_weights, chunk=4, **SMALL)
        assert frame_bytes(alone, n) == everything[n], n


def test_linear_render_pushes_each_frame_once(lite_weights, grey):
    core.num_threads = 1
    clip = from_arrays(grey, vs.GRAY8)
    pipe = build(clip, weights=lite_weights, chunk=4, **SMALL)
    for _ in pipe.clip.frames():
        pass
    runs = pipe.engine.runs
    # one stream from the scene's first frame: every source frame through the networks once
    assert runs["frames"] == 20 and runs["cold"] == 1
    # with more threads a cell may start cold when the one before is not yet being computed,
    # but no cell is computed twice, and the bytes are the same
    core.num_threads = 4
    again = build(clip, weights=lite_weights, chunk=4, **SMALL)
    assert [frame_bytes(again.clip, n) for n in range(20)] == \
        [frame_bytes(pipe.clip, n) for n in range(20)]
    assert again.engine.runs["push"] <= 5


def test_long_prefetch_still_computes_each_chunk_once(lite_weights):
    # more frames in flight than the finished-chunk cache holds: requests planned for a
    # chunk share its result, so the chunk is not computed again after being dropped
    core.num_threads = 8
    grey = moving_pattern(48, H, W, seed=9)
    pipe = build(from_arrays(grey, vs.GRAY8), weights=lite_weights, restore=False,
                 chunk=4, **SMALL)
    for _ in pipe.clip.frames(prefetch=16, backlog=48):
        pass
    assert pipe.engine.results.size < 48 // 4
    assert pipe.engine.runs["push"] <= 12


def test_scene_isolation(lite_weights, grey):
    cut = scene_props([10])
    a = from_arrays(grey, vs.GRAY8, per_frame_props=cut)
    changed = grey.copy()
    changed[10:] = 1 - changed[10:]
    b = from_arrays(changed, vs.GRAY8, per_frame_props=cut)
    out_a = vsremaster.Remaster(a, weights=lite_weights, chunk=8, **SMALL)
    out_b = vsremaster.Remaster(b, weights=lite_weights, chunk=8, **SMALL)
    for n in range(10):
        assert frame_bytes(out_a, n) == frame_bytes(out_b, n), n
    assert frame_bytes(out_a, 12) != frame_bytes(out_b, 12)


def test_scene_detection_when_no_props(lite_weights, grey):
    changed = grey.copy()
    changed[8:] = 1 - changed[8:]
    clip = from_arrays(changed, vs.GRAY8)
    pipe = build(clip, weights=lite_weights, **SMALL)
    assert pipe.scene_starts() == [0, 8] and not pipe.scenes.from_props
    assert pipe.clip.get_frame(9).props["_RemasterScene"] == 8      # the scene's first frame
    # props win over detection unless sc_threshold is given
    marked = from_arrays(changed, vs.GRAY8, per_frame_props=scene_props([15]))
    assert build(marked, weights=lite_weights, **SMALL).scene_starts() == [0, 15]
    assert build(marked, weights=lite_weights, sc_threshold=0.2, **SMALL).scene_starts() == [0, 8]


def test_reference_sets_swap_at_the_cut(lite_weights, grey, tmp_path):
    red_and_blue_refs(tmp_path, anchors=(3, 14))
    clip = from_arrays(grey, vs.GRAY8, per_frame_props=scene_props([10]))
    out = vsremaster.Remaster(clip, refs=str(tmp_path), weights=lite_weights, chunk=4, **SMALL)
    # VapourSynth hands a one-element array back as a plain int
    used = [tuple(np.atleast_1d(f.props["_RemasterRefs"])) for f in out.frames()]
    assert used[:10] == [(0,)] * 10 and used[10:] == [(1,)] * 10
    assert [f.props["_RemasterScene"] for f in out.frames()] == [0] * 10 + [10] * 10


def test_references_change_colours(lite_weights, grey, tmp_path):
    red, blue = red_and_blue_refs(tmp_path)
    clip = from_arrays(grey[:6], vs.GRAY8)
    with_red = vsremaster.Remaster(clip, refs=[red], weights=lite_weights, **SMALL)
    with_blue = vsremaster.Remaster(clip, refs=[blue], weights=lite_weights, **SMALL)
    assert frame_bytes(with_red, 2) != frame_bytes(with_blue, 2)


def test_synchronised_reference_clip(lite_weights, grey):
    clip = from_arrays(grey, vs.GRAY8, per_frame_props=scene_props([10]))
    colours = np.zeros((20, 3, H, W), np.float32)
    colours[0, 0] = 0.9        # scene 0 starts with a red reference; scene 1's is blank
    refs = from_arrays(colours, vs.RGB24)
    pipe = build(clip, refs=refs, weights=lite_weights, **SMALL)
    assert pipe.bank.synced and pipe.ref_sets() == [(0,), ()]
    assert "_RemasterRefs" not in pipe.clip.get_frame(12).props


def test_reference_bank_clip_with_anchor_props(lite_weights, grey):
    clip = from_arrays(grey, vs.GRAY8, per_frame_props=scene_props([10]))
    colours = np.random.default_rng(0).random((3, 3, 40, 40)).astype(np.float32)
    refs = from_arrays(colours, vs.RGB24, per_frame_props={1: {"_RemasterAnchor": 15}})
    pipe = build(clip, refs=refs, weights=lite_weights, max_refs=2, **SMALL)
    sets = pipe.ref_sets()
    assert sets[1][0] == 1           # anchored inside scene 1
    assert sets[0][0] == 1           # nearest anchored one for scene 0
    assert all(len(s) == 2 for s in sets)


def test_props_kept_and_set(lite_weights, grey):
    clip = from_arrays(grey[:5], vs.YUV420P8, props={"MyProp": 42, "_FieldBased": 0})
    out = vsremaster.Remaster(clip, weights=lite_weights, **SMALL)
    props = out.get_frame(3).props
    assert props["MyProp"] == 42 and props["_FieldBased"] == 0
    assert props["_RemasterScene"] == 0 and props["_RemasterModel"] == "seeded-lite"
    # the colour props describe the composed output: sRGB curve, BT.709 primaries
    assert (props["_Matrix"], props["_Primaries"], props["_Transfer"]) == (1, 1, 13)


def small_frames(clip, w=W, h=H):
    from vsremaster.frames.source import frame_array, model_input
    return np.stack([frame_array(f) for f in model_input(clip, w, h).frames()])


def test_restoration_in_cells_equals_one_pass_over_the_scene(lite_weights, lite_models, grey):
    model_r, _ = lite_models
    clip = from_arrays(grey, vs.GRAYS)
    pipe = build(clip, weights=lite_weights, colorize=False, chunk=3, mindim=48, device_index=-1, fp16=False)
    pipe.engine.step = 2                      # pushes split in steps of two frames
    # frames in order on one thread: with more (the core's default is one per CPU), a cell
    # may start cold when the one before is not yet being computed (test_linear_render_...)
    core.num_threads = 1
    got = [planes(f)[0] for f in pipe.clip.frames()]
    assert pipe.engine.runs["frames"] == 20
    small = small_frames(clip)
    with torch.no_grad():
        whole = model_r(torch.from_numpy(small)[None, None])[0, 0].numpy()
    from vsremaster.finish.compose import compose
    for n in range(20):
        change = torch.from_numpy(whole[n] - small[n])[None]
        expect = compose(torch.from_numpy(grey[n])[None], change, None, None)[0].numpy()
        assert np.abs(got[n] - expect).max() < 1e-4, n
    assert RESTORE_RADIUS == 13


def test_colour_equals_the_whole_scene_decoded_frame_by_frame(lite_weights, lite_models, grey):
    """Cells, pushes and seeks aside, each frame's ab is the local-window decoding of its
    scene: the per-frame encoders and `decode_scene` over the whole scene at once."""
    from vsremaster.model.decoding import decode_scene
    from vsremaster.model.fold import fold_batchnorm
    _, model_c = lite_models
    clip = from_arrays(grey, vs.GRAYS, per_frame_props=scene_props([12]))
    pipe = build(clip, weights=lite_weights, restore=False, chunk=5, mindim=48, device_index=-1, fp16=False)
    got = {}
    for n in (13, 2, 19, 7):                   # seeks: cold starts and resumed streams
        pipe.clip.get_frame(n)
        done = pipe.engine.results.get(pipe.engine.grid.cell_of(n).start)
        got[n] = done.finished.ab[n - done.cell.start]
    small = torch.from_numpy(small_frames(clip))[:, None].clamp(0, 1)
    import copy
    net = fold_batchnorm(copy.deepcopy(model_c))
    with torch.no_grad():
        for lo, hi in ((0, 12), (12, 20)):
            skip, deep = net.encode_frame_batch(small[lo:hi])
            ab = decode_scene(net, skip, deep)
            for n, value in got.items():
                if lo <= n < hi:
                    assert (value - ab[n - lo]).abs().max() < 1e-4, n


@pytest.mark.slow
def test_seeks_cost_one_cell_and_the_warm_up_and_keep_the_bytes(lite_weights):
    grey = moving_pattern(60, H, W, seed=3)
    clip = from_arrays(grey, vs.GRAY8)
    linear = build(clip, weights=lite_weights, chunk=4, **SMALL)
    everything = [frame_bytes(linear.clip, n) for n in range(60)]
    seek = build(clip, weights=lite_weights, chunk=4, **SMALL)
    lag = seek.engine.lag
    assert lag == RESTORE_RADIUS + 22
    assert frame_bytes(seek.clip, 45) == everything[45]
    # a cold start: the cell [44, 48) from lag frames before it up to lag frames after
    assert seek.engine.runs == {"push": 1, "cold": 1, "frames": 60 - (44 - lag), "refs": 0}
    assert frame_bytes(seek.clip, 49) == everything[49]      # resumes: no cold start
    assert seek.engine.runs["cold"] == 1
    for n in (59, 30, 29, 2, 46, 21):
        assert frame_bytes(seek.clip, n) == everything[n], n


def test_chunk_context_sees_seven_frames_of_edge_replicated_context(lite_weights, lite_models, grey):
    import copy
    from vsremaster.model.fold import fold_batchnorm
    model_c = fold_batchnorm(copy.deepcopy(lite_models[1]))     # as the engine runs it
    clip = from_arrays(grey[:12], vs.GRAYS)
    pipe = build(clip, weights=lite_weights, restore=False, chunk=4, mindim=48,
                 device_index=-1, context="chunk", fp16=False)      # as the float32 model
    for _ in pipe.clip.frames():
        pass
    small = torch.from_numpy(small_frames(clip)).clamp(0, 1)
    # the cell [4, 8) is decoded from frames -3..14 with the scene's ends replicated,
    # the cell [0, 4) from frames -7..10
    for start, window in ((4, [0] * 3 + list(range(12)) + [11] * 3), (0, [0] * 7 + list(range(11)))):
        with torch.no_grad():
            ab = model_c(small[window][None, None])[0, :, 7:11].permute(1, 0, 2, 3)
        got = pipe.engine.results.get(start).finished.ab
        assert (got - ab).abs().max() < 1e-4


@pytest.mark.slow
def test_rendering_writes_no_file_anywhere(lite_weights, tmp_path):
    """A whole render in a fresh process whose home, temp and working folders are empty."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    refs = tmp_path / "refs"
    refs.mkdir()
    red_and_blue_refs(refs, anchors=(2, 12))
    places = {name: tmp_path / name for name in ("home", "tmp", "cache", "data", "cwd")}
    for folder in places.values():
        folder.mkdir()
    repo = Path(vsremaster.__file__).parents[1]
    script = (
        "import sys; sys.path.insert(0, %r)\n"
        "import vapoursynth as vs, vsremaster\n"
        "from clips import from_arrays, moving_pattern, scene_props\n"
        "clip = from_arrays(moving_pattern(20, 48, 64), vs.YUV420P8, per_frame_props=scene_props([9]))\n"
        "out = vsremaster.Remaster(clip, refs=%r, weights=%r, mindim=48, ref_mindim=32,\n"
        "                          chunk=4, device_index=-1)\n"
        "print(sum(1 for _ in out.frames()))\n"
    ) % (str(repo / "tests"), str(refs), str(lite_weights))
    env = dict(os.environ, HOME=str(places["home"]), TMPDIR=str(places["tmp"]),
               XDG_CACHE_HOME=str(places["cache"]), XDG_DATA_HOME=str(places["data"]),
               PYTHONDONTWRITEBYTECODE="1")
    before = {p for p in repo.rglob("*") if ".git" not in p.parts and ".venv" not in p.parts}
    run = subprocess.run([sys.executable, "-c", script], cwd=places["cwd"], env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "20"
    for name, folder in places.items():
        assert list(folder.rglob("*")) == [], name
    after = {p for p in repo.rglob("*") if ".git" not in p.parts and ".venv" not in p.parts}
    assert {p for p in after - before if "__pycache__" not in p.parts
            and ".pytest_cache" not in p.parts and ".hypothesis" not in p.parts} == set()
