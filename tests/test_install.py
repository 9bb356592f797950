"""The way users install: a wheel built from the checkout's files (what `pip install .`,
`pip install git+URL` and a package index build), installed non-editable into a folder
of its own and run from there, with no checkout on the path."""
from __future__ import annotations

import configparser
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT, bundled_only_env

_SETUP = configparser.ConfigParser()
_SETUP.read(ROOT / "setup.cfg")
VERSION = _SETUP["metadata"]["version"]
MODEL = "vsremaster-lite.safetensors"
#: The bundled model is 16 MB (15 compressed); the rest of the wheel is code.
MAX_WHEEL_BYTES = 20 << 20

_RENDER = """\
import json, sys
from importlib import metadata
import vapoursynth as vs
import vsremaster
from vsremaster.weights import bundled_dir, find_weights
clip = vs.core.std.BlankClip(format=vs.GRAY8, width=64, height=48, length=4, color=90)
frame = vsremaster.Remaster(clip, mindim=48, device_index=-1).get_frame(2)
print(json.dumps({"files": [m.__file__ for n, m in sys.modules.items()
                            if n.partition(".")[0] == "vsremaster"],
                  "version": vsremaster.__version__, "dist": metadata.version("vsremaster"),
                  "bundled": str(bundled_dir()), "found": str(find_weights()),
                  "model": frame.props["_RemasterModel"], "format": frame.format.name}))
"""


def _pip(*args: str | Path) -> None:
    """pip offline: the build uses the setuptools of this environment."""
    done = subprocess.run([sys.executable, "-m", "pip", *map(str, args), "--no-deps",
                           "--no-index", "--disable-pip-version-check", "-q"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel of a clean clone: the checkout's tracked and not-ignored files only (no
    build/, egg-info or venv), so what is not committed yet is tested too."""
    clone, dist = tmp_path_factory.mktemp("clone"), tmp_path_factory.mktemp("dist")
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                            "--exclude-standard"], cwd=ROOT, capture_output=True,
                           check=True).stdout.split(b"\0")
    for name in filter(None, map(os.fsdecode, names)):
        if (ROOT / name).is_file():          # not a file deleted in the working tree
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, clone / name)
    _pip("wheel", "--no-build-isolation", "-w", dist, clone)
    (built,) = dist.glob("*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """The wheel installed non-editable into a folder of its own (`pip install --target`)."""
    target = tmp_path_factory.mktemp("site")
    _pip("install", "--target", target, wheel)
    return target


def _run_installed(args, installed: Path, tmp_path: Path) -> str:
    """`args` with only the installed copy on the path, from a folder outside the checkout."""
    env = {**bundled_only_env(tmp_path), "PYTHONPATH": str(installed)}
    done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_wheel_carries_the_model_and_its_card_and_no_project_files(wheel):
    assert wheel.name == f"vsremaster-{VERSION}-py3-none-any.whl"
    assert wheel.stat().st_size < MAX_WHEEL_BYTES
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        for name in (MODEL, "README.md"):
            packaged = z.read(f"vsremaster/models/{name}")
            assert hashlib.sha256(packaged).digest() == \
                hashlib.sha256((ROOT / "models" / name).read_bytes()).digest()
        entry_points = z.read(f"vsremaster-{VERSION}.dist-info/entry_points.txt").decode()
    assert "vsremaster = vsremaster.__main__:main" in entry_points
    assert all(n.startswith(("vsremaster/", f"vsremaster-{VERSION}.dist-info/")) for n in names)
    assert [n for n in names if not n.endswith(".py") and ".dist-info/" not in n] == \
        ["vsremaster/models/README.md", f"vsremaster/models/{MODEL}"]


def test_installed_copy_finds_its_bundled_model_and_renders(installed, tmp_path):
    report = json.loads(_run_installed([sys.executable, "-c", _RENDER], installed, tmp_path))
    assert report["files"] and all(Path(f).is_relative_to(installed) for f in report["files"])
    assert report["version"] == report["dist"] == VERSION
    assert report["bundled"] == str(installed / "vsremaster" / "models")
    assert report["found"] == str(installed / "vsremaster" / "models" / MODEL)
    assert report["model"] == "vsremaster-lite-step2500" and report["format"] == "YUV444P8"


@pytest.mark.slow
def test_console_script_is_python_m_vsremaster(installed, tmp_path):
    script = installed / "bin" / "vsremaster"
    assert script.is_file()
    by_script = _run_installed([str(script), "info"], installed, tmp_path)
    by_module = _run_installed([sys.executable, "-m", "vsremaster", "info"], installed, tmp_path)
    assert by_script == by_module
    assert f"vsremaster  {VERSION} ({installed / 'vsremaster'})" in by_script
    assert f"path:       {installed / 'vsremaster' / 'models' / MODEL}" in by_script
    assert f"its card: {installed / 'vsremaster' / 'models' / 'README.md'}" in by_script
    assert "in use:     the model bundled with vsremaster" in by_script


def test_version_is_the_installed_distributions():
    from importlib import metadata
    import vsremaster
    assert vsremaster.__version__ == metadata.version("vsremaster") == VERSION
