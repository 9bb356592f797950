"""The example script through the real vspipe into the real ffmpeg (README's command),
and the team's full film sample (../shared)."""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs

import vsremaster
from vsremaster.remaster import build
from conftest import ROOT, bundled_only_env

VSPIPE = Path(sys.executable).with_name("vspipe")
SCRIPT = ROOT / "samples" / "remaster.vpy"
SAMPLE = ROOT / "samples" / "film" / "a-bomb_blast_effects_excerpt.mp4"
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
                                  reason="needs ffmpeg and ffprobe (Debian package ffmpeg)")

# H.273 code points in frame props -> the names ffmpeg's options and ffprobe use
MATRIX = {0: "gbr", 1: "bt709", 5: "bt470bg", 6: "smpte170m", 9: "bt2020nc"}
PRIMARIES = {1: "bt709", 5: "bt470bg", 6: "smpte170m", 9: "bt2020"}
TRANSFER = {1: "bt709", 6: "smpte170m", 13: "iec61966-2-1"}
RANGE = {0: "tv", 1: "pc"}


def readme_ffmpeg_args() -> list[str]:
    """The ffmpeg arguments of README.md's render command (after `| ffmpeg`)."""
    line = next(line for line in (ROOT / "README.md").read_text().splitlines()
                if "vspipe -c y4m samples/remaster.vpy - | ffmpeg" in line)
    return shlex.split(line.split("| ffmpeg", 1)[1])


def ffprobe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames",
                          "-show_entries", "stream=width,height,nb_read_frames,color_range,"
                          "color_space,color_transfer,color_primaries", "-of", "json",
                          str(path)], check=True, capture_output=True, text=True).stdout
    return json.loads(out)["streams"][0]


