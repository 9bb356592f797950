"""`python -m vsremaster info`: versions, devices, and the weights it finds (or not)."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from conftest import ROOT, bundled_only_env
from vsremaster.model.checkpoint import save_checkpoint
from vsremaster.weights import AUTHORS_MD5, AUTHORS_URL

# Runs the command as `-m` does, with the bundled models folder replaced by argv[1]:
# the repository's own models/ may hold weights, and this test needs a clean miss.
_NO_BUNDLED = """\
import runpy, sys
from pathlib import Path
import vsremaster.weights as w
bundled = Path(sys.argv[1])
w.bundled_dir = lambda: bundled
sys.argv = ["python -m vsremaster", "info"]
runpy.run_module("vsremaster", run_name="__main__", alter_sys=True)
"""


@pytest.fixture
def env(tmp_path):
    """An environment whose user data folder is empty and inside tmp_path."""
    return {**bundled_only_env(tmp_path), "HOME": str(tmp_path / "home")}


def _run(args, env):
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=180)


def test_info_describes_weights_from_env(env, lite_dicts, tmp_path):
    path = save_checkpoint(tmp_path / "lite.safetensors", *lite_dicts, name="info-test")
    env["VSREMASTER_WEIGHTS"] = str(path)
    done = _run(["-m", "vsremaster", "info"], env)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for fragment in ("vsremaster", "python", "vapoursynth", f"torch       {torch.__version__}",
                     "numpy", "cpu:", str(path.resolve()), "info-test", "safetensors",
                     "width:      0.25", "modelR", "modelC"):
        assert fragment in out
    assert ("cuda: none available" in out) != torch.cuda.is_available()


def test_info_with_authors_layout_reports_md5(env, lite_dicts, tmp_path):
    path = tmp_path / "remasternet.pth.tar"
    torch.save({"modelR": lite_dicts[0], "modelC": lite_dicts[1]}, path)
    done = _run(["-m", "vsremaster", "info", "--weights", str(path)], env)
    assert done.returncode == 0, done.stderr
    assert "the authors' layout" in done.stdout
    assert "name:       remasternet.pth.tar" in done.stdout
    assert "differs from the authors' release" in done.stdout


def test_info_without_weights_lists_places_and_exits_0(env, tmp_path):
    bundled = tmp_path / "bundled"
    done = _run(["-c", _NO_BUNDLED, str(bundled)], env)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for fragment in ("no DeepRemaster weights found", "$VSREMASTER_WEIGHTS: not set",
                     str(tmp_path / "xdg" / "vsremaster"), str(bundled), AUTHORS_URL,
                     AUTHORS_MD5, "python -m vsremaster fetch", "torch"):
        assert fragment in out


def test_info_with_unusable_weights_exits_1(env, tmp_path):
    path = tmp_path / "broken.safetensors"
    path.write_text("not weights at all\n")
    done = _run(["-m", "vsremaster", "info", "--weights", str(path)], env)
    assert done.returncode == 1
    assert "unusable" in done.stdout and "not a checkpoint" in done.stdout


def test_info_on_the_bundled_model_compares_and_says_how_to_switch(env, tmp_path):
    from vsremaster.cards import MEASURED, PUBLISHED
    done = _run(["-m", "vsremaster", "info"], env)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert str(ROOT / "models" / "vsremaster-lite.safetensors") in out
    assert "name:       vsremaster-lite-step2500" in out
    assert "the model bundled with vsremaster" in out
    assert f"its card: {ROOT / 'models' / 'README.md'}" in out
    ours = MEASURED["vsremaster-lite-step2500"]
    row = next(line for line in out.splitlines() if "(measured)" in line).split()
    assert row[-3:] == [f"{ours.psnr_l:.2f}", f"{ours.psnr_ab:.2f}", f"{ours.psnr_all:.2f}"]
    row = next(line for line in out.splitlines() if "(published)" in line).split()
    assert row[-3:] == ["26.13", "34.94", "30.83"]
    assert (PUBLISHED.psnr_l, PUBLISHED.psnr_ab, PUBLISHED.psnr_all) == (26.13, 34.94, 30.83)
    assert "without references: scenes stay grey" in out and "_RemasterNote" in out
    dest = tmp_path / "xdg" / "vsremaster" / "remasternet.pth.tar"
    for fragment in ("1. python -m vsremaster fetch", AUTHORS_URL, str(dest), AUTHORS_MD5,
                     "2. python -m vsremaster info", "VSREMASTER_WEIGHTS"):
        assert fragment in out, fragment


def test_info_on_other_weights_has_no_card_and_colours_without_refs(env, lite_dicts, tmp_path):
    path = save_checkpoint(tmp_path / "lite.safetensors", *lite_dicts, name="info-test")
    env["VSREMASTER_WEIGHTS"] = str(path)
    out = _run(["-m", "vsremaster", "info"], env).stdout
    assert "neither the bundled model nor the authors' release" in out
    assert "(measured)" not in out
    assert "colours scenes from its own guess" in out
    assert "unset VSREMASTER_WEIGHTS first" in out       # it would win over a fetched file


def test_info_says_grey_for_weights_marked_so(env, lite_dicts, tmp_path):
    path = save_checkpoint(tmp_path / "lite.safetensors", *lite_dicts, name="marked",
                           without_refs="grey")
    out = _run(["-m", "vsremaster", "info", "--weights", str(path)], env).stdout
    assert "without references: scenes stay grey" in out and "without_refs=grey" in out


def test_model_card_states_the_figures_info_prints():
    """cards.py copies the card: the card must still say every figure (and the release's)."""
    from vsremaster.cards import MEASURED, PUBLISHED
    from vsremaster.references.fallback import GREY_WITHOUT_REFS
    card = (ROOT / "models" / "README.md").read_text()
    for q in (*MEASURED.values(), PUBLISHED):
        for value in (q.psnr_l, q.psnr_ab, q.psnr_all):
            assert f"{value:.2f}" in card, value
    import re
    for measured in GREY_WITHOUT_REFS.values():
        for figure in re.findall(r"\d+\.\d\d", measured):
            assert figure in card, figure
