"""`suggest --export DIR`: the suggested frames at full size, grey, named as the refs
folder anchors them; coloured and dropped into the refs folder, they raise the
confidence of their scenes. Bad folders are refused before any work, nothing half-written.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import vapoursynth as vs

from clips import from_arrays, moving_pattern
from vsremaster.references.sources import anchor_of_name
from vsremaster.references.suggest import ExportError, export_grey, grey_picture

core = vs.core
W, H = 128, 96
SCENE = 8                               # frames per scene
TINTS = ((1.0, 0.55, 0.35), (0.4, 0.9, 0.5), (0.45, 0.6, 1.0))      # RGB, one per scene
GAINS = (0.35, 1.0, 0.6)                # brightness, unlike enough to be cut apart


def colour_frames() -> np.ndarray:
    """uint8 RGB [3 * SCENE, H, W, 3]: three scenes of their own texture and colour."""
    scenes = []
    for i, (tint, gain) in enumerate(zip(TINTS, GAINS)):
        grey = moving_pattern(SCENE, H, W, seed=10 + i, shift=3) * gain
        scenes.append(np.clip(grey[..., None] * np.array(tint), 0, 1))
    return np.round(np.concatenate(scenes) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def film(tmp_path_factory):
    """(a black-and-white H.264 video of the colour frames, the colour frames)."""
    folder = tmp_path_factory.mktemp("film")
    frames = colour_frames()
    video = folder / "film.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                    "-s", f"{W}x{H}", "-r", "24", "-i", "-", "-vf", "hue=s=0,format=yuv420p",
                    "-c:v", "libx264", "-qp", "0", "-colorspace", "bt709",
                    "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv",
                    str(video)], input=frames.tobytes(), check=True)
    return video, frames


def suggest(*args, check=True) -> subprocess.CompletedProcess:
    run = subprocess.run([sys.executable, "-m", "vsremaster", "suggest", *map(str, args),
                          "--no-progress"], capture_output=True, text=True, timeout=600)
    if check:
        assert run.returncode == 0, run.stderr
    return run


def record(run: subprocess.CompletedProcess) -> dict:
    return json.loads(run.stdout.strip().splitlines()[-1])


def decoded_grey(video: Path) -> np.ndarray:
    """The video's frames as another decoder (cv2) shows them: uint8 grey [N, H, W]."""
    cap, out = cv2.VideoCapture(str(video)), []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        out.append(frame[..., 1])
    return np.stack(out)


def coloured(grey: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """What a colourist makes of an exported grey frame: its lightness, the true a*b*
    (BGR uint8, ready for cv2.imwrite)."""
    g = np.repeat(grey[..., None], 3, -1).astype(np.float32) / 255
    lab = cv2.cvtColor(truth.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    lab[..., 0] = cv2.cvtColor(g, cv2.COLOR_RGB2Lab)[..., 0]
    rgb = np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB), 0, 1)
    return np.round(rgb[..., ::-1] * 255).astype(np.uint8)


@pytest.mark.slow
def test_export_colour_and_drop_in_raises_the_confidence(film, lite_weights, tmp_path):
    video, truth = film
    refs = tmp_path / "refs"
    refs.mkdir()
    cv2.imwrite(str(refs / "ref_000000.png"), truth[0][..., ::-1])    # scene 1 coloured
    out = tmp_path / "to-colour"
    common = ["--weights", lite_weights, "--mindim", 64, "--ref-mindim", 64,
              "--device-index", -1, "--sheet", tmp_path / "sheet.png"]
    first = suggest(video, "--refs", refs, "-n", 2, "--export", out, *common)
    before = record(first)
    assert before["scenes"] == 3, before
    picked = before["suggestions"]
    assert all(s["scene"][0] > 0 for s in picked)      # the two scenes without a reference
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(f"ref_{s['frame']:06d}.png" for s in picked), names
    assert [Path(p).name for p in before["exported"]] == [f"ref_{s['frame']:06d}.png"
                                                        for s in picked]
    grey_video = decoded_grey(video)
    for s in picked:
        png = cv2.imread(str(out / f"ref_{s['frame']:06d}.png"), cv2.IMREAD_UNCHANGED)
        assert anchor_of_name(out / f"ref_{s['frame']:06d}.png") == s["frame"]
        # full size, one 8-bit grey channel, the picture as a viewer sees it
        assert png.shape == (H, W) and png.dtype == np.uint8
        diff = np.abs(png.astype(float) - grey_video[s["frame"]]).mean()
        assert diff <= 2, (s["frame"], diff)

    # the same export again: the frames (perhaps coloured by now) are kept, nothing written
    stamp = {p.name: p.read_bytes() for p in out.iterdir()}
    again = suggest(video, "--refs", refs, "-n", 2, "--export", out, *common, check=False)
    assert again.returncode == 1 and "already holds" in again.stderr and "--force" in again.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == stamp      # no temp left either

    # colour them (synthetically: the true colour at the exported lightness), drop them in
    for s in picked:
        name = f"ref_{s['frame']:06d}.png"
        grey = cv2.imread(str(out / name), cv2.IMREAD_UNCHANGED)
        cv2.imwrite(str(refs / name), coloured(grey, truth[s["frame"]]))
    after = record(suggest(video, "--refs", refs, "-n", 10, *common))
    mean_after = {tuple(s["scene"]): s["mean"] for s in after["suggestions"]}
    for s in picked:
        assert mean_after[tuple(s["scene"])] > s["mean"] + 0.01, (s, mean_after)

    # --force overwrites
    forced = suggest(video, "--refs", tmp_path / "refs", "-n", 1, "--export", out, "--force",
                     *common)
    assert record(forced)["exported"]


