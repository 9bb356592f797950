"""Training pipeline: deterioration bank, augmentations, clip sampling, loop, resume."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vsremaster.training import augment, data, deterioration, loop

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 0.125


# --------------------------------------------------------------------------- helpers

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _items(seed: int = 0) -> list[data.Item]:
    """Two small synthetic sources: a 12-frame 'video' and a still (no files needed)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:72, 0:96]
    video = np.stack([np.stack([(x + 3 * t) % 96 * 2, y * 3, (x + y + t) % 255], -1)
                      for t in range(12)]).astype(np.uint8)
    still = rng.integers(0, 255, (80, 120, 3), dtype=np.uint8)
    return [data.Item("video", video), data.Item("still", still[None])]


def _tiny_config(tmp_path, **kw) -> loop.TrainConfig:
    base = dict(out=str(tmp_path / "run"), width=WIDTH, batch=2, crop=(32, 32), steps=4,
                lr=1e-3, warmup=0, val_every=0, save_every=2, log_every=1, progress=False,
                max_refs=2)
    base.update(kw)
    return loop.TrainConfig(**base)


# --------------------------------------------------------------------------- deterioration

def test_bank_has_every_kind():
    bank = deterioration.make_bank(per_kind=2, size=64, seed=1)
    assert set(bank) == set(deterioration.KINDS)
    for images in bank.values():
        for img in images:
            assert img.shape == (64, 64) and img.dtype == np.float32
            assert np.isfinite(img).all() and np.abs(img).max() <= 1.0 + 1e-6


def test_deterioration_shape_range_determinism():
    det = deterioration.Deteriorator(deterioration.make_bank(per_kind=2, size=64, seed=0))
    clip = np.full((5, 40, 56), 0.5, np.float32)
    a = det.deteriorate(clip, np.random.default_rng(3), deterioration.EVALUATION)
    b = det.deteriorate(clip, np.random.default_rng(3), deterioration.EVALUATION)
    c = det.deteriorate(clip, np.random.default_rng(4), deterioration.EVALUATION)
    assert a.shape == clip.shape and a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() <= 1.0
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.abs(a - clip).mean() > 0.01          # it does deteriorate
    single = det.deteriorate(clip[0], np.random.default_rng(0))
    assert single.shape == clip.shape[1:]


def test_place_is_tiled_and_flipped_to_any_size():
    img = np.arange(16 * 16, dtype=np.float32).reshape(16, 16) / 256
    out = deterioration.place(img, 50, 70, np.random.default_rng(0), scale=(0.1, 0.2))
    assert out.shape == (50, 70)


def test_scratches_stay_vertical():
    img = np.zeros((32, 32), np.float32)
    img[:, 5] = 1.0
    for seed in range(6):
        out = deterioration.place(img, 32, 32, np.random.default_rng(seed), (1.0, 1.0),
                                  quarter_turns=False)
        assert np.allclose(out.std(axis=0).max(), 0.0, atol=1e-5)   # columns stay constant


def test_augment_degrade_shape_range_determinism():
    det = deterioration.Deteriorator(deterioration.make_bank(per_kind=2, size=64))
    clip = np.random.default_rng(0).uniform(0, 1, (5, 32, 48)).astype(np.float32)
    always = augment.Table3(rescale_p=1, blur_p=1, contrast_p=1, brightness_p=1, noise_p=1, jpeg_p=1)
    a = augment.degrade(clip, np.random.default_rng(1), det, t3=always)
    b = augment.degrade(clip, np.random.default_rng(1), det, t3=always)
    assert a.shape == clip.shape and a.dtype == np.float32
    assert 0 <= a.min() and a.max() <= 1
    np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- data

def test_licence_table_covers_every_source():
    names = [s.name for s in data.SOURCES]
    assert len(names) == len(set(names))
    for s in data.SOURCES:
        assert s.licence and s.credit and s.split in ("train", "heldout")
        assert s.kind in ("video", "still")
    assert {s.split for s in data.SOURCES} == {"train", "heldout"}
    table = data.licence_table()
    assert all(f"| {n} |" in table for n in names)


