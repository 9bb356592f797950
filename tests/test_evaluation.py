"""Evaluation: metrics against known values, the protocol, the suite, the evaluate command."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from vsremaster.evaluation import metrics, protocol, suites
from vsremaster.frames.source import processing_size

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 0.125

# Test pairs and CIEDE2000 values published by Sharma, Wu & Dalal (2005), Table 1.
SHARMA = [
    ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
    ((50.0, 3.1571, -77.2803), (50.0, 0.0, -82.7485), 2.8615),
    ((50.0, 2.8361, -74.0200), (50.0, 0.0, -82.7485), 3.4412),
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
    ((50.0, 2.4900, -0.0010), (50.0, -2.4900, 0.0009), 7.1792),
    ((50.0, 2.4900, -0.0010), (50.0, -2.4900, 0.0011), 7.2195),
    ((50.0, -0.0010, 2.4900), (50.0, 0.0009, -2.4900), 4.8045),
    ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
    ((50.0, 2.5, 0.0), (61.0, -5.0, 29.0), 22.8977),
    ((50.0, 2.5, 0.0), (56.0, -27.0, -3.0), 31.9030),
    ((50.0, 2.5, 0.0), (58.0, 24.0, 15.0), 19.4535),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _models(seed: int = 0):
    from vsremaster.model import NetworkC, NetworkR
    torch.manual_seed(seed)
    return NetworkR(WIDTH).eval(), NetworkC(WIDTH).eval()


def _frames(t: int = 6, h: int = 48, w: int = 64) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([np.stack([(x * 4 + 5 * i) % 256, y * 5 % 256, (x + y) * 2 % 256], -1)
                     for i in range(t)]).astype(np.uint8)


# --------------------------------------------------------------------------- metrics

def test_psnr_identical_is_infinite():
    a = torch.rand(2, 3, 8, 8)
    assert metrics.psnr(a, a) == math.inf
    assert metrics.psnr(a.numpy(), a.numpy()) == math.inf


def test_mean_abs_error():
    a = np.zeros((2, 3), np.float32)
    b = np.array([[1, -2, 3], [0, 0, -6]], np.float32)
    assert metrics.mean_abs_error(a, b) == pytest.approx(2.0)
    assert metrics.mean_abs_error(torch.from_numpy(b), b) == 0.0


def test_psnr_of_known_mse():
    a = np.zeros((4, 4), np.float32)
    assert metrics.psnr(a, a + 0.1) == pytest.approx(20.0, abs=1e-4)     # MSE 0.01
    assert metrics.psnr(a, a + 0.01) == pytest.approx(40.0, abs=1e-3)    # MSE 1e-4
    assert metrics.psnr(a, a + 10.0, peak=255.0) == pytest.approx(10 * math.log10(255 ** 2 / 100))
    assert metrics.psnr_from_mse(0.001) == pytest.approx(30.0)


@pytest.mark.parametrize("lab1, lab2, expected", SHARMA)
def test_ciede2000_sharma_pairs(lab1, lab2, expected):
    assert float(metrics.ciede2000(lab1, lab2)) == pytest.approx(expected, abs=1e-4)
    assert float(metrics.ciede2000(lab2, lab1)) == pytest.approx(expected, abs=1e-4)


def test_ciede2000_vectorised_and_channel_dim():
    a = np.array([p[0] for p in SHARMA])
    b = np.array([p[1] for p in SHARMA])
    out = metrics.ciede2000(a, b).numpy()
    np.testing.assert_allclose(out, [p[2] for p in SHARMA], atol=1e-4)
    img_a = torch.tensor(a.T).reshape(3, 3, 4)          # channels first
    img_b = torch.tensor(b.T).reshape(3, 3, 4)
    assert metrics.mean_ciede2000(img_a, img_b, dim=0) == pytest.approx(out.mean(), abs=1e-6)
    assert metrics.mean_ciede2000(img_a, img_a, dim=0) == 0.0


# --------------------------------------------------------------------------- protocol

def test_model_size_is_the_filters_processing_size_rounded_down_to_16():
    frames = lambda h, w: np.zeros((1, h, w, 3), np.uint8)      # noqa: E731
    assert protocol.model_size(frames(272, 640), 320) == (320, 752)
    assert protocol.model_size(frames(144, 176), 320) == (320, 384)
    h, w = protocol.model_size(frames(1080, 1920), 320)
    assert (h, w) == (320, 560) and h % 16 == 0 and w % 16 == 0
    assert processing_size(1920, 1080, 320) == (560, 320)     # the filter's: (width, height)


def test_reference_canvas_short_edge_and_centring():
    refs = [np.ones((100, 200, 3), np.float32), np.ones((100, 100, 3), np.float32)]
    canvas = protocol.reference_canvas(refs)
    assert canvas.shape == (2, 3, 256, 384)                 # mean aspect 1.5
    assert float(canvas[1, :, :, :60].max()) == 0.0         # square one padded left/right
    assert float(canvas[1, :, 128, 192].min()) == 1.0
    tall = protocol.reference_canvas([np.ones((200, 100, 3), np.float32)])
    assert tall.shape == (1, 3, 512, 256)


def test_reinhard_transfer_paints_reference_mean_colour():
    ref = np.zeros((8, 8, 3), np.float32)
    ref[..., 0] = 0.8
    ref[..., 2] = 0.2
    grey = torch.rand(3, 1, 16, 16)
    l, ab = protocol.reinhard_transfer(grey, [ref])
    from vsremaster.color.lab import rgb_to_model
    _, ref_ab = rgb_to_model(torch.from_numpy(ref).permute(2, 0, 1))
    assert l.shape == grey.shape and ab.shape == (3, 2, 16, 16)
    torch.testing.assert_close(ab[:, :, 0, 0], ref_ab[:, 0, 0].expand(3, 2), atol=1e-4, rtol=0)


def test_remaster_chunks_match_single_call():
    model_r, model_c = _models()
    grey = torch.rand(7, 1, 32, 32)
    refs = torch.rand(2, 3, 32, 32)
    l, ab = protocol.remaster(model_r, model_c, grey, refs, chunk=5)
    assert l.shape == (7, 1, 32, 32) and ab.shape == (7, 2, 32, 32)
    with torch.no_grad():
        x = grey[5:].transpose(0, 1)[None]
        direct = model_c(model_r(x), refs[None])[0].transpose(0, 1)
    torch.testing.assert_close(ab[5:], direct, atol=1e-5, rtol=1e-4)


def test_evaluate_frames_reports_all_metrics():
    model_r, model_c = _models()
    cfg = protocol.EvalConfig(frames=6, mindim=32)
    res = protocol.evaluate_frames(_frames(), model_r, model_c, cfg)
    for k in protocol.METRIC_KEYS:
        assert math.isfinite(res[k]), k
    assert res["refs"] == 1 and (res["height"], res["width"]) == (32, 32)
    # The deteriorated input is worse than perfect and is the same every run (seeded).
    again = protocol.evaluate_frames(_frames(), model_r, model_c, cfg)
    assert res["input_psnr_l"] == again["input_psnr_l"] < 40
    assert res["psnr_l"] == pytest.approx(again["psnr_l"])
    every = protocol.evaluate_frames(_frames(), model_r, model_c,
                                     protocol.EvalConfig(frames=6, mindim=32, refs_every=2))
    assert every["refs"] == 3


def test_ab_error_is_in_lab_units_and_zero_for_the_truth():
    frames = _frames()
    rgb = protocol.to_tensor(frames, (32, 32))
    from vsremaster.color.lab import rgb_to_model
    l_true, ab_true = rgb_to_model(rgb)
    assert protocol.score(l_true, ab_true, rgb, l_true, ab_true)["ab_error"] < 0.05
    neutral = torch.full_like(ab_true, protocol.NEUTRAL_AB)
    grey = protocol.score(l_true, neutral, rgb, l_true, ab_true)["ab_error"]
    from kornia.color import rgb_to_lab
    expected = float(rgb_to_lab(rgb)[:, 1:].abs().mean())     # grey's a*b* are 0
    assert grey == pytest.approx(expected, abs=0.3) and grey > 5
    given = protocol.score(l_true, neutral, rgb, l_true, ab_true, rgb_to_lab(rgb))
    assert given == protocol.score(l_true, neutral, rgb, l_true, ab_true)


def test_evaluate_frames_without_references():
    import seeded
    model_r, model_c = _models()
    for model, state in zip((model_r, model_c), seeded.state_dicts(WIDTH)):
        model.load_state_dict(state)      # non-zero attention gamma: references matter
    res = protocol.evaluate_frames(_frames(), model_r, model_c,
                                   protocol.EvalConfig(frames=6, mindim=32, no_refs=True))
    assert res["refs"] == 0 and not any(k.startswith("transfer_") for k in res)
    assert math.isfinite(res["ab_error"]) and math.isfinite(res["input_ab_error"])
    with_refs = protocol.evaluate_frames(_frames(), model_r, model_c,
                                         protocol.EvalConfig(frames=6, mindim=32))
    assert res["psnr_ab"] != with_refs["psnr_ab"]        # the references were left out
    assert res["input_ab_error"] == with_refs["input_ab_error"]
    mean = protocol.summarise([res, res])
    assert "transfer_psnr_ab" not in mean and mean["ab_error"] == pytest.approx(res["ab_error"])
    assert "transfer" not in protocol.table([{**res, "clip": "c"}], mean)


def test_evaluate_frames_gives_the_confidence_of_its_own_pass():
    import seeded
    from vsremaster.evaluation.confidence import spearman
    model_r, model_c = _models()
    for model, state in zip((model_r, model_c), seeded.state_dicts(WIDTH)):
        model.load_state_dict(state)
    cfg = protocol.EvalConfig(frames=6, mindim=32, refs_every=3)
    plain = protocol.evaluate_frames(_frames(), model_r, model_c, cfg)
    res = protocol.evaluate_frames(_frames(), model_r, model_c,
                                   protocol.EvalConfig(frames=6, mindim=32, refs_every=3,
                                                       confidence=True))
    conf = res.pop("confidence")
    assert "confidence" not in plain and res == plain      # the protocol's figures unchanged
    assert len(conf["confidence"]) == len(conf["ab_rms"]) == len(conf["de00_colour"]) == 6
    assert all(0 < c <= 1 for c in conf["confidence"])     # references were matched
    assert all(e > 0 for e in conf["ab_rms"] + conf["de00_colour"])
    assert conf["spearman_ab"] == spearman(conf["ab_rms"], conf["confidence"])
    none = protocol.evaluate_frames(_frames(), model_r, model_c,
                                    protocol.EvalConfig(frames=6, mindim=32, no_refs=True,
                                                        confidence=True))
    assert none["confidence"]["confidence"] == [0.0] * 6   # nothing to match without any


# --------------------------------------------------------------------------- suite

def test_hue_rotation_round_trip():
    # Low-chroma colours stay inside the sRGB gamut when their hue turns.
    rgb = np.random.default_rng(0).uniform(0.4, 0.6, (8, 8, 3)).astype(np.float32)
    back = suites.hue_rotate(suites.hue_rotate(rgb, 120), -120)
    np.testing.assert_allclose(back, rgb, atol=2e-3)
    np.testing.assert_allclose(suites.hue_rotate(rgb, 360), rgb, atol=2e-3)
    assert np.abs(suites.hue_rotate(rgb, 120) - rgb).max() > 0.03


def test_suite_cases_and_run():
    frames = _frames(5, 48, 64)
    cases = suites.build_cases(frames)
    assert tuple(cases) == suites.CATEGORIES
    src, refs, target = cases["partial_source"]
    assert src.shape[1:3] == (28, 38) and refs[0].shape == (48, 64, 3)
    assert len(cases["distractors"][1]) == 4
    model_r, model_c = _models()
    res = suites.run_suite(frames, model_r, model_c, mindim=32)
    assert set(res) == set(suites.CATEGORIES)
    assert all(math.isfinite(r["psnr_ab"]) and math.isfinite(r["transfer_psnr_ab"]) for r in res.values())
    assert "psnr_ab_original" in res["recolour"]
    assert "recolour" in suites.suite_table(res)


# --------------------------------------------------------------------------- command

@pytest.mark.slow
def test_evaluate_command_prints_table_and_json(tmp_path):
    from vsremaster.model.checkpoint import save_checkpoint
    model_r, model_c = _models(1)
    weights = save_checkpoint(tmp_path / "tiny.safetensors", model_r.state_dict(),
                              model_c.state_dict(), name="tiny-random")
    clip = tmp_path / "clip.avi"
    frames = _frames(7, 48, 64)
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    cmd = [sys.executable, "-m", "vsremaster", "evaluate", str(clip), str(clip),
           "--weights", str(weights), "--frames", "6", "--mindim", "32", "--device", "cpu",
           "--threads", "1", "--suite", "references", "--refs-every", "3"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert any("transfer" in line for line in lines[:-1])          # the table
    record = json.loads(lines[-1])                                  # ONE JSON line, last
    for key in ("psnr_l", "input_psnr_l", "psnr_ab", "transfer_psnr_ab", "psnr_all",
                "ciede2000", "transfer_ciede2000"):
        assert isinstance(record[key], float), key
    assert len(record["clips"]) == 2 and record["clips"][0]["refs"] == 2
    assert set(record["suite"][str(clip)]) == set(suites.CATEGORIES)
    assert isinstance(record["ab_error"], float) and isinstance(record["input_ab_error"], float)
    no_refs = subprocess.run(cmd[:cmd.index("--suite")] + ["--no-refs"], cwd=ROOT,
                             capture_output=True, text=True, timeout=300)
    assert no_refs.returncode == 0, no_refs.stderr[-3000:]
    lines = no_refs.stdout.strip().splitlines()
    record = json.loads(lines[-1])
    assert record["no_refs"] is True and record["clips"][0]["refs"] == 0
    assert "transfer_psnr_ab" not in record and "|ab err|" in lines[1]
    assert not any(" transfer " in line for line in lines[:-1])


def test_evaluate_command_temporal_metrics_of_three_methods(tmp_path):
    from vsremaster.model.checkpoint import save_checkpoint
    model_r, model_c = _models(2)
    weights = save_checkpoint(tmp_path / "tiny.safetensors", model_r.state_dict(),
                              model_c.state_dict(), name="tiny-random")
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    for f in _frames(8, 48, 64):
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    out = tmp_path / "record.json"
    cmd = [sys.executable, "-m", "vsremaster", "evaluate", str(clip), "--weights", str(weights),
           "--frames", "8", "--mindim", "32", "--device", "cpu", "--threads", "1",
           "--ours-variant", "chunk=4", "--json", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    rows = {line.split()[1] for line in lines[:-1] if line.startswith("clip.avi")}
    assert {"block5", "input", "transfer", "ours", "ours[chunk=4]", "naive", "truth"} <= rows
    assert any("seam" in line and "CDC" in line for line in lines)   # the temporal table
    record = json.loads(lines[-1])
    assert json.loads(out.read_text()) == record
    clip_rec = record["clips"][0]
    assert set(clip_rec["temporal"]) == {"truth", "ours", "ours[chunk=4]", "block5", "naive"}
    for name, m in clip_rec["temporal"].items():
        assert m["mean_dab"] >= 0 and m["seam"] > 0 and 0 <= m["cdc"] <= math.log(2), name
        assert 2 <= m["seam_at"] <= 4, name                # the interior of 8 frames
    assert clip_rec["temporal"]["truth"]["mean_dab"] > 0.5   # the clip itself moves
    for name in ("ours", "ours[chunk=4]", "naive"):
        assert math.isfinite(clip_rec[f"{name}_psnr_ab"]) and clip_rec[f"{name}_ciede2000"] > 0
    assert record["temporal"]["naive"]["cdc"] == pytest.approx(clip_rec["temporal"]["naive"]["cdc"])
    assert "seam_at" not in record["temporal"]["naive"]      # means carry no frame index


def test_evaluate_frames_scores_block5_and_naive_without_the_filter():
    from vsremaster.evaluation import temporal
    model_r, model_c = _models()
    frames = _frames(7)
    cfg = protocol.EvalConfig(frames=7, mindim=32, temporal=("block5", "naive"))
    res = protocol.evaluate_frames(frames, model_r, model_c, cfg)
    assert set(res["temporal"]) == {"truth", "block5", "naive"} and "ours_psnr_l" not in res
    # the clip's own metrics: those of the ground truth at processing size
    size = protocol.model_size(frames, 32)
    rgb = protocol.to_tensor(frames, size)
    assert res["temporal"]["truth"] == temporal.temporal_metrics(rgb.numpy())
    assert math.isfinite(res["naive_psnr_ab"])
    assert res["temporal"]["block5"]["cdc"] != res["temporal"]["naive"]["cdc"]
    with pytest.raises(ValueError, match="weights"):
        protocol.evaluate_frames(frames, model_r, model_c,
                                 protocol.EvalConfig(frames=7, mindim=32, temporal=("ours",)))


def test_no_refs_leaves_the_references_out_of_the_filter_runs_too(tmp_path):
    """With `no_refs` the filter runs (ours and its variants) get no references, as
    block5 and naive; they were once given the reference frames all the same."""
    import seeded
    from vsremaster.model.checkpoint import save_checkpoint
    model_r, model_c = _models()
    states = seeded.state_dicts(WIDTH)           # non-zero attention gamma: references matter
    for model, state in zip((model_r, model_c), states):
        model.load_state_dict(state)
    weights = save_checkpoint(tmp_path / "seeded.safetensors", *states, name="tiny-seeded")
    runs = {}
    for no_refs in (False, True):
        cfg = protocol.EvalConfig(frames=6, mindim=32, no_refs=no_refs, temporal=("ours",),
                                  weights=str(weights), ours_variants=({"chunk": 4},))
        runs[no_refs] = protocol.evaluate_frames(_frames(), model_r, model_c, cfg)
    # the deteriorated input is the same: only the references can tell the runs apart
    assert runs[True]["input_psnr_l"] == runs[False]["input_psnr_l"]
    for name in ("ours", "ours[chunk=4]"):
        assert math.isfinite(runs[True][f"{name}_psnr_ab"]), name
        assert runs[True][f"{name}_psnr_ab"] != runs[False][f"{name}_psnr_ab"], name
        assert runs[True]["temporal"][name] != runs[False]["temporal"][name], name


def test_pan_seam_scores_the_scene_and_every_output(tmp_path):
    from vsremaster.evaluation.seams import pan_seam
    from vsremaster.model.checkpoint import save_checkpoint
    model_r, model_c = _models(3)
    weights = save_checkpoint(tmp_path / "tiny.safetensors", model_r.state_dict(),
                              model_c.state_dict(), name="tiny-random")
    res = pan_seam(weights, frames=9, width=48, height=32, compare=True,
                   variants=({"chunk": 4},))
    assert set(res) == {"scene", "ours", "ours[chunk=4]", "naive", "block5"}
    # the scene itself is a uniform pan: every local step about 1 (a new column enters)
    np.testing.assert_allclose(res["scene"]["steps"], [[1.0] * 4], atol=0.02)
    for name, m in res.items():
        (steps,) = m["steps"]
        assert m["starts"] == [0] and len(steps) == 4, name
        assert m["seam"] == pytest.approx(max(steps)) and m["seam_at"] == 2 + int(np.argmax(steps))


def test_film_seam_follows_the_filters_scenes(tmp_path):
    from vsremaster.evaluation.seams import film_seam
    from vsremaster.model.checkpoint import save_checkpoint
    model_r, model_c = _models(4)
    weights = save_checkpoint(tmp_path / "tiny.safetensors", model_r.state_dict(),
                              model_c.state_dict(), name="tiny-random")
    a = _frames(8, 48, 64)
    film = np.concatenate([a, 255 - a[:, ::-1]])           # a cut at frame 8
    video = tmp_path / "film.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    for f in film:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    refs = tmp_path / "refs"
    refs.mkdir()
    cv2.imwrite(str(refs / "colour.png"), a[0][..., ::-1])
    res = film_seam(video, refs, weights, frames=16, mindim=32, compare=True)
    assert set(res) == {"ours", "naive", "block5"}
    for name, m in res.items():
        assert m["starts"] == [0, 8], name                  # the filter's scenes, for all
        assert [len(s) for s in m["steps"]] == [3, 3], name  # pairs 2..4 of each scene
        assert m["seam_at"] in (2, 3, 4, 10, 11, 12), name   # never the cut (7 -> 8)


def test_evaluate_command_missing_weights_fails_cleanly(tmp_path):
    cmd = [sys.executable, "-m", "vsremaster", "evaluate", str(tmp_path / "none.avi"),
           "--weights", str(tmp_path / "missing.safetensors")]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
