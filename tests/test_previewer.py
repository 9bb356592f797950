"""A real previewer shows the filter's frames: vsview under Xvfb, seeking across a scene cut.

Runs benchmarks/previewer.py (vsview 0.14.0 in `.venv-preview`, on a virtual X
screen) on a tiny clip with a cut at frame 10 and the seeded weights at a quarter
width (conftest's `lite_weights`). Skipped where that venv or the system packages are missing
(`python3 benchmarks/previewer.py --setup-only` sets up the venv and lists them).
"""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
import vapoursynth as vs

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
VENV = ROOT / ".venv-preview"
CUT = 10
FRAMES = [4, 10, 17]     # scene 0, the cut, later in scene 1

SCRIPT = textwrap.dedent('''
    import sys
    sys.path.insert(0, {tests!r})
    import torch
    import vapoursynth as vs
    import vsremaster
    from clips import from_arrays, moving_pattern, scene_props

    torch.set_num_threads(1)
    clip = from_arrays(moving_pattern(20, 48, 64, seed=3), vs.YUV420P8,
                       per_frame_props=scene_props([{cut}]))
    # a second scene that looks different, so the screenshots must differ across the cut
    clip = clip[:{cut}] + clip[{cut}:].std.Invert()
    clip = clip.std.SetFrameProps(_Transfer=1, _Primaries=1)
    clip = vsremaster.Remaster(clip, refs=refs, weights=weights, mindim=32, ref_mindim=32,
                               chunk=4, device_index=-1)
    clip.set_output()
''')


def _previewer_module():
    spec = importlib.util.spec_from_file_location("previewer", ROOT / "benchmarks" / "previewer.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _skip_reason() -> str | None:
    if not (VENV / "bin" / "python").exists():
        return f"no {VENV.name} (python3 benchmarks/previewer.py --setup-only creates it)"
    check = subprocess.run([VENV / "bin" / "python", "-c", "import vsview, vsremaster"],
                           capture_output=True, text=True)
    if check.returncode:
        return f"{VENV.name} lacks vsview or vsremaster: {check.stderr.strip().splitlines()[-1:]}"
    if not shutil.which("Xvfb"):
        return "Xvfb is not installed (Debian: apt-get install xvfb)"
    missing = _previewer_module().missing_system(VENV)
    if missing:
        return "missing system packages: " + " ".join(missing)
    return None


pytestmark = pytest.mark.skipif(bool(reason := _skip_reason()), reason=reason or "")


def _refs(folder: Path) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(5)
    for n in (0, CUT):
        img = cv2.resize((rng.random((6, 8, 3)) * 255).astype(np.uint8), (64, 48))
        cv2.imwrite(str(folder / f"ref_{n:06d}.png"), img)
    return folder


@pytest.mark.slow
def test_vsview_seeks_across_a_cut_and_shows_the_frames(tmp_path, lite_weights):
    script = tmp_path / "cut.vpy"
    script.write_text(SCRIPT.format(tests=str(TESTS), cut=CUT))
    refs = _refs(tmp_path / "refs")
    out = tmp_path / "shots"
    run = subprocess.run(
        [sys.executable, ROOT / "benchmarks" / "previewer.py", script, "--frames", *map(str, FRAMES),
         "-a", f"weights={lite_weights}", "-a", f"refs={refs}", "--out", out,
         "--props-policy", "error", "--timeout", "300"],
        capture_output=True, text=True, timeout=420)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert [s["frame"] for s in result["seeks"]] == FRAMES
    assert [s["scene"] for s in result["seeks"]] == [0, CUT, CUT]     # its first frame
    assert result["spans_cut"] and not result["missing_props"]
    assert all(0 < s["shown_s"] <= s["saved_s"] for s in result["seeks"])

    # What vsview displayed is the filter's frame, and it is on the X screen
    ns = {"refs": str(refs), "weights": str(lite_weights), "__name__": "__vapoursynth__"}
    vs.clear_outputs()
    exec(compile(script.read_text(), str(script), "exec"), ns)
    rgb = ns["clip"].resize.Point(format=vs.RGB24, matrix_in=1)
    views = []
    for seek in result["seeks"]:
        png = Path(seek["png"])
        screen = cv2.imread(str(png))
        view = cv2.imread(str(png.with_suffix(".view.png")))
        with rgb.get_frame(seek["frame"]) as f:
            expected = np.dstack([np.asarray(f[p]) for p in (2, 1, 0)])    # BGR, as cv2 reads
        assert view.shape == expected.shape
        assert np.abs(view.astype(int) - expected).mean() < 3, seek
        match = cv2.matchTemplate(screen, view, cv2.TM_SQDIFF_NORMED).min()
        assert match < 1e-3, (seek, match)
        views.append(view)
    vs.clear_outputs()
    assert np.abs(views[0].astype(int) - views[1]).mean() > 20     # the cut is visible
