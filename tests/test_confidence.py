"""Match confidence: its math, the Confidence clip and prop, one engine for both outputs,
`suggest` on a generated film, and evaluate's correlation."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import vapoursynth as vs

import vsremaster
from vsremaster.model import NetworkC, blocks
from vsremaster.model.confidence import (MATCH_SCALE, attention_confidence, confidence_of,
                                         reference_moments)
from vsremaster.remaster import build
from clips import frame_bytes, from_arrays, moving_pattern, planes, scene_props

core = vs.core
ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "models" / "vsremaster-lite.safetensors"
H, W = 48, 64
SMALL = dict(mindim=48, ref_mindim=32, device_index=-1)


def refs_dir(tmp_path, anchors=(None, None)) -> Path:
    """Two references of two colours each (red with cyan, blue with yellow)."""
    folder = tmp_path / "refs"
    folder.mkdir(exist_ok=True)
    for colour, anchor in zip(((0, 0, 220), (220, 0, 0)), anchors):        # BGR
        img = np.zeros((40, 56, 3), np.uint8)
        img[:] = colour
        img[10:30, 10:40] = 255 - np.array(colour, np.uint8)
        name = f"ref_{anchor:06d}.png" if anchor is not None else f"ref_{colour[0]}x.png"
        cv2.imwrite(str(folder / name), img)
    return folder


# --------------------------------------------------------------------------- the math

def test_confidence_of_known_moments():
    scale = (MATCH_SCALE / 100) ** 2
    # attended pixels of the position's lightness, all one colour: 1
    assert float(confidence_of(torch.tensor([0.5, 0.2, -0.1, 0.05]), torch.tensor(0.5))) == 1.0
    # lightness MATCH_SCALE off: 0.5
    off = torch.tensor([0.5 + MATCH_SCALE / 100, 0.2, -0.1, 0.05])
    assert float(confidence_of(off, torch.tensor(0.5))) == pytest.approx(0.5)
    # two colours +-MATCH_SCALE apart in a*, weighed alike: variance scale, so 0.5
    mixed = torch.tensor([0.5, 0.0, 0.0, scale])
    assert float(confidence_of(mixed, torch.tensor(0.5))) == pytest.approx(0.5)


def test_reference_moments_follow_the_keys_order():
    refs = torch.zeros(1, 2, 3, 16, 32)
    refs[0, 1, 0] = 1.0                               # the second reference is red
    m = reference_moments(refs)
    assert m.shape == (1, 2 * 2 * 4, 4)
    assert torch.allclose(m[0, :8], torch.zeros(8, 4), atol=1e-4)      # black: L 0, ab 0
    red = m[0, 8:]
    assert (red[:, 0] > 0.5).all() and (red[:, 1] > 0.7).all()            # L* 53, a* 80
    assert torch.allclose(red[:, 3], red[:, 1] ** 2 + red[:, 2] ** 2, atol=1e-5)


def test_one_reference_position_attended_gives_its_match():
    # a query that attends one key only: the confidence is that key's match
    q = torch.tensor([[[40.0, 0.0]]])
    k = torch.tensor([[[1.0, 0.0], [-1.0, 0.0]]])
    moments = torch.tensor([[[0.6, 0.3, 0.0, 0.09], [0.1, -0.5, 0.0, 0.25]]])
    got = attention_confidence(q, k, moments, torch.tensor([[0.6]]))
    assert float(got) == pytest.approx(1.0, abs=1e-6)
    # alike weights over both: lightness 0.25 off and a* +-0.4: D = 0.0625 + 0.16
    got = attention_confidence(torch.zeros(1, 1, 2), k, moments, torch.tensor([[0.6]]))
    assert float(got) == pytest.approx(1 / (1 + (0.0625 + 0.16) * (100 / MATCH_SCALE) ** 2))


def test_cpu_attention_gives_the_explicit_pass_and_keeps_its_output_bits(monkeypatch):
    """The CPU's blocked attention computes the confidence from its own weights; the
    explicit pass (what CUDA runs) gives the same values; the output's bits do not change."""
    monkeypatch.setattr(blocks, "_BLOCK_ELEMENTS", 7 * 96)          # several blocks of rows
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 100, 8, generator=g), torch.randn(1, 96, 8, generator=g)
    v = torch.randn(1, 96, 16, generator=g)
    moments = torch.rand(1, 96, 4, generator=g) * 0.3
    lightness = torch.rand(1, 100, generator=g)
    with torch.inference_mode():
        out, conf = blocks._blocked_attention(q, k, v, (moments, lightness))
        plain = blocks._blocked_attention(q, k, v)
        explicit = attention_confidence(q, k, moments, lightness)
    assert torch.equal(out, plain)
    assert (conf - explicit).abs().max() < 1e-5
    assert conf.shape == (1, 100) and (conf >= 0).all() and (conf <= 1).all()
    assert conf.std() > 0                                    # not one value everywhere


