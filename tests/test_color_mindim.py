"""`color_mindim`: the colorization at a smaller size than the restoration (issue 35).

The restoration runs at `mindim`; its L is brought down to the colour size for the
colorization network and the ab (and confidence) brought back up to model size
(vsremaster.model.sizes). At the model size nothing is resized: today's bits.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import vapoursynth as vs

import vsremaster
from vsremaster import remaster as remaster_module
from vsremaster.model import to_colour_size, to_model_size
from vsremaster.remaster import build
from clips import frame_bytes, from_arrays, moving_pattern, planes, scene_props

core = vs.core
H, W = 64, 96                       # model size at mindim 64: 64x96; colour 32: 32x48
SMALL = dict(mindim=64, ref_mindim=32, device_index=-1, fp16=False)


@pytest.fixture(scope="module")
def grey():
    return moving_pattern(16, H, W, seed=5)


def _refs(tmp_path):
    import cv2
    paths = []
    for i, colour in enumerate(((0, 0, 220), (220, 60, 0))):          # BGR: red, blue
        img = np.zeros((40, 56, 3), np.uint8)
        img[:] = colour
        img[10:30, 10:40] = 255 - np.array(colour, np.uint8)
        cv2.imwrite(str(tmp_path / f"ref_{i}.png"), img)
        paths.append(str(tmp_path / f"ref_{i}.png"))
    return paths


def _all_bytes(clip, frames=None):
    return [frame_bytes(clip, n) for n in (frames or range(clip.num_frames))]


def _results(pipe, frames):
    """Each frame's model-size results (delta, ab) from the engine's finished cells."""
    out = {}
    for n in frames:
        pipe.clip.get_frame(n)
        done = pipe.engine.results.get(pipe.engine.grid.cell_of(n).start)
        fin, j = done.finished, n - done.cell.start
        out[n] = (fin.delta[j].clone(), fin.ab[j].clone())
    return out


def test_colour_size_of_model_size_runs_no_resize_and_keeps_todays_bytes(lite_weights, grey,
                                                                        monkeypatch):
    clip = from_arrays(grey[:8], vs.YUV420P8)
    today = _all_bytes(vsremaster.Remaster(clip, weights=lite_weights, chunk=4, **SMALL))
    calls = []
    from vsremaster.engine import streams
    for name in ("to_colour_size", "to_model_size"):
        monkeypatch.setattr(streams, name, lambda *a, name=name: calls.append(name))
    for value in (None, 64):
        pipe = build(clip, weights=lite_weights, chunk=4, color_mindim=value, **SMALL)
        assert pipe.engine.stream.sizes is None
        assert _all_bytes(pipe.clip) == today, value
    assert calls == []


def test_smaller_colour_size_changes_the_colour_not_the_restoration(lite_weights, grey):
    clip = from_arrays(grey[:8], vs.GRAYS)
    full = build(clip, weights=lite_weights, chunk=4, **SMALL)
    half = build(clip, weights=lite_weights, chunk=4, color_mindim=32, **SMALL)
    assert half.engine.colour_size == (32, 48) and half.engine.size == (64, 96)
    a, b = _results(full, range(8)), _results(half, range(8))
    for n in range(8):
        assert torch.equal(a[n][0], b[n][0]), n            # restoration at mindim: same delta
        assert b[n][1].shape == a[n][1].shape == (2, 64, 96)   # ab back at model size
        assert not torch.equal(a[n][1], b[n][1])
        assert float((a[n][1] - b[n][1]).abs().mean()) < 0.1   # the same colouring, coarser
    out = half.clip.get_frame(3)
    assert (out.width, out.height) == (W, H)
    assert all(np.isfinite(p).all() for p in planes(out))


def test_colour_is_the_scene_decoded_at_the_colour_size(lite_weights, lite_models, grey):
    """With restore=False, each frame's ab is the whole scene's model-size L brought to the
    colour size, encoded and decoded there, and brought back: cells, pushes and seeks aside."""
    from vsremaster.model.decoding import decode_scene
    from vsremaster.model.fold import fold_batchnorm
    clip = from_arrays(grey, vs.GRAYS, per_frame_props=scene_props([9]))
    pipe = build(clip, weights=lite_weights, restore=False, chunk=5, color_mindim=32, **SMALL)
    got = {}
    for n in (12, 2, 15, 7):                    # seeks: cold starts and resumed streams
        pipe.clip.get_frame(n)
        done = pipe.engine.results.get(pipe.engine.grid.cell_of(n).start)
        got[n] = done.finished.ab[n - done.cell.start]
    small = np.stack([planes(f)[0] for f in _small(clip).frames()])
    small = torch.from_numpy(small)[:, None].clamp(0, 1)
    net = fold_batchnorm(copy.deepcopy(lite_models[1]))
    with torch.no_grad():
        for lo, hi in ((0, 9), (9, 16)):
            skip, deep = net.encode_frame_batch(to_colour_size(small[lo:hi], (32, 48)))
            ab = to_model_size(decode_scene(net, skip, deep), (64, 96))
            for n, value in got.items():
                if lo <= n < hi:
                    assert (value - ab[n - lo]).abs().max() < 1e-4, n


def _small(clip):
    from vsremaster.frames.source import model_input
    return model_input(clip, 96, 64)


@pytest.mark.slow
def test_same_bytes_in_any_order_after_seeks_and_with_any_thread_count(lite_weights, tmp_path):
    grey = moving_pattern(30, H, W, seed=7)
    clip = from_arrays(grey, vs.YUV420P8, per_frame_props=scene_props([13]))
    refs = _refs(tmp_path)
    args = dict(weights=lite_weights, refs=refs, chunk=4, color_mindim=32, **SMALL)
    core.num_threads = 1
    linear = build(clip, **args)
    everything = _all_bytes(linear.clip)
    assert linear.engine.runs["cold"] == 2              # one stream per scene
    seek = build(clip, **args)
    for n in (25, 3, 14, 29, 0, 12, 26):
        assert frame_bytes(seek.clip, n) == everything[n], n
    core.num_threads = 4
    threaded = vsremaster.Remaster(clip, **args)
    got = [b"".join(p.tobytes() for p in planes(f))
           for f in threaded.frames(prefetch=8, backlog=16)]
    assert got == everything
    default = _all_bytes(vsremaster.Remaster(clip, **{**args, "color_mindim": None}))
    assert default != everything


def test_confidence_takes_color_mindim(lite_weights, tmp_path):
    clip = from_arrays(moving_pattern(8, H, W, seed=2), vs.GRAY8)
    refs = _refs(tmp_path)
    args = dict(weights=lite_weights, refs=refs, chunk=4, **SMALL)
    conf = vsremaster.Confidence(clip, color_mindim=32, **args)
    assert conf.format.id == vs.GRAYS and (conf.width, conf.height) == (W, H)
    colour = vsremaster.Remaster(clip, color_mindim=32, **args)
    # the two share one engine, which colours at 32x48
    engines = {id(p.engine) for p in remaster_module._shared.values()
               if p.source is clip and p.engine.colour_size == (32, 48)}
    assert len(engines) == 1 and colour.num_frames == 8
    values = np.stack([planes(f)[0] for f in conf.frames()])
    assert np.isfinite(values).all() and 0 <= values.min() and values.max() <= 1
    assert values.std() > 0
    full = np.stack([planes(f)[0] for f in
                     vsremaster.Confidence(clip, **args).frames()])
    assert not np.array_equal(values, full)
    # the prop is the mean of the model-size map, which the upscaled map keeps nearly
    means = [f.props["_RemasterConfidence"] for f in conf.frames()]
    assert np.abs(values.mean((1, 2)) - np.array(means)).max() < 0.02


def test_preview_caps_the_colour_size(lite_weights, grey):
    clip = from_arrays(grey[:4], vs.GRAY8)
    args = dict(weights=lite_weights, chunk=4, device_index=-1, preview=True)
    # preview runs at 64 here (mindim below the preview's 160): color_mindim 48 applies
    p = build(clip, mindim=64, color_mindim=48, **args)
    assert p.engine.size == (64, 96) and p.engine.colour_size == (48, 64)
    p.clip.get_frame(1)
    # a large mindim: the preview's 160 is the model size, and caps the colour size too
    big = from_arrays(moving_pattern(4, 160, 240, seed=1), vs.GRAY8)
    q = build(big, mindim=320, color_mindim=240, **args)
    assert q.engine.size == q.engine.colour_size == (160, 240)
    assert q.engine.stream.sizes is None


@pytest.mark.parametrize("value,message", [
    (80, "Remaster: color_mindim 80 is above mindim 64; allowed: 32 to mindim, or None "
         "(the colorization at mindim)"),
    (16, "Remaster: color_mindim must be an integer from 32 to 4320 or None, not 16"),
    (True, "Remaster: color_mindim must be an integer from 32 to 4320 or None, not True"),
    (32.0, "Remaster: color_mindim must be an integer from 32 to 4320 or None, not 32.0"),
    ("32", "Remaster: color_mindim must be an integer from 32 to 4320 or None, not '32'"),
])
@pytest.mark.parametrize("filt", ["Remaster", "Confidence"])
def test_bad_color_mindim_is_refused_before_anything_is_made(lite_weights, grey, value,
                                                             message, filt, monkeypatch):
    clip = from_arrays(grey[:4], vs.GRAY8)
    made = []
    monkeypatch.setattr(remaster_module, "_parts", lambda *a, **k: made.append(a))
    monkeypatch.setattr(remaster_module, "load_models", lambda *a, **k: made.append(a))
    before = len(remaster_module._shared)
    with pytest.raises(vs.Error) as e:
        getattr(vsremaster, filt)(clip, weights=lite_weights, color_mindim=value, **SMALL)
    assert str(e.value) == message
    assert made == [] and len(remaster_module._shared) == before


def test_the_evaluation_colours_at_the_colour_size_as_the_filter(lite_models):
    from vsremaster.evaluation import protocol
    model_r, model_c = lite_models
    grey, refs = torch.rand(5, 1, 64, 96), torch.rand(1, 3, 32, 48)
    same = protocol.remaster(model_r, model_c, grey, refs, chunk=5)
    assert all(torch.equal(a, b) for a, b in
               zip(same, protocol.remaster(model_r, model_c, grey, refs, 5, "cpu", (64, 96))))
    l, ab = protocol.remaster(model_r, model_c, grey, refs, 5, "cpu", (32, 48))
    assert torch.equal(l, same[0]) and ab.shape == (5, 2, 64, 96)
    with torch.no_grad():
        restored = model_r(grey.transpose(0, 1)[None])[0].transpose(0, 1)
        small = to_colour_size(restored, (32, 48)).transpose(0, 1)[None]
        direct = to_model_size(model_c(small, refs[None])[0].transpose(0, 1), (64, 96))
    torch.testing.assert_close(ab, direct, atol=1e-5, rtol=1e-4)
    assert not torch.equal(ab, same[1])


def test_evaluate_command_takes_and_checks_color_mindim(tmp_path, lite_weights):
    import json
    import subprocess
    import sys
    from pathlib import Path

    import cv2
    root = Path(__file__).resolve().parents[1]
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 25, (96, 64))
    for f in moving_pattern(5, 64, 96, seed=3):
        writer.write(cv2.cvtColor((np.stack([f, f[::-1], 1 - f], -1) * 255).astype(np.uint8),
                                  cv2.COLOR_RGB2BGR))
    writer.release()
    cmd = [sys.executable, "-m", "vsremaster", "evaluate", str(clip), "--weights",
           str(lite_weights), "--frames", "5", "--mindim", "64", "--device", "cpu",
           "--threads", "1", "--temporal", "none", "--no-confidence"]
    bad = subprocess.run(cmd + ["--color-mindim", "80"], cwd=root, capture_output=True,
                         text=True, timeout=300)
    assert bad.returncode == 2 and bad.stdout == ""
    assert "--color-mindim 80: allowed: 32 to --mindim (64)" in bad.stderr
    runs = [subprocess.run(cmd + extra, cwd=root, capture_output=True, text=True, timeout=300)
            for extra in ([], ["--color-mindim", "32"])]
    assert all(r.returncode == 0 for r in runs), runs[-1].stderr[-2000:]
    full, half = (json.loads(r.stdout.strip().splitlines()[-1]) for r in runs)
    assert (full["color_mindim"], half["color_mindim"]) == (None, 32)
    assert full["psnr_l"] == half["psnr_l"] and full["psnr_ab"] != half["psnr_ab"]


def _grey_video(path, n: int, seed: int):
    """A grey 96x64 MJPG video of `n` moving-pattern frames (decoded as a user's file is)."""
    import cv2
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 24, (96, 64),
                             isColor=False)
    for f in moving_pattern(n, 64, 96, seed=seed):
        writer.write((f * 255).astype(np.uint8))
    writer.release()
    return path


