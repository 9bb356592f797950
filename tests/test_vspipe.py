"""The example script through the real vspipe into the real ffmpeg, and the film sample."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs

import vsremaster
from conftest import FILM, FILM_REFS, ROOT

VSPIPE = Path(sys.executable).with_name("vspipe")
SCRIPT = ROOT / "samples" / "remaster.vpy"


def ffprobe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames",
                          "-show_entries", "stream=width,height,nb_read_frames", "-of", "json",
                          str(path)], check=True, capture_output=True, text=True).stdout
    return json.loads(out)["streams"][0]


def render(tmp_path: Path, weights: Path, *extra: str) -> Path:
    out = tmp_path / "remastered.mp4"
    env = dict(os.environ, VSREMASTER_WEIGHTS=str(weights))
    vspipe = subprocess.Popen([str(VSPIPE), "-c", "y4m", *extra, str(SCRIPT), "-"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path)
    ffmpeg = subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", "-", "-c:v", "libx264",
                             "-preset", "ultrafast", str(out)], stdin=vspipe.stdout,
                            capture_output=True, cwd=tmp_path)
    vspipe.stdout.close()
    err = vspipe.stderr.read().decode()
    assert vspipe.wait() == 0, err
    assert ffmpeg.returncode == 0, ffmpeg.stderr.decode()
    return out


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg (Debian package)")
def test_example_script_renders_through_vspipe_and_ffmpeg(tmp_path, golden_weights):
    out = render(tmp_path, golden_weights, "-a", "mindim=64")
    info = ffprobe(out)
    assert (info["width"], info["height"], int(info["nb_read_frames"])) == (320, 240, 48)


def test_film_sample_with_reference_bank(golden_weights):
    clip = vs.core.bs.VideoSource(str(FILM))[:12]
    out = vsremaster.Remaster(clip, refs=str(FILM_REFS), weights=golden_weights,
                              mindim=64, ref_mindim=64, device_index=-1)
    assert out.format.id == clip.format.id and (out.width, out.height) == (432, 320)
    f = out.get_frame(6)
    assert np.std(np.asarray(f[1])) > 0       # the grey film got chroma
    assert len(np.atleast_1d(f.props["_RemasterRefs"])) == 4   # the bank's four images