def test_encoders_give_the_same_features_and_per_frame_confidence(lite_models):
    _, net = lite_models
    g = torch.Generator().manual_seed(1)
    x = torch.rand(3, 1, 48, 64, generator=g)
    with torch.inference_mode():
        enc = net.encode_refs(torch.rand(1, 2, 3, 32, 48, generator=g))
        skip, deep = net.encode_frame_batch(x, enc)
        skip2, deep2, conf = net.encode_frame_batch(x, enc, True)
        moved = net.encode_frame_batch(x[[1, 2, 0]], enc, True)[2]
        none = net.encode_frame_batch(x, None, True)[2]
    assert torch.equal(skip, skip2) and torch.equal(deep, deep2)
    assert conf.shape == (3, 1, 6, 8) and (conf >= 0).all() and (conf <= 1).all()
    # a frame's bits are its own, whatever frames share its (fixed-size) batch
    assert torch.equal(moved[0], conf[1]) and torch.equal(moved[2], conf[0])
    assert not torch.equal(conf[0], conf[2])
    assert torch.equal(none, torch.zeros_like(none))         # no references: 0


# --------------------------------------------------------------------------- the outputs

@pytest.fixture
def scenes_clip():
    return from_arrays(moving_pattern(20, H, W, seed=4), vs.GRAY8,
                       per_frame_props=scene_props([9]))


def test_confidence_clip_range_size_and_props(lite_weights, scenes_clip, tmp_path):
    refs = refs_dir(tmp_path, anchors=(2, 14))
    conf = vsremaster.Confidence(scenes_clip, refs=str(refs), weights=lite_weights,
                                 chunk=4, **SMALL)
    assert conf.format.id == vs.GRAYS and (conf.width, conf.height) == (W, H)
    assert conf.num_frames == 20
    values, means = [], []
    for n, f in enumerate(conf.frames()):
        values.append(planes(f)[0])
        means.append(f.props["_RemasterConfidence"])
        assert f.props["_RemasterScene"] == (0 if n < 9 else 9)
        assert f.props["_RemasterRefs"] == (0 if n < 9 else 1)     # one-element arrays read as int
    values = np.stack(values)
    assert np.isfinite(values).all() and values.min() >= 0 and values.max() <= 1
    assert values.std() > 0 and 0 < min(means) and max(means) <= 1
    # the prop is the mean of the model-size map, which the upscaled map keeps nearly
    assert np.abs(values.mean((1, 2)) - np.array(means)).max() < 0.02


def test_confidence_is_zero_without_references(lite_weights, scenes_clip):
    conf = vsremaster.Confidence(scenes_clip, weights=lite_weights, chunk=4, **SMALL)
    for n in (0, 13):
        f = conf.get_frame(n)
        assert f.props["_RemasterConfidence"] == 0.0
        assert not planes(f)[0].any()


def test_same_bytes_whatever_the_order(lite_weights, scenes_clip, tmp_path):
    refs = str(refs_dir(tmp_path, anchors=(2, 14)))
    linear = vsremaster.Confidence(scenes_clip, refs=refs, weights=lite_weights, chunk=4, **SMALL)
    everything = [frame_bytes(linear, n) for n in range(20)]
    seeking = vsremaster.Confidence(scenes_clip, refs=refs, weights=lite_weights, chunk=4, **SMALL)
    for n in (17, 3, 11, 0, 19, 8, 9):
        assert frame_bytes(seeking, n) == everything[n], n
    for n in (6, 15):
        alone = vsremaster.Confidence(scenes_clip, refs=refs, weights=lite_weights, chunk=4,
                                      **SMALL)
        assert frame_bytes(alone, n) == everything[n], n