def test_the_sample_script_takes_color_mindim_as_vspipe_and_render_pass_it(tmp_path,
                                                                          lite_weights):
    """`vspipe -a color_mindim=N` and `render ... -a color_mindim=N` set the script's
    global; the sample script hands it to Remaster (render plans nothing by mindim)."""
    import runpy
    from pathlib import Path

    video = _grey_video(tmp_path / "clip.avi", 4, seed=6)
    sample = Path(__file__).resolve().parents[1] / "samples" / "remaster.vpy"
    args = {"input": str(video), "mindim": "64", "weights": str(lite_weights)}
    for given, colour in (({}, (64, 96)), ({"color_mindim": "32"}, (32, 48))):
        vs.clear_outputs()
        runpy.run_path(str(sample), init_globals={**args, **given})
        out = vs.get_output(0)
        out = out.clip if hasattr(out, "clip") else out
        assert (out.width, out.height) == (96, 64)
        engines = [p.engine for p in list(remaster_module._shared.values())
                   if p.source.width == 96 and p.engine.size == (64, 96)]
        assert engines and engines[-1].colour_size == colour
    vs.clear_outputs()


def test_info_says_what_color_mindim_measured():
    from vsremaster.commands.info import colour_size_note
    lite = colour_size_note("vsremaster-lite-step2500")
    assert "color_mindim=320" in lite and "27.46" in lite and "faster" in lite
    assert "not measured" in colour_size_note("someone-else")