def test_motion_renders_views_and_moves():
    img = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    m = data.Motion.random(np.random.default_rng(1), 30)
    a, b = m.render(img, 0, (48, 64)), m.render(img, 29, (48, 64))
    assert a.shape == (48, 64, 3) and a.dtype == np.uint8
    assert not np.array_equal(a, b)
    still = data.Motion(1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.0, 0.0, False, 10)
    full = still.render(img, 3, (120, 160))
    assert np.abs(full.astype(int) - img.astype(int)).mean() < 1.0   # identity view


def test_clip_sampler_frames_and_references():
    sampler = data.ClipSampler(_items(), crop=(32, 48), frames=5)
    rng = np.random.default_rng(0)
    for n in (0, 1, 6):
        clip, refs = sampler.sample(rng, n)
        assert clip.shape == (5, 32, 48, 3) and refs.shape == (n, 32, 48, 3)
        assert clip.dtype == np.float32 and 0 <= clip.min() and clip.max() <= 1


def test_prepare_writes_manifest_and_licences(tmp_path):
    pytest.importorskip("skimage")
    sources = [s for s in data.SOURCES if s.package == "pypi:scikit-image"][:2]
    sources.append(data.Source("held", "still", "pypi:scikit-image", "data/chelsea.png",
                               "CC0", "test", "heldout"))
    data.prepare(tmp_path, tmp_path / "cache", sources=sources, log=lambda *_: None)
    manifest = data.read_manifest(tmp_path)
    assert [e["name"] for e in manifest] == [s.name for s in sources]
    assert "CC0" in (tmp_path / "LICENCES.md").read_text()
    clips = data.heldout_clips(tmp_path)
    assert len(clips) == 1 and clips[0].exists()
    assert data.read_video(clips[0], 3).shape[0] == 3
    assert len(data.load_items(tmp_path, "train")) == 2


# --------------------------------------------------------------------------- loop

def test_batches_are_a_function_of_seed_and_index():
    maker = loop.BatchMaker(_items(), crop=(32, 32))
    ds = loop.BatchDataset(maker, batch=2, seed=5, max_refs=6)
    a, b = ds[3], ds[3]
    for k in ("x", "l", "ab", "refs"):
        torch.testing.assert_close(a[k], b[k])
    assert a["x"].shape == (2, 1, 5, 32, 32) and a["ab"].shape == (2, 2, 5, 32, 32)
    assert a["refs"].shape[:3] == (2, a["refs"].shape[1], 3) and a["refs"].shape[1] <= 6
    assert not torch.equal(ds[4]["l"], a["l"])


def test_loss_decreases_on_a_fixed_batch():
    torch.manual_seed(0)
    maker = loop.BatchMaker(_items(), crop=(32, 32))
    batch = maker.make(np.random.default_rng(0), 2, 2)
    model_r, model_c = loop.build_models(WIDTH)
    opt = loop.make_optimizer(model_r, model_c, 2e-3)
    first = loop.train_step(model_r, model_c, opt, batch, 1.0, "cpu")
    for _ in range(14):
        last = loop.train_step(model_r, model_c, opt, batch, 1.0, "cpu")
    assert last["loss"] < 0.8 * first["loss"]
    assert math.isfinite(last["loss_ab"]) and math.isfinite(last["loss_l"])


def test_zero_references_train():
    maker = loop.BatchMaker(_items(), crop=(32, 32))
    batch = maker.make(np.random.default_rng(1), 1, 0)
    assert batch["refs"].shape[1] == 0
    model_r, model_c = loop.build_models(WIDTH)
    opt = loop.make_optimizer(model_r, model_c, 1e-3)
    assert math.isfinite(loop.train_step(model_r, model_c, opt, batch, 1.0, "cpu")["loss"])


def _opt_tensors(opt) -> list[torch.Tensor]:
    return [v for s in opt.state_dict()["state"].values() for v in s.values()
            if isinstance(v, torch.Tensor)]