# --- refusals, before any work --------------------------------------------------------------

@pytest.fixture
def refs_dir(tmp_path, film):
    refs = tmp_path / "refs"
    refs.mkdir()
    cv2.imwrite(str(refs / "ref_000000.png"), film[1][0][..., ::-1])
    return refs


def refused(film, refs_dir, tmp_path, *extra) -> str:
    sheet = tmp_path / "sheet.png"
    run = suggest(film[0], "--refs", refs_dir, "--sheet", sheet, "--device-index", -1,
                  *extra, check=False)
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert not sheet.exists()                  # refused before any work
    assert "Traceback" not in run.stderr
    return run.stderr


def test_an_export_path_that_is_a_file_is_refused(film, refs_dir, tmp_path):
    file = tmp_path / "taken.png"
    file.write_bytes(b"x")
    err = refused(film, refs_dir, tmp_path, "--export", file)
    assert f"suggest: --export '{file}' is a file; allowed: a directory" in err
    err = refused(film, refs_dir, tmp_path, "--export", file / "below")
    assert f"'{file}' is a file" in err
    assert file.read_bytes() == b"x"


def test_an_export_folder_that_is_not_writable_is_refused(film, refs_dir, tmp_path):
    if os.geteuid() == 0:            # root writes through permission bits: a read-only mount
        folder = Path("/sys")
    else:
        folder = tmp_path / "locked"
        folder.mkdir()
        folder.chmod(0o500)
    err = refused(film, refs_dir, tmp_path, "--export", folder / "new")
    assert f"suggest: --export '{folder}' is not writable" in err
    assert not (folder / "new").exists()


def test_the_refs_folder_itself_is_refused_and_force_needs_export(film, refs_dir, tmp_path):
    err = refused(film, refs_dir, tmp_path, "--export", refs_dir)
    assert "is the refs folder" in err and "allowed: another folder" in err
    assert "--force needs --export" in refused(film, refs_dir, tmp_path, "--force")


# --- what is written ----------------------------------------------------------------------------

def test_rgb_and_deep_sources_export_the_grey_a_viewer_sees(tmp_path):
    """A neutral RGB grey comes back as itself; colours as the grey of their luminance
    (the networks' L*); deeper sources as 16-bit PNGs."""
    levels = np.linspace(0.05, 0.95, W, dtype=np.float32)
    neutral = np.broadcast_to(levels, (2, 3, H, W)).copy()
    out = export_grey(from_arrays(neutral, vs.RGB24), [1], tmp_path / "rgb")
    png = cv2.imread(str(out[0]), cv2.IMREAD_UNCHANGED)
    want = np.asarray(core.resize.Point(from_arrays(neutral, vs.RGB24), format=vs.RGB24)
                      .get_frame(1)[1])
    assert png.dtype == np.uint8 and np.abs(png.astype(int) - want).max() <= 1
    red = np.zeros((1, 3, H, W), np.float32)
    red[:, 0] = 1.0
    png = cv2.imread(str(export_grey(from_arrays(red, vs.RGBS), [0], tmp_path / "red")[0]),
                     cv2.IMREAD_UNCHANGED)
    # sRGB red: luminance 0.2127, the grey of which is code 0.4985
    assert png.dtype == np.uint16 and abs(png.mean() / 65535 - 0.4985) < 0.002
    deep = from_arrays(moving_pattern(2, H, W), vs.GRAY16)
    png = cv2.imread(str(export_grey(deep, [0], tmp_path / "deep")[0]), cv2.IMREAD_UNCHANGED)
    expect = np.asarray(core.resize.Point(deep, format=vs.GRAY16, range_s="full")
                        .get_frame(0)[0])
    assert png.dtype == np.uint16 and np.abs(png.astype(int) - expect).max() <= 1


def test_an_odd_entry_at_a_target_name_stops_the_export_whole(tmp_path):
    clip = from_arrays(moving_pattern(4, H, W), vs.GRAY8)
    folder = tmp_path / "out"
    (folder / "ref_000003.png").mkdir(parents=True)
    with pytest.raises(ExportError, match="ref_000003.png, not a plain file"):
        export_grey(clip, [1, 3], folder, overwrite=True)
    assert sorted(p.name for p in folder.iterdir()) == ["ref_000003.png"]    # nothing else
    (folder / "ref_000003.png").rmdir()
    (folder / "ref_000001.png").write_bytes(b"coloured by hand")
    with pytest.raises(ExportError, match="already holds ref_000001.png"):
        export_grey(clip, [1, 3], folder)
    assert sorted(p.name for p in folder.iterdir()) == ["ref_000001.png"]
    assert (folder / "ref_000001.png").read_bytes() == b"coloured by hand"
    written = export_grey(clip, [1, 3], folder, overwrite=True)
    assert sorted(p.name for p in folder.iterdir()) == ["ref_000001.png", "ref_000003.png"]
    assert grey_picture(clip).format.id == vs.GRAY8 and len(written) == 2