@pytest.mark.slow
def test_render_takes_color_mindim_through_the_script(tmp_path, lite_weights):
    """`python -m vsremaster render SCRIPT OUT -a color_mindim=N` (real vspipe workers)
    gives the bytes one `vspipe -a color_mindim=N` run gives, other bytes than at the
    model size; a value above mindim stops the render with the filter's error and leaves
    no output file."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from vsremaster.render.media import vspipe
    root = Path(__file__).resolve().parents[1]
    video = _grey_video(tmp_path / "clip.avi", 6, seed=8)
    sample = root / "samples" / "remaster.vpy"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(root)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    args = ["-a", f"input={video}", "-a", "mindim=64", "-a", f"weights={lite_weights}"]

    def render(colour: int, name: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "vsremaster", "render", str(sample),
                               str(tmp_path / name), "--workers", "1", "--no-progress",
                               *args, "-a", f"color_mindim={colour}"],
                              capture_output=True, text=True, env=env, cwd=tmp_path,
                              timeout=600)
    for colour in (32, 64):
        done = render(colour, f"c{colour}.y4m")
        assert done.returncode == 0, done.stderr
    direct = subprocess.run([vspipe(), "-c", "y4m", *args, "-a", "color_mindim=32",
                             str(sample), "-"], capture_output=True, env=env, timeout=600)
    assert direct.returncode == 0, direct.stderr.decode(errors="replace")
    small, full = (tmp_path / "c32.y4m").read_bytes(), (tmp_path / "c64.y4m").read_bytes()
    assert small == direct.stdout and small != full
    refused = render(80, "c80.y4m")
    assert refused.returncode != 0
    assert "Remaster: color_mindim 80 is above mindim 64" in refused.stderr, refused.stderr
    assert not (tmp_path / "c80.y4m").exists()