def test_resume_continues_from_saved_step(tmp_path):
    items = _items()
    cfg = _tiny_config(tmp_path, steps=2, ema=0, schedule="constant")
    loop.train(cfg, items=items, val_items=items)
    out = Path(cfg.out)
    assert (out / loop.WEIGHTS_FILE).exists() and (out / loop.STATE_FILE).exists()
    state = torch.load(out / loop.STATE_FILE, weights_only=True)
    assert state["step"] == 2

    # The saved optimizer state is restored exactly.
    model_r, model_c = loop.build_models(WIDTH)
    opt = loop.make_optimizer(model_r, model_c, cfg.lr)
    step, _ = loop.load_training_state(out, model_r, model_c, opt)
    assert step == 2
    saved = [v for s in state["optimizer"]["state"].values() for v in s.values()
             if isinstance(v, torch.Tensor)]
    restored = _opt_tensors(opt)
    assert len(saved) == len(restored) > 0
    for a, b in zip(saved, restored):
        torch.testing.assert_close(a, b, rtol=0, atol=0)

    # Resuming to step 4 equals training 4 steps straight through (batches depend on step).
    loop.train(_tiny_config(tmp_path, steps=4, ema=0, schedule="constant"), resume=True, items=items, val_items=items)
    assert torch.load(out / loop.STATE_FILE, weights_only=True)["step"] == 4
    straight = _tiny_config(tmp_path, steps=4, out=str(tmp_path / "straight"), ema=0,
                            schedule="constant")
    loop.train(straight, items=items, val_items=items)
    from vsremaster.model.checkpoint import read_state_dicts
    r1, c1, meta = read_state_dicts(out / loop.WEIGHTS_FILE)
    r2, c2, _ = read_state_dicts(Path(straight.out) / loop.WEIGHTS_FILE)
    assert meta["step"] == "4"
    for k in r1:
        torch.testing.assert_close(r1[k], r2[k], rtol=1e-4, atol=1e-5)
    for k in c1:
        torch.testing.assert_close(c1[k], c2[k], rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- the recipe

def test_lr_schedule_values():
    cfg = loop.TrainConfig(lr=1e-3, lr_min=1e-5, warmup=10, steps=110)
    assert loop.lr_at(0, cfg) == pytest.approx(1e-4)
    assert loop.lr_at(4, cfg) == pytest.approx(5e-4)
    assert loop.lr_at(9, cfg) == pytest.approx(1e-3)
    assert loop.lr_at(10, cfg) == pytest.approx(1e-3)
    assert loop.lr_at(60, cfg) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))       # halfway
    assert loop.lr_at(35, cfg) == pytest.approx(1e-5 + (1e-3 - 1e-5) * (1 + math.cos(math.pi / 4)) / 2)
    assert loop.lr_at(110, cfg) == pytest.approx(1e-5)
    assert loop.lr_at(500, cfg) == pytest.approx(1e-5)                              # floor after --steps
    after = [loop.lr_at(s, cfg) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(after, after[1:]))
    assert loop.lr_at(0, loop.TrainConfig(lr=1e-3, warmup=0, steps=10)) == pytest.approx(1e-3)
    const = loop.TrainConfig(lr=3e-4, schedule="constant", warmup=10, steps=100)
    assert {loop.lr_at(s, const) for s in (0, 5, 50, 99)} == {3e-4}


def test_training_uses_the_schedule(tmp_path):
    items = _items()
    cfg = _tiny_config(tmp_path, steps=4, warmup=2, lr=1e-3, lr_min=1e-4)
    loop.train(cfg, items=items, val_items=items)
    logged = [json.loads(x) for x in (Path(cfg.out) / loop.LOG_FILE).read_text().splitlines()]
    lrs = [r["lr"] for r in logged if "lr" in r]
    assert lrs == pytest.approx([loop.lr_at(s, cfg) for s in range(4)])
    assert lrs == pytest.approx([5e-4, 1e-3, 1e-3, 1e-4 + 0.45e-3])   # lr_min at step 4


def _state(path) -> dict:
    from vsremaster.model.checkpoint import read_state_dicts
    r, c, _ = read_state_dicts(path)
    return {**{"r." + k: v for k, v in r.items()}, **{"c." + k: v for k, v in c.items()}}