def test_remaster_and_confidence_share_one_computation(lite_weights, tmp_path):
    core.num_threads = 1
    refs = str(refs_dir(tmp_path))
    clip = from_arrays(moving_pattern(20, H, W, seed=5), vs.YUV420P8)
    plain = build(clip, refs, weights=lite_weights, chunk=4, **SMALL)
    plain_bytes = [frame_bytes(plain.clip, n) for n in range(20)]
    colour = build(clip, refs, weights=lite_weights, chunk=4, confidence=True, **SMALL)
    conf = build(clip, refs, weights=lite_weights, chunk=4, output="confidence", **SMALL)
    assert colour.engine is conf.engine and plain.engine is not colour.engine
    for n in range(20):
        c, m = colour.clip.get_frame(n), conf.clip.get_frame(n)
        assert c.props["_RemasterConfidence"] == m.props["_RemasterConfidence"]
        assert 0 < c.props["_RemasterConfidence"] <= 1
        # the colour does not change when the confidence is computed with it
        assert b"".join(p.tobytes() for p in planes(c)) == plain_bytes[n], n
    # each chunk through the networks once for both outputs, as for the colour alone
    assert colour.engine.runs == plain.engine.runs
    assert colour.engine.runs["frames"] == 20      # every frame through the networks once
    assert "_RemasterConfidence" not in plain.clip.get_frame(0).props


def test_shared_parts_hold_the_given_clip_object(lite_weights, scenes_clip):
    """The sharing key holds the clip's id: its parts must keep that very object alive
    (not only the checked clip made from it), or a new clip could get its id and share
    another clip's engine."""
    from vsremaster import remaster
    pipe = build(scenes_clip, None, weights=lite_weights, chunk=4, output="confidence",
                 **SMALL)
    parts = [p for p in list(remaster._shared.values()) if p.engine is pipe.engine]
    assert len(parts) == 1 and parts[0].source is scenes_clip
    other = from_arrays(moving_pattern(20, H, W, seed=5), vs.GRAY8,
                        per_frame_props=scene_props([9]))
    assert build(other, None, weights=lite_weights, chunk=4, **SMALL).engine \
        is not pipe.engine


def test_confidence_after_remaster_recomputes_what_lacks_it(lite_weights, tmp_path):
    refs = str(refs_dir(tmp_path))
    clip = from_arrays(moving_pattern(12, H, W, seed=6), vs.GRAY8)
    colour = build(clip, refs, weights=lite_weights, chunk=4, **SMALL)
    before = frame_bytes(colour.clip, 5)
    conf = build(clip, refs, weights=lite_weights, chunk=4, output="confidence", **SMALL)
    assert conf.engine is colour.engine
    assert 0 < conf.clip.get_frame(5).props["_RemasterConfidence"] <= 1
    assert frame_bytes(colour.clip, 5) == before


def test_scenes_kept_grey_have_confidence_zero(lite_dicts, tmp_path):
    """Weights that keep reference-less scenes grey: such a scene's frames have
    confidence 0 (nothing was matched), the others theirs, from the same engine."""
    from vsremaster.model.checkpoint import save_checkpoint
    from vsremaster.references import fallback
    weights = save_checkpoint(tmp_path / "grey.safetensors", *lite_dicts,
                              name="lite-grey", width="0.25", without_refs="grey")
    clip = from_arrays(moving_pattern(12, H, W, seed=7), vs.GRAY8,
                       per_frame_props=scene_props([6]))
    colours = np.zeros((12, 3, 32, 40), np.float32)
    colours[0, 0], colours[0, 2] = 0.9, 0.2           # frame 0: a red reference; frame 6 blank
    refs = from_arrays(colours, vs.RGB24)
    colour = build(clip, refs, weights=weights, chunk=4, confidence=True, **SMALL)
    conf = build(clip, refs, weights=weights, chunk=4, output="confidence", **SMALL)
    assert colour.engine is conf.engine and colour.ref_sets() == [(0,), ()]
    for n in (7, 11):
        c, m = colour.clip.get_frame(n), conf.clip.get_frame(n)
        assert fallback.NOTE_PROP in c.props
        assert c.props["_RemasterConfidence"] == m.props["_RemasterConfidence"] == 0.0
        assert not planes(m)[0].any()
    for n in (1, 5):
        c, m = colour.clip.get_frame(n), conf.clip.get_frame(n)
        assert fallback.NOTE_PROP not in c.props
        assert 0 < c.props["_RemasterConfidence"] == m.props["_RemasterConfidence"] <= 1
        assert planes(m)[0].max() > 0


