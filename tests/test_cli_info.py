"""`python -m vsremaster info`: versions, devices, and the weights it finds (or not)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, golden_state_dicts
from vsremaster.model.checkpoint import save_checkpoint
from vsremaster.weights import AUTHORS_MD5, AUTHORS_URL

# Runs the command as `-m` does, with the bundled models folder replaced by argv[1]:
# the repository's own models/ may hold weights, and this test needs a clean miss.
_NO_BUNDLED = """\
import runpy, sys
from pathlib import Path
import vsremaster.weights as w
bundled = Path(sys.argv[1])
w.bundled_dirs = lambda: [bundled]
sys.argv = ["python -m vsremaster", "info"]
runpy.run_module("vsremaster", run_name="__main__", alter_sys=True)
"""


@pytest.fixture(scope="module")
def lite_state():
    return golden_state_dicts(0.25)


@pytest.fixture
def env(tmp_path):
    """An environment whose user data folder is empty and inside tmp_path."""
    env = {**os.environ, "HOME": str(tmp_path / "home"), "XDG_DATA_HOME": str(tmp_path / "xdg")}
    env.pop("VSREMASTER_WEIGHTS", None)
    return env


def _run(args, env):
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=180)


def test_info_describes_weights_from_env(env, lite_state, tmp_path):
    path = save_checkpoint(tmp_path / "lite.safetensors", *lite_state, name="info-test")
    env["VSREMASTER_WEIGHTS"] = str(path)
    done = _run(["-m", "vsremaster", "info"], env)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for fragment in ("vsremaster", "python", "vapoursynth", f"torch       {torch.__version__}",
                     "numpy", "cpu:", str(path.resolve()), "info-test", "safetensors",
                     "width:      0.25", "modelR", "modelC"):
        assert fragment in out
    assert ("cuda: none available" in out) != torch.cuda.is_available()


def test_info_with_authors_layout_reports_md5(env, lite_state, tmp_path):
    path = tmp_path / "remasternet.pth.tar"
    torch.save({"modelR": lite_state[0], "modelC": lite_state[1]}, path)
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