def _assert_same(a: dict, b: dict, exact: bool = False) -> None:
    assert a.keys() == b.keys()
    for k in a:
        tol = dict(rtol=0, atol=0) if exact else dict(rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(a[k], b[k], **tol, msg=k)


def test_resume_after_time_limit_matches_uninterrupted_run(tmp_path):
    """Warmup + cosine + clipping + EMA: a run stopped by --max-minutes and resumed ends
    with the raw weights, the EMA and the optimizer of a run that was never stopped."""
    items = _items()
    kw = dict(steps=5, warmup=2, lr=2e-3, lr_min=1e-4, clip=0.05, ema=0.5, save_every=100)
    stopped = _tiny_config(tmp_path, max_minutes=0, **kw)     # halts after its first step
    loop.train(stopped, items=items, val_items=items)
    out = Path(stopped.out)
    assert torch.load(out / loop.STATE_FILE, weights_only=True)["step"] == 1
    loop.train(_tiny_config(tmp_path, **kw), resume=True, items=items, val_items=items)
    straight = _tiny_config(tmp_path, out=str(tmp_path / "straight"), **kw)
    loop.train(straight, items=items, val_items=items)
    s1 = torch.load(out / loop.STATE_FILE, weights_only=True)
    s2 = torch.load(Path(straight.out) / loop.STATE_FILE, weights_only=True)
    assert s1["step"] == s2["step"] == 5
    _assert_same(_state(out / loop.WEIGHTS_FILE), _state(Path(straight.out) / loop.WEIGHTS_FILE))
    for part in ("r", "c"):
        _assert_same(s1["ema"][part], s2["ema"][part])
    for a, b in zip(_opt_tensors_of(s1["optimizer"]), _opt_tensors_of(s2["optimizer"])):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)

    # The comparison is tight enough to see a schedule shifted by one step.
    wrong = _tiny_config(tmp_path, out=str(tmp_path / "wrong"), **{**kw, "warmup": 3})
    loop.train(wrong, items=items, val_items=items)
    with pytest.raises(AssertionError):
        _assert_same(_state(Path(wrong.out) / loop.WEIGHTS_FILE), _state(out / loop.WEIGHTS_FILE))


def _opt_tensors_of(state: dict) -> list[torch.Tensor]:
    return [v for s in state["state"].values() for v in s.values() if isinstance(v, torch.Tensor)]


def test_ema_is_what_validation_and_best_hold(tmp_path):
    items = _items()
    cfg = _tiny_config(tmp_path, steps=4, warmup=0, val_every=4, val_batches=1, ema=0.9,
                       save_every=4, name="tiny-test")
    loop.train(cfg, items=items, val_items=items)
    out = Path(cfg.out)
    state = torch.load(out / loop.STATE_FILE, weights_only=True)
    best, raw = _state(out / loop.BEST_FILE), _state(out / loop.WEIGHTS_FILE)
    ema = {**{"r." + k: v for k, v in state["ema"]["r"].items()},
           **{"c." + k: v for k, v in state["ema"]["c"].items()}}
    _assert_same(best, ema, exact=True)
    moved = [k for k in raw if raw[k].is_floating_point() and not torch.equal(raw[k], best[k])]
    assert len(moved) > 0.5 * sum(v.is_floating_point() for v in raw.values())
    from vsremaster.model.checkpoint import read_state_dicts
    assert read_state_dicts(out / loop.BEST_FILE)[2]["name"] == "tiny-test-ema-step4"
    assert read_state_dicts(out / loop.WEIGHTS_FILE)[2]["name"] == "tiny-test-step4"

    # The logged validation is the EMA's: it scores as `validate` on the EMA weights does.
    logged = [json.loads(x) for x in (out / loop.LOG_FILE).read_text().splitlines()]
    val = [r for r in logged if "val" in r][-1]
    assert val["ema"] is True
    model_r, model_c = loop.build_models(WIDTH)
    model_r.load_state_dict(state["ema"]["r"])
    model_c.load_state_dict(state["ema"]["c"])
    again = loop.validate(model_r, model_c, loop.validation_batches(items, cfg), cfg.beta, "cpu")
    assert again["loss"] == pytest.approx(val["val"]["loss"], rel=1e-5)


def test_ema_update_rule():
    model_r, model_c = loop.build_models(WIDTH)
    ema = loop.WeightEMA(model_r, model_c, decay=0.5)
    start = {k: v.clone() for k, v in ema.r.state_dict().items()}
    with torch.no_grad():
        for p in model_r.parameters():
            p.add_(1.0)
    ema.update(model_r, model_c, step=1000)          # decay min(0.5, 1000/1009) = 0.5
    for k, p in model_r.named_parameters():
        torch.testing.assert_close(ema.r.state_dict()[k], start[k] + 0.5)
    ema.update(model_r, model_c, step=1)             # warmup: decay min(0.5, 1/10) = 0.1
    k, p = next(iter(model_r.named_parameters()))
    torch.testing.assert_close(ema.r.state_dict()[k], 0.1 * (start[k] + 0.5) + 0.9 * p.detach())
    assert loop.ema_decay(0, 0.999) == pytest.approx(0.1)
    assert loop.ema_decay(10_000, 0.999) == 0.999