def test_arguments_are_checked(lite_weights, scenes_clip):
    with pytest.raises(vs.Error, match="Remaster: confidence=True needs colorize=True"):
        vsremaster.Remaster(scenes_clip, weights=lite_weights, colorize=False,
                            confidence=True, **SMALL)
    with pytest.raises(vs.Error, match="Remaster: confidence must be True or False"):
        vsremaster.Remaster(scenes_clip, weights=lite_weights, confidence=1, **SMALL)
    with pytest.raises(vs.Error, match="Remaster: mindim must be"):
        vsremaster.Confidence(scenes_clip, weights=lite_weights, mindim="big")


@pytest.mark.cuda
def test_cuda_confidence_matches_the_cpu_and_ignores_seeks(lite_weights, tmp_path):
    """On CUDA the confidence comes from the explicit pass (the fused kernels hide the
    weights): close to the CPU's, the same bytes after a seek, and it does not change
    the colour."""
    refs = str(refs_dir(tmp_path, anchors=(2, 14)))
    clip = from_arrays(moving_pattern(24, 64, 96, seed=7), vs.GRAY8,
                       per_frame_props=scene_props([9]))
    kw = dict(weights=lite_weights, mindim=64, ref_mindim=32, chunk=4)
    gpu = vsremaster.Confidence(clip, refs=refs, device_index=0, fp16=False, **kw)
    cpu = vsremaster.Confidence(clip, refs=refs, device_index=-1, **kw)
    for n in (0, 10, 23):
        a, b = planes(gpu.get_frame(n))[0], planes(cpu.get_frame(n))[0]
        assert np.abs(a - b).max() < 1e-3, n
    half = build(clip, refs, device_index=0, output="confidence", **kw)
    linear = [frame_bytes(half.clip, n) for n in range(24)]
    seek = build(clip, refs, device_index=0, output="confidence", **kw)
    for n in (21, 3, 12):
        assert frame_bytes(seek.clip, n) == linear[n], n
    plain = build(core.std.Trim(clip, 0, 23), refs, device_index=0, **kw)   # its own engine
    colour = build(clip, refs, device_index=0, confidence=True, **kw)
    assert not plain.engine.confidence and colour.engine.confidence
    for n in (4, 17):
        assert frame_bytes(colour.clip, n) == frame_bytes(plain.clip, n), n


# --------------------------------------------------------------------------- suggest

def test_rank_scenes_weakest_first():
    from vsremaster.references.suggest import rank_scenes
    conf = [0.9, 0.8, 0.85, 0.2, 0.4, 0.1, 0.6, 0.6]
    scenes = [0, 0, 0, 3, 3, 3, 6, 6]
    ranked = rank_scenes(conf, scenes)
    assert [(s.start, s.stop, s.frame) for s in ranked] == [(3, 6, 5), (6, 8, 6), (0, 3, 1)]
    assert ranked[0].mean == pytest.approx(0.7 / 3) and ranked[0].frame_confidence == 0.1


PER = 8
BASES = [(200, 40, 30), (40, 150, 50), (60, 90, 210), (235, 220, 60)]   # red, green, blue, yellow


def colour_scenes():
    """Four scenes of 8 frames, 64x96, each a textured colour of its own: (RGB frames
    [32, 64, 96, 3] in [0, 1], their CIE Lab)."""
    yy, xx = np.mgrid[0:64, 0:96]
    frames = []
    for s, base in enumerate(BASES):
        for t in range(PER):
            texture = 0.85 + 0.15 * np.sin((xx + 2 * t) / 6.0 + s) * np.cos(yy / 7.0)
            frames.append(np.clip(np.array(base, np.float32) / 255 * texture[..., None], 0, 1))
    rgb = np.stack(frames).astype(np.float32)
    return rgb, np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2LAB) for f in rgb])


def write_ref(folder: Path, rgb: np.ndarray, n: int) -> None:
    cv2.imwrite(str(folder / f"ref_{n:06d}.png"), (rgb[n][..., ::-1] * 255).round().astype(np.uint8))


def scene_ab_error(clip, refs: Path, lab: np.ndarray, scene: int) -> float:
    out = vsremaster.Remaster(clip, refs=str(refs), weights=BUNDLED, mindim=64, ref_mindim=64,
                              device_index=-1)
    rgb = core.resize.Point(out, format=vs.RGBS)
    err = []
    for n in range(scene * PER, (scene + 1) * PER):
        got = cv2.cvtColor(np.clip(np.stack(planes(rgb.get_frame(n)), -1), 0, 1), cv2.COLOR_RGB2LAB)
        err.append(np.sqrt(((got[..., 1:] - lab[n][..., 1:]) ** 2).mean()))
    return float(np.mean(err))


