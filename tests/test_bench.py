"""The benchmark: the command's output, and the baseline's faithfulness to the authors."""
from __future__ import annotations

import copy
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT
from vsremaster.bench import baseline, naive
from vsremaster.bench.inputs import make_inputs
from vsremaster.model import Attention

KEYS = {"ours_fps", "baseline_fps", "naive_fps", "speedup", "naive_speedup", "peak_rss_mb",
        "peak_vram_mb", "device", "width", "height", "refs", "frames", "precision"}


def _bench(*args):
    done = subprocess.run([sys.executable, "-m", "vsremaster", "bench", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    return lines, json.loads(lines[-1])


@pytest.mark.slow
def test_bench_command_prints_table_then_json(lite_weights):
    lines, result = _bench("--width", "64", "--height", "48", "--frames", "6", "--refs", "2",
                           "--ref-size", "32", "--naive-frames", "2", "--weights",
                           str(lite_weights))
    assert KEYS <= set(result)
    assert any(line.startswith("ours ") for line in lines[:-1])
    assert any(line.startswith("baseline ") for line in lines[:-1])
    assert (result["width"], result["height"], result["refs"], result["frames"]) == (64, 48, 2, 6)
    for name in ("ours", "baseline", "naive"):
        assert result[f"{name}_fps"] > 0
    assert result["speedup"] == pytest.approx(result["ours_fps"] / result["baseline_fps"], rel=1e-2)
    assert result["ours_output_shape"] == result["baseline_output_shape"] == [6, 48, 64, 3]
    assert result["naive_output_shape"] == [2, 48, 64, 3]
    assert result["ours_info"]["runs"]["refs"] == 1
    assert result["baseline_info"]["blocks"] == result["baseline_info"]["ref_encodings"] == 2
    assert result["baseline_info"]["split_calls"]["refs"] == 2     # re-encoded per block
    assert result["naive_info"]["split_calls"]["restore"] == 2     # one window per frame
    assert result["compared_frames"] == 2 and result["ab_mad_ours_naive"] >= 0
    assert result["peak_vram_mb"] is None and result["peak_rss_mb"] > 0
    # each method in a fresh process of its own, its own high-water mark reported
    pids = [result[f"{name}_info"]["pid"] for name in ("ours", "baseline", "naive")]
    assert result["isolated"] and len(set(pids + [result["pid"]])) == 4
    assert all(result[f"{name}_process_peak_rss_mb"] >= result[f"{name}_peak_rss_mb"] - 1
               for name in ("ours", "baseline", "naive"))


@pytest.mark.slow
def test_bench_ours_variant_runs_the_filter_with_extra_arguments(lite_weights):
    lines, result = _bench("--width", "64", "--height", "48", "--frames", "6", "--refs", "1",
                           "--ref-size", "32", "--methods", "ours", "--weights",
                           str(lite_weights), "--ours-args", "max_refs=1",
                           "--ours-variant", "chunk=4,restore=False",
                           "--ours-variant", "colorize=False", "--in-process")
    name = "ours[chunk=4,restore=False]"
    assert any(line.startswith(name + " ") for line in lines[:-1])
    assert result["ours_info"]["filter_args"] == {"max_refs": 1}
    assert result[f"{name}_info"]["filter_args"] == {"max_refs": 1, "chunk": 4, "restore": False}
    # the arguments reach the filter: without restoration NetworkR never runs
    assert result["ours_info"]["split_calls"]["restore"] > 0
    assert result[f"{name}_info"]["split_calls"]["restore"] == 0
    assert result[f"{name}_fps"] > 0 and result[f"{name}_output_shape"] == [6, 48, 64, 3]
    assert result[f"ab_mad_ours_{name}"] >= 0 and result["baseline_fps"] is None
    # a grey output (colorize=False) is compared as RGB too: its ab is zero
    grey = "ours[colorize=False]"
    assert result[f"{grey}_output_shape"] == [6, 48, 64, 3]
    assert result[f"{grey}_info"]["split_calls"]["decode"] == 0
    assert result[f"ab_mad_ours_{grey}"] > 0 and result[f"ab_mean_abs_{grey}"] < 0.01
    # --in-process: both runs in the command's own process
    assert not result["isolated"]
    assert result["ours_info"]["pid"] == result[f"{name}_info"]["pid"] == result["pid"]


@pytest.mark.parametrize("option, text, says", [
    ("--ours-args", "no_such_arg=1", "no argument 'no_such_arg'"),
    ("--ours-variant", "chunk", "not key=value"),
    ("--ours-args", "clip=1", "no argument 'clip'")])
def test_bench_rejects_bad_filter_arguments(option, text, says):
    done = subprocess.run([sys.executable, "-m", "vsremaster", "bench", option, text],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and option in done.stderr and says in done.stderr


@pytest.mark.slow
def test_glue_feeds_the_same_model_work_small_and_1080p():
    lines, result = _bench("--glue", "--frames", "2", "--refs", "1", "--ref-size", "32",
                           "--glue-format", "yuv420p8", "--threads", "1")
    assert result["mode"] == "glue" and result["format"] == "YUV420P8"
    assert result["model_size"] == [112, 64] and result["big_size"] == [1920, 1080]
    assert result["weights"] == "bundled vsremaster-lite.safetensors"
    small, big = result["small"], result["big"]
    assert (small["input"], big["input"]) == ("112x64", "1920x1080")
    assert small["frames"] == big["frames"] == 2 and small["threads"] == big["threads"] == 1
    assert result["ratio"] == pytest.approx(big["fps"] / small["fps"], abs=2e-3)
    for case in (small, big):            # each case in its own process: its own peak
        assert case["peak_rss_mb"] >= case["render_peak_rss_mb"] > 0
        assert case["source_fps"] > 0 and case["cpu_ms_per_frame"] > 0
    assert result["big_peak_rss_mb"] == big["peak_rss_mb"]
    assert any(line.startswith("ratio 1920x1080 fps / 112x64 fps") for line in lines[:-1])


def test_bench_rejects_unknown_method():
    done = subprocess.run([sys.executable, "-m", "vsremaster", "bench", "--methods", "fast"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "unknown" in done.stderr


def test_baseline_is_networkc_on_five_frame_blocks(lite_models, tmp_path):
    model_r, model_c = lite_models
    inputs = make_inputs(64, 48, 12, 3, 32, tmp_path)
    got = {}
    counts = baseline.run(model_r, model_c, inputs.frames, inputs.canvas, device="cpu",
                          sink=lambda i, l, ab, bgr: got.setdefault(i, (l, ab, bgr)))
    assert counts == {"blocks": 3, "ref_encodings": 3}
    assert sorted(got) == list(range(12))
    assert Attention.matmul_softmax is False                      # switched back afterwards
    refs = torch.from_numpy(inputs.canvas)[None]
    with torch.no_grad():
        for blk in (range(0, 5), range(5, 10), range(10, 12)):    # the authors' blocks
            x = torch.from_numpy(inputs.frames[blk.start:blk.stop])[None, None]
            l = model_r(x)
            ab = model_c(l, refs)                                  # references encoded per block
            for k, i in enumerate(blk):
                np.testing.assert_allclose(got[i][0], l[0, 0, k].numpy(), atol=1e-6)
                np.testing.assert_allclose(got[i][1], ab[0, :, k].numpy(), atol=1e-5)
    l, ab, bgr = got[3]
    assert bgr.shape == (48, 64, 3) and bgr.dtype == np.float32
    np.testing.assert_allclose(bgr, baseline.lab_to_bgr(l, ab))


def test_naive_keeps_the_middle_of_a_centred_window(lite_models, tmp_path):
    model_r, model_c = lite_models
    inputs = make_inputs(64, 48, 9, 2, 32, tmp_path)
    assert naive.window(0, 9) == [0] * 8 + list(range(1, 8))
    assert naive.window(8, 9) == list(range(1, 8)) + [8] * 8
    got = {}
    naive.run(model_r, model_c, inputs.frames, inputs.canvas, device="cpu", only=[4],
              sink=lambda n, l, ab, rgb: got.setdefault(n, ab))
    with torch.inference_mode():
        x = torch.from_numpy(inputs.frames[naive.window(4, 9)])[None, None]
        ab = model_c(model_r(x), torch.from_numpy(inputs.canvas)[None])
    np.testing.assert_allclose(got[4], ab[0, :, 7].numpy(), atol=1e-5)


def test_baseline_attention_memory_grows_past_a_gpu():
    small = baseline.attention_memory(224, 160, 6, 256, 352)
    big = baseline.attention_memory(1920, 1072, 6, 256, 448)
    # selfattn2 at 1/8 over a 5-frame block: (5 * 134 * 240)^2 float32 values.
    assert big["elements"]["selfattn2"] == (5 * 134 * 240) ** 2
    assert big["peak_bytes"] == 2 * 4 * (5 * 134 * 240) ** 2 > 80 << 30
    assert small["peak_bytes"] < 1 << 30


def test_sweep_on_cpu_reports_analytic_rows(lite_weights):
    lines, result = _bench("--sweep", "--width", "64", "--height", "48", "--frames", "5",
                           "--refs", "2", "--ref-size", "32", "--weights", str(lite_weights))
    assert result["mode"] == "sweep"
    names = [row["name"] for row in result["rows"]]
    assert names == ["bench", "360p", "480p", "720p", "1080p"]
    bench_row, *video = result["rows"]
    assert bench_row["measured"] and bench_row["ours_peak_rss_mb"] > 0
    assert bench_row["baseline_peak_rss_mb"] > 0
    assert not any(row["measured"] for row in video)
    assert video[-1]["baseline_attn_fits_1080Ti-11GB"] is False
    assert video[-1]["baseline_attn_peak_gb"] > video[0]["baseline_attn_peak_gb"]


def test_bench_reference_files_carry_no_frame_anchor(tmp_path):
    from pathlib import Path

    from vsremaster.references.sources import anchor_of_name
    inputs = make_inputs(64, 48, 2, 30, 32, tmp_path, tag="360p")
    names = [Path(p).name for p in inputs.ref_paths]
    assert len(set(names)) == 30 and names[0] == "ref360p_a.png" and names[26] == "ref360p_aa.png"
    assert [anchor_of_name(Path(p)) for p in inputs.ref_paths] == [None] * 30


@pytest.mark.slow
def test_bench_baseline_precision_ours_runs_the_baseline_at_ours_precision(lite_weights):
    args = ("--width", "64", "--height", "48", "--frames", "5", "--refs", "1", "--ref-size",
            "32", "--methods", "ours,baseline", "--weights", str(lite_weights))
    _, plain = _bench(*args)
    _, same = _bench(*args, "--baseline-precision", "ours")
    assert plain["baseline_precision"] == "fp32"
    assert same["baseline_precision"] == same["ours_precision"] == plain["ours_precision"]


def test_baseline_in_bfloat16_is_close_to_float32(lite_models, tmp_path):
    model_r, model_c = (copy.deepcopy(m) for m in lite_models)     # the fixture is shared
    inputs = make_inputs(64, 48, 5, 2, 32, tmp_path)
    outs = {}
    for dtype in (torch.float32, torch.bfloat16):
        got = {}
        baseline.run(model_r.to(dtype), model_c.to(dtype), inputs.frames, inputs.canvas,
                     device="cpu", dtype=dtype, sink=lambda i, l, ab, bgr: got.setdefault(i, ab))
        outs[dtype] = np.stack([got[i] for i in range(5)])
    assert outs[torch.bfloat16].dtype == np.float32
    diff = np.abs(outs[torch.bfloat16] - outs[torch.float32])
    assert 0 < diff.max() < 0.05