def test_clipping_bounds_the_update():
    """With SGD(lr=1) the update is minus the gradient: its norm is at most --clip."""
    maker = loop.BatchMaker(_items(), crop=(32, 32))
    batch = maker.make(np.random.default_rng(0), 2, 2)
    results = {}
    for clip in (0.0, 0.01):
        torch.manual_seed(0)
        model_r, model_c = loop.build_models(WIDTH)
        params = list(model_r.parameters()) + list(model_c.parameters())
        before = [p.detach().clone() for p in params]
        opt = torch.optim.SGD(params, lr=1.0)
        out = loop.train_step(model_r, model_c, opt, batch, 1.0, "cpu", lr=1.0, clip=clip)
        step = torch.linalg.vector_norm(torch.cat([(p.detach() - b).flatten()
                                                   for p, b in zip(params, before)]))
        results[clip] = (out["grad_norm"], float(step))
    raw_norm, raw_step = results[0.0]
    assert raw_norm > 0.01 and raw_step == pytest.approx(raw_norm, rel=1e-3)
    clipped_norm, clipped_step = results[0.01]
    assert clipped_norm == pytest.approx(raw_norm, rel=1e-4)    # reported before clipping
    assert clipped_step <= 0.01 * (1 + 1e-4)
    assert clipped_step == pytest.approx(0.01, rel=1e-3)


@pytest.mark.slow
def test_time_limit_stops_workers_cleanly(tmp_path):
    """--max-minutes with a data-loading worker: the run saves and exits 0, no worker abort."""
    d = _prepared_dir(tmp_path)
    out = tmp_path / "run"
    proc = _train_command(d, out, "--steps", "1000", "--val-every", "0", "--save-every", "1000",
                          "--workers", "1", "--max-minutes", "0")
    assert proc.returncode == 0, proc.stderr[-2000:]
    for bad in ("Traceback", "killed by signal", "terminate called", "Exception ignored"):
        assert bad not in proc.stderr, proc.stderr[-2000:]
    assert torch.load(out / loop.STATE_FILE, weights_only=True)["step"] == 1


def _train_command(data_dir: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m vsremaster train` on a tiny model, batch and crop, one thread."""
    cmd = [sys.executable, "-m", "vsremaster", "train", "--data-dir", str(data_dir),
           "--out", str(out), "--width", str(WIDTH), "--batch", "1", "--crop", "32", "32",
           "--no-progress", "--threads", "1", "--max-refs", "1", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def _prepared_dir(tmp_path) -> Path:
    """A prepared data folder made without the network: two training stills, one held out."""
    import cv2
    d = tmp_path / "data"
    (d / "stills").mkdir(parents=True)
    rng = np.random.default_rng(0)
    entries = []
    for i, split in enumerate(("train", "train", "heldout")):
        cv2.imwrite(str(d / "stills" / f"s{i}.jpg"), rng.integers(0, 255, (64, 80, 3), dtype=np.uint8))
        entries.append({"name": f"s{i}", "kind": "still", "split": split, "path": f"stills/s{i}.jpg"})
    (d / data.MANIFEST).write_text(json.dumps({"sources": entries}))
    return d


def test_validation_reports_psnr(tmp_path):
    items = _items()
    cfg = _tiny_config(tmp_path, val_batches=1)
    model_r, model_c = loop.build_models(WIDTH)
    val = loop.validate(model_r, model_c, loop.validation_batches(items, cfg), 1.0, "cpu")
    for k in ("loss", "psnr_l", "input_psnr_l", "psnr_ab", "refmean_psnr_ab"):
        assert math.isfinite(val[k])


def test_train_command_prepared_dir(tmp_path):
    """`python -m vsremaster train` end to end on a folder made without the network."""
    d = _prepared_dir(tmp_path)
    out = tmp_path / "run"
    proc = _train_command(d, out, "--steps", "2", "--val-every", "2", "--val-batches", "1",
                          "--save-every", "2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "psnr_ab" in proc.stdout
    assert (out / "last.safetensors").exists() and (out / "best.safetensors").exists()
    from vsremaster.model.checkpoint import load_checkpoint
    model_r, model_c = load_checkpoint(out / "last.safetensors")
    assert model_r is not None and model_c is not None