@pytest.mark.slow
def test_suggest_picks_the_scene_without_a_reference_and_its_frame_helps(tmp_path):
    """The bundled model on four scenes of distinct colours with a reference for each
    but the last: `suggest` (on the user's script) names a frame of the last scene, and
    that frame's true colour as a reference lowers the scene's colour error."""
    rgb, lab = colour_scenes()
    np.save(tmp_path / "grey.npy", lab[..., 0] / 100.0)
    refs = tmp_path / "refs"
    refs.mkdir()
    for s in range(3):
        write_ref(refs, rgb, s * PER + PER // 2)
    script = tmp_path / "film.vpy"
    script.write_text(
        "import sys; sys.path.insert(0, %r)\n"
        "import numpy as np, vapoursynth as vs, vsremaster\n"
        "from clips import from_arrays, scene_props\n"
        "clip = from_arrays(np.load(%r), vs.GRAYS, per_frame_props=scene_props([8, 16, 24]))\n"
        "vsremaster.Remaster(clip, refs=%r, weights=%r).set_output()\n"
        % (str(ROOT / "tests"), str(tmp_path / "grey.npy"), str(refs), str(BUNDLED)))
    sheet = tmp_path / "sheet.png"
    cmd = [sys.executable, "-m", "vsremaster", "suggest", str(script), "--refs", str(refs),
           "-n", "2", "--mindim", "64", "--ref-mindim", "64", "--device-index", "-1",
           "--weights", str(BUNDLED), "--sheet", str(sheet), "--no-progress"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert "the source of the script's Remaster" in lines[0]
    report = json.loads(lines[-1])
    first, second = report["suggestions"]
    assert first["scene"] == [24, 31] and 24 <= first["frame"] <= 31
    assert first["mean"] < 0.5 * second["mean"]
    img = cv2.imread(str(sheet))
    assert img is not None and img.shape[0] > 64 and img.shape[1] > 2 * 240

    clip = from_arrays(lab[..., 0] / 100.0, vs.GRAYS, per_frame_props=scene_props([8, 16, 24]))
    without = scene_ab_error(clip, refs, lab, 3)
    write_ref(refs, rgb, first["frame"])
    with_it = scene_ab_error(clip, refs, lab, 3)
    assert with_it < 0.5 * without, (without, with_it)


def test_suggest_refuses_what_it_cannot_use(tmp_path):
    cmd = [sys.executable, "-m", "vsremaster", "suggest", str(tmp_path / "none.mkv"),
           "--refs", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "suggest: " in proc.stderr and "Traceback" not in proc.stderr


# --------------------------------------------------------------------------- evaluate

def test_spearman():
    from vsremaster.evaluation.confidence import spearman
    assert spearman([1, 2, 3, 4], [10, 20, 25, 100]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ties share their mean rank: ranks (0, 1.5, 1.5, 3) against (0, 2, 1, 3)
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(4.5 / np.sqrt(4.5 * 5))
    assert np.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_evaluate_reports_the_correlation(tmp_path):
    from vsremaster.model import NetworkR
    from vsremaster.model.checkpoint import save_checkpoint
    torch.manual_seed(0)
    weights = save_checkpoint(tmp_path / "tiny.safetensors", NetworkR(0.125).state_dict(),
                              NetworkC(0.125).state_dict(), name="tiny-random")
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    for t in range(8):
        frame = np.zeros((48, 64, 3), np.uint8)
        frame[:, : 8 * t + 8] = (40, 90, 200)
        writer.write(frame)
    writer.release()
    cmd = [sys.executable, "-m", "vsremaster", "evaluate", str(clip), "--weights", str(weights),
           "--frames", "8", "--mindim", "32", "--device", "cpu", "--threads", "1"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "match confidence against per-frame colour error" in proc.stdout
    record = json.loads(proc.stdout.strip().splitlines()[-1])["confidence"]
    assert record["frames"] == 8 and isinstance(record["spearman_ab"], float)
    assert -1 <= record["spearman_ab"] <= 1
    clip_record = record["clips"][0]
    assert clip_record["clip"] == "clip.avi" and len(clip_record["confidence"]) == 8
    assert all(0 <= c <= 1 for c in clip_record["confidence"])