def render(tmp_path: Path, weights: Path, *extra: str) -> tuple[Path, dict]:
    """README's command with `extra` vspipe arguments: (the file, frame 0's props)."""
    out, props = tmp_path / "remastered.mp4", tmp_path / "props.json"
    args = [str(out) if a == "remastered.mp4" else a for a in readme_ffmpeg_args()]
    assert str(out) in args, "README's ffmpeg command writes remastered.mp4"
    env = dict(os.environ, VSREMASTER_WEIGHTS=str(weights))
    vspipe = subprocess.Popen([str(VSPIPE), "-c", "y4m", "-j", str(props), *extra, str(SCRIPT), "-"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path)
    ffmpeg = subprocess.run(["ffmpeg", *args], stdin=vspipe.stdout, capture_output=True, cwd=tmp_path)
    vspipe.stdout.close()
    err = vspipe.stderr.read().decode()
    assert vspipe.wait() == 0, err
    assert ffmpeg.returncode == 0, ffmpeg.stderr.decode()
    return out, json.loads(props.read_text())[0]


@pytest.mark.slow
@needs_ffmpeg
def test_readme_command_renders_the_sample_with_its_colour_tags(tmp_path, lite_weights):
    out, props = render(tmp_path, lite_weights, "-a", "mindim=64")
    info = ffprobe(out)
    assert (info["width"], info["height"], int(info["nb_read_frames"])) == (432, 320, 72)
    # the frames say what they hold, and README's ffmpeg flags write the same into the file
    assert (props["_Matrix"], props["_Primaries"], props["_Transfer"], props["_Range"]) == \
        (1, 1, 13, 0)
    assert (info["color_space"], info["color_primaries"], info["color_transfer"],
            info["color_range"]) == (MATRIX[props["_Matrix"]], PRIMARIES[props["_Primaries"]],
                                     TRANSFER[props["_Transfer"]], RANGE[props["_Range"]])
    assert props["_RemasterModel"] == "seeded-lite" and "_RemasterRefs" in props


# A script a user writes: the search finds the bundled model, one part has references,
# the other has none (the lite model keeps it grey and says so in a prop).
_Y4M_SCRIPT = """\
import vapoursynth as vs
import vsremaster
clip = vs.core.std.BlankClip(format=vs.GRAY8, width={w}, height={h}, length={n}, fpsnum=24000,
                             fpsden=1001, color=90)
out = (vsremaster.Remaster(clip, refs={refs!r}, mindim=48, device_index=-1)
       + vsremaster.Remaster(clip, mindim=48, device_index=-1))
out.set_output()
"""


def y4m_frames(data: bytes) -> tuple[list[bytes], list[bytes]]:
    """(the stream header's fields, each frame's payload) of a YUV4MPEG2 stream of 4:4:4
    8-bit frames; asserts that every byte belongs to the header or a frame."""
    header, _, rest = data.partition(b"\n")
    fields = header.split(b" ")
    assert fields[0] == b"YUV4MPEG2", header
    size = {f[:1]: f[1:] for f in fields[1:]}
    frame = 3 * int(size[b"W"]) * int(size[b"H"])
    frames = [rest[i + 6:i + 6 + frame] for i in range(0, len(rest), 6 + frame)]
    assert all(rest[i:i + 6] == b"FRAME\n" for i in range(0, len(rest), 6 + frame))
    assert len(rest) == len(frames) * (6 + frame), "the stream ends inside a frame"
    return fields, frames


def test_vspipe_stdout_holds_only_the_y4m_stream(tmp_path):
    """vspipe writes the frames to stdout: the filter's own messages (weights search, first
    load of the bundled model, progress, the grey note) must all go elsewhere."""
    w, h, n = 96, 64, 4
    script = tmp_path / "user.vpy"
    script.write_text(_Y4M_SCRIPT.format(w=w, h=h, n=n, refs=str(SAMPLE.parent / "refs")))
    done = subprocess.run([str(VSPIPE), "-c", "y4m", "-p", str(script), "-"], cwd=tmp_path,
                          env=bundled_only_env(tmp_path), capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    fields, frames = y4m_frames(done.stdout)
    assert fields == [b"YUV4MPEG2", b"C444", f"W{w}".encode(), f"H{h}".encode(),
                      b"F24000:1001", b"Ip", b"A0:0", f"XLENGTH={2 * n}".encode()]
    assert len(frames) == 2 * n
    assert frames[0] != frames[-1]          # coloured from the references, then grey
    assert b"Output 8 frames" in done.stderr


def test_a_bad_tag_on_frame_0_stops_the_script_with_a_plain_error(tmp_path):
    """A user's first error reads cleanly: vspipe fails while evaluating the script,
    with the filter's message, not a traceback from inside the first frame request."""
    script = tmp_path / "bad.vpy"
    script.write_text(
        "import vapoursynth as vs\nimport vsremaster\n"
        f"clip = vs.core.bs.VideoSource({str(SAMPLE)!r})\n"
        "clip = vs.core.std.SetFrameProps(clip, _Transfer=3)\n"
        "vsremaster.Remaster(clip, mindim=48, device_index=-1).set_output()\n")
    run = subprocess.run([str(VSPIPE), "-c", "y4m", str(script), "-"], capture_output=True,
                         env=bundled_only_env(tmp_path), cwd=tmp_path, timeout=300)
    err = run.stderr.decode()
    assert run.returncode != 0 and run.stdout == b"", err
    assert "Script evaluation failed" in err, err
    assert "Remaster: clip frame 0: _Transfer is 3; allowed: one of 1-2, 4-18" in err, err
    assert "get_frame" not in err and "FrameEval" not in err, err


def test_sample_has_a_scene_cut_and_a_reference_for_each_scene(lite_weights):
    clip = vs.core.bs.VideoSource(str(SAMPLE))
    pipe = build(clip, refs=str(ROOT / "samples" / "film" / "refs"), weights=lite_weights,
                 mindim=64, device_index=-1)
    assert pipe.scene_starts() == [0, 44]
    assert pipe.bank.anchors == [5, 44] and pipe.ref_sets() == [(0,), (1,)]   # one each


@pytest.mark.slow
@pytest.mark.shared
def test_film_sample_with_reference_bank(seeded_weights, shared_film):
    path, refs = shared_film
    clip = vs.core.bs.VideoSource(str(path))[:12]
    out = vsremaster.Remaster(clip, refs=str(refs), weights=seeded_weights,
                              mindim=64, ref_mindim=64, device_index=-1)
    assert out.format.name == "YUV444P8" and (out.width, out.height) == (432, 320)
    f = out.get_frame(6)
    assert np.std(np.asarray(f[1])) > 0       # the grey film got chroma
    assert len(np.atleast_1d(f.props["_RemasterRefs"])) == 4   # the bank's four images
