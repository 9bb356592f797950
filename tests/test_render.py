"""`python -m vsremaster render`: segments on workers and on Ray equal one vspipe render,
a killed render resumes, and the refusals.

Renders run the real vspipe and ffmpeg on a tiny seeded model (width 0.125, mindim 32)
over a generated 48-frame clip with scene changes at 16 and 32; the other scripts are
plain VapourSynth (no model), so they render in a fraction of a second.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import vapoursynth as vs
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT
from vsremaster.render import RenderError, RenderFailed, render, work_folder
from vsremaster.render.manifest import Manifest
from vsremaster.render.media import VideoInfo, vspipe
from vsremaster.render.plan import plan_segments, scene_starts
from vsremaster.render.probe import _describe

CUTS = (16, 32)
FILM = f"""
import numpy as np
import vapoursynth as vs
import vsremaster
N, H, W, CUTS = 48, 48, 64, {CUTS!r}
def fill(n, f):
    scene = sum(n >= c for c in CUTS)
    rng = np.random.default_rng(scene)
    base = np.kron(rng.random((H // 4 + 2, (W + 2 * N) // 4 + 2)), np.ones((4, 4)))
    k = n - ([0] + list(CUTS))[scene]
    out = f.copy()
    img = np.clip(0.6 * base[:H, 2 * k:2 * k + W] + 0.15 * scene, 0, 1)
    np.copyto(np.asarray(out[0]), (16 + 219 * img).astype(np.uint8))
    if n in CUTS:
        out.props["_SceneChangePrev"] = 1
    return out
blank = vs.core.std.BlankClip(format=vs.GRAY8, width=W, height=H, length=N, fpsnum=24, fpsden=1)
source = vs.core.std.ModifyFrame(blank, blank, fill)
vsremaster.Remaster(source, weights=weights, mindim=32, device_index=-1).set_output()
"""

# Plain VapourSynth: random planes in any format (`fmt`), `n` frames.
PATTERN = """
import numpy as np
import vapoursynth as vs
fm = vs.core.get_video_format(getattr(vs, globals().get("fmt", "YUV420P8")))
clip = vs.core.std.BlankClip(format=fm.id, width=40, height=24, length=int(globals().get("n", 12)),
                             fpsnum=30000, fpsden=1001)
def fill(n, f):
    out = f.copy()
    rng = np.random.default_rng(n)
    for p in range(out.format.num_planes):
        a = np.asarray(out[p])
        a[...] = rng.integers(0, 1 << out.format.bits_per_sample, a.shape)
    return out
vs.core.std.ModifyFrame(clip, clip, fill).set_output()
"""


def env() -> dict:
    # scripts import vsremaster from this checkout, as the test process does
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}


@pytest.fixture(scope="module", autouse=True)
def _checkout_on_path():
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = env()["PYTHONPATH"]
    yield
    if before is None:
        os.environ.pop("PYTHONPATH")
    else:
        os.environ["PYTHONPATH"] = before


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """Seeded weights of a narrow model: a segment renders in about a second."""
    from vsremaster.model import NetworkC, NetworkR
    from vsremaster.model.checkpoint import save_checkpoint
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny") / "tiny.safetensors"
    return save_checkpoint(path, NetworkR(0.125).state_dict(), NetworkC(0.125).state_dict(),
                           name="tiny")


@pytest.fixture(scope="module")
def film(tmp_path_factory, tiny) -> tuple[Path, bytes]:
    """The film script and what one `vspipe -c y4m` render of it writes."""
    folder = tmp_path_factory.mktemp("film")
    script = folder / "film.vpy"
    script.write_text(FILM)
    out = subprocess.run([vspipe(), "-c", "y4m", "-a", f"weights={tiny}", str(script), "-"],
                         capture_output=True, env=env(), check=True).stdout
    return script, out


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def y4m_frames(data: bytes, frame_bytes: int) -> list[bytes]:
    body = data[data.index(b"\n") + 1:]
    step = 6 + frame_bytes
    assert len(body) % step == 0
    frames = [body[i:i + step] for i in range(0, len(body), step)]
    assert all(f.startswith(b"FRAME\n") for f in frames)
    return [f[6:] for f in frames]


def decode(path: Path, pix_fmt: str) -> bytes:
    return subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo",
                           "-pix_fmt", pix_fmt, "-"], capture_output=True, check=True).stdout


def codec(path: Path) -> str:
    return subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name",
                           "-of", "csv=p=0", str(path)],
                          capture_output=True, text=True).stdout.strip()


def log_lines(output: Path, start: int = 0) -> list[str]:
    return (work_folder(output) / "render.log").read_text().splitlines()[start:]


# --------------------------------------------------------------------------- planning

def test_segments_end_at_the_scene_change_nearest_k():
    assert plan_segments(100, [0, 18, 45, 52, 80], 20) == [(0, 18), (18, 45), (45, 65), (65, 80),
                                                           (80, 100)]
    # no scene change within k/2 of the target: cut k frames in; short tails join the last
    assert plan_segments(100, [0], 30) == [(0, 30), (30, 60), (60, 100)]
    assert plan_segments(10, [0, 5], 30) == [(0, 10)]
    assert plan_segments(48, [0, 16, 32], 16) == [(0, 16), (16, 32), (32, 48)]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 400), st.lists(st.integers(0, 400), max_size=30), st.integers(1, 60))
def test_segments_cover_the_film_in_bounded_pieces(n, starts, k):
    segs = plan_segments(n, starts, k)
    assert segs[0][0] == 0 and segs[-1][1] == n
    assert all(a < b for a, b in segs) and all(s[1] == t[0] for s, t in zip(segs, segs[1:]))
    assert all(b - a <= k + k // 2 for a, b in segs)
    assert all(b - a >= max(1, k // 2) for a, b in segs[:-1])
    cuts = set(starts)
    # every cut is a scene change, or k frames in where none is within k/2 of that
    for a, b in segs[:-1]:
        near = [s for s in cuts if a + max(1, k // 2) <= s <= a + k + k // 2]
        assert b in cuts if near else b == a + k


def test_scene_starts_are_the_filters(tiny):
    from clips import from_arrays, moving_pattern
    from vsremaster.remaster import build
    grey = np.concatenate([moving_pattern(9, 48, 64, seed=1),
                           moving_pattern(7, 48, 64, seed=2) * 0.4,
                           moving_pattern(8, 48, 64, seed=3)])
    clip = from_arrays(grey, vs.GRAY8)
    for threshold in (None, 0.3):
        filt = build(clip, weights=tiny, mindim=32, device_index=-1, sc_threshold=threshold)
        assert scene_starts(clip, threshold) == filt.scene_starts()
    assert scene_starts(clip, None) == [0, 9, 16]


def test_y4m_header_is_vspipes(tmp_path):
    script = write(tmp_path, "p.vpy", PATTERN)
    for fmt in ("YUV420P8", "YUV420P10", "YUV444P16", "YUV422P12", "YUV410P8", "GRAY8", "GRAY16"):
        got = subprocess.run([vspipe(), "-c", "y4m", "-a", f"fmt={fmt}", "-a", "n=2", str(script),
                              "-"], capture_output=True, check=True).stdout
        clip = vs.core.std.BlankClip(format=getattr(vs, fmt), width=40, height=24, length=2,
                                     fpsnum=30000, fpsden=1001)
        info = VideoInfo.from_dict(_describe(clip))
        assert got.startswith(info.y4m_header()), fmt
        assert len(got) == len(info.y4m_header()) + 2 * (6 + info.frame_bytes()), fmt


# --------------------------------------------------------------------------- rendering

@pytest.mark.slow
def test_killed_render_resumes_only_unfinished_segments(film, tiny, tmp_path):
    script, reference = film
    out = tmp_path / "film.y4m"
    cmd = [sys.executable, "-m", "vsremaster", "render", str(script), str(out), "--workers", "2",
           "--segment-frames", "16", "--no-progress", "-a", f"weights={tiny}"]
    work = work_folder(out)
    with open(tmp_path / "stderr.txt", "wb") as err:
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env(), start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and proc.poll() is None:
                if (work / "manifest.json").exists() and any(
                        s.done for s in Manifest.load(work).segments):
                    break
                time.sleep(0.1)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)   # the command, its vspipes and ffmpegs
            proc.wait()
    man = Manifest.load(work)
    finished = [i for i, s in enumerate(man.segments) if s.done]
    assert [(s.start, s.end) for s in man.segments] == [(0, 16), (16, 32), (32, 48)]
    assert man.scenes_from == "the scene changes of the script's Remaster source"
    assert 1 <= len(finished) < 3, (tmp_path / "stderr.txt").read_text()
    stamps = {i: (work / man.segments[i].file).stat().st_mtime_ns for i in finished}

    seen = len(log_lines(out))
    render(script, out, workers=2, args=[f"weights={tiny}"], progress=False)
    assert out.read_bytes() == reference            # the same bytes as one vspipe render
    resumed = log_lines(out, seen)
    for i, seg in enumerate(man.segments):
        label = seg.label(i)
        checked = any(f"{label}: finished earlier, checked" in line for line in resumed)
        assert checked == (i in finished)
        assert any(f"{label}: rendered" in line for line in resumed) == (i not in finished)
    assert all((work / man.segments[i].file).stat().st_mtime_ns == t for i, t in stamps.items())
    assert not list(work.glob("*.part"))


@pytest.mark.parametrize("fmt, segments", [("RGB24", "ffv1"), ("YUV420P10", "y4m")])
def test_lossless_in_every_format(tmp_path, fmt, segments):
    script = write(tmp_path, "p.vpy", PATTERN)
    raw = subprocess.run([vspipe(), "-a", f"fmt={fmt}", str(script), "-"], capture_output=True,
                         check=True).stdout           # raw planes, in ffmpeg's plane order
    mkv = render(script, tmp_path / "p.mkv", workers=2, segment_frames=5, args=[f"fmt={fmt}"],
                 segment_format=segments, progress=False)
    man = Manifest.load(work_folder(mkv))
    info = VideoInfo.from_dict(man.info)
    assert len(man.segments) == 2 and man.kind == segments
    assert all(s.file.endswith(".mkv" if segments == "ffv1" else ".y4m") for s in man.segments)
    assert decode(mkv, info.pix_fmt()) == raw and codec(mkv) == "ffv1"
    if fmt != "RGB24":                                # the same segments, joined as y4m
        y4m = render(script, tmp_path / "p.y4m", args=[f"fmt={fmt}"], progress=False)
        assert y4m.read_bytes() == subprocess.run(
            [vspipe(), "-c", "y4m", "-a", f"fmt={fmt}", str(script), "-"], capture_output=True,
            check=True).stdout
    # anything else goes through ffmpeg with --ffmpeg-args (rawvideo: exact, and not the
    # container's default codec)
    nut = render(script, tmp_path / "p.nut", ffmpeg_args="-c:v rawvideo", args=[f"fmt={fmt}"],
                 clean=True, progress=False)
    assert decode(nut, info.pix_fmt()) == raw and codec(nut) == "rawvideo"
    assert not work_folder(nut).exists()                       # --clean


def test_resume_checks_finished_segments(tmp_path):
    script = write(tmp_path, "p.vpy", PATTERN)
    out = render(script, tmp_path / "p.y4m", segment_frames=4, progress=False)
    work = work_folder(out)
    segs = Manifest.load(work).segments
    assert len(segs) == 3
    data = bytearray((work / segs[1].file).read_bytes())
    data[-100] ^= 0xFF                                   # same size, other bytes
    (work / segs[1].file).write_bytes(bytes(data))
    (work / segs[2].file).unlink()
    stamp = (work / segs[0].file).stat().st_mtime_ns
    seen = len(log_lines(out))
    mkv = render(script, tmp_path / "p.mkv", progress=False)     # same work folder
    lines = log_lines(out, seen)
    assert any("segment 0 (frames 0-3): finished earlier, checked" in line for line in lines)
    assert any("segment 1 (frames 4-7): its file's SHA-256 differs" in line for line in lines)
    assert any("segment 2 (frames 8-11): its file is missing" in line for line in lines)
    assert sum(": rendered in" in line for line in lines) == 2
    assert (work / segs[0].file).stat().st_mtime_ns == stamp
    raw = subprocess.run([vspipe(), str(script), "-"], capture_output=True, check=True).stdout
    assert decode(mkv, "yuv420p") == raw and codec(mkv) == "ffv1"


# --------------------------------------------------------------------------- refusals

def refused(match: str, *args, **kwargs) -> RenderError:
    with pytest.raises(RenderError, match=match) as e:
        render(*args, progress=False, **kwargs)
    assert str(e.value).startswith("render: ")
    return e.value


def test_script_without_output(tmp_path):
    script = write(tmp_path, "none.vpy",
                   "import vapoursynth as vs\nclip = vs.core.std.BlankClip()\n")
    e = refused(r"has nothing to render \(no output\).*set_output", script, tmp_path / "x.mkv")
    assert e.exit_code == 2
    assert not work_folder(tmp_path / "x.mkv").exists()     # nothing left behind


def test_output_folder_not_writable(tmp_path):
    script = write(tmp_path, "p.vpy", PATTERN)
    refused("OUTPUT folder .*missing does not exist", script, tmp_path / "missing" / "x.mkv")
    refused("OUTPUT .* is a folder", script, tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if os.access(locked, os.W_OK):     # root ignores modes; /sys refuses new files
            locked = Path("/sys")
            if os.access(locked, os.W_OK) and _can_create(locked):
                pytest.skip("no folder here refuses this user's writes")
        refused(f"OUTPUT folder {locked} is not writable", script, locked / "x.mkv")
    finally:
        (tmp_path / "locked").chmod(0o755)


def _can_create(folder: Path) -> bool:
    try:
        (folder / "vsremaster-write-test").mkdir()
    except OSError:
        return False
    (folder / "vsremaster-write-test").rmdir()
    return True


def test_changed_script_or_arguments_on_resume(tmp_path):
    script = write(tmp_path, "p.vpy", PATTERN)
    out = render(script, tmp_path / "p.y4m", args=["n=6"], segment_frames=3, progress=False)
    refused("the -a arguments changed .*were {'n': '6'}, now {'n': '7'}.*--restart", script, out,
            args=["n=7"])
    script.write_text(PATTERN + "\n# edited\n")
    refused(r"SCRIPT .*p\.vpy changed since the segments .*\(2 finished.*--restart", script, out,
            args=["n=6"])
    render(script, out, args=["n=7"], restart=True, progress=False)
    assert len(y4m_frames(out.read_bytes(), 40 * 24 * 3 // 2)) == 7
    assert any("--restart: discarded 2 finished segments" in line for line in log_lines(out))


def test_bad_arguments_and_formats(tmp_path):
    script = write(tmp_path, "p.vpy", PATTERN)
    refused("-a 'fmt': expected NAME=VALUE", script, tmp_path / "a.mkv", args=["fmt"])
    refused("--workers must be at least 1", script, tmp_path / "a.mkv", workers=0)
    refused("--segment-frames must be at least 1", script, tmp_path / "a.mkv", segment_frames=0)
    refused("--ffmpeg-args does not apply to a .y4m", script, tmp_path / "a.y4m",
            ffmpeg_args="-c:v libx264")
    refused("a .y4m OUTPUT cannot hold RGB24", script, tmp_path / "rgb.y4m", args=["fmt=RGB24"])
    refused("output is YUV444PS, a float format", script, tmp_path / "f.mkv", args=["fmt=YUV444PS"])


FAILING = """
import os
import vapoursynth as vs
clip = vs.core.std.BlankClip(format=vs.GRAY8, width=16, height=16, length=12)
def frame(n, f):
    if n == 7:
        with open(log, "a") as out:
            out.write(f"{os.getpid()}\\n")
        raise ValueError("frame 7 is broken")
    return f
vs.core.std.ModifyFrame(clip, clip, frame).set_output()
"""


def test_segment_failing_three_times(tmp_path, capsys):
    from vsremaster.__main__ import main
    attempts = tmp_path / "attempts.txt"
    script = write(tmp_path, "fail.vpy", FAILING)
    out = tmp_path / "f.mkv"
    code = main(["render", str(script), str(out), "--workers", "2", "--segment-frames", "4",
                 "--no-progress", "-a", f"log={attempts}"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "render: segment 1 (frames 4-7) failed 3 times" in err
    assert "frame 7 is broken" in err
    assert len(set(attempts.read_text().split())) == 3       # three vspipe processes
    assert not out.exists()
    segs = Manifest.load(work_folder(out)).segments          # the others are kept
    assert [s.done for s in segs] == [True, False, True]


# --------------------------------------------------------------------------- Ray

@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray",
                              reason="Ray is not installed (pip install 'vsremaster[cluster]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_cluster_render_equals_one_vspipe_render(film, tiny, tmp_path, local_ray):
    script, reference = film
    out = render(script, tmp_path / "ray.mkv", cluster="auto", segment_frames=24,
                 args=[f"weights={tiny}"], progress=False)
    man = Manifest.load(work_folder(out))
    assert [(s.start, s.end) for s in man.segments] == [(0, 16), (16, 48)]
    info = VideoInfo.from_dict(man.info)
    assert decode(out, info.pix_fmt()) == b"".join(y4m_frames(reference, info.frame_bytes()))
    assert codec(out) == "ffv1"


def test_ray_retries_a_failing_segment_then_reports_it(tmp_path, local_ray):
    attempts = tmp_path / "attempts.txt"
    script = write(tmp_path, "fail.vpy", FAILING)
    with pytest.raises(RenderFailed, match=r"segment 1 \(frames 4-7\) failed 3 times") as e:
        render(script, tmp_path / "f.mkv", cluster="auto", segment_frames=4,
               args=[f"log={attempts}"], progress=False)
    assert "frame 7 is broken" in str(e.value)
    assert len(set(attempts.read_text().split())) == 3


def test_ray_task_returns_the_file_when_its_node_lacks_the_work_folder(tmp_path, local_ray):
    from vsremaster.render.segments import Job
    from vsremaster.render.workers import TOKEN_FILE, _Frames, _ray_segment
    script = write(tmp_path, "p.vpy", PATTERN)
    work = tmp_path / "film.render"
    work.mkdir()
    (work / TOKEN_FILE).write_text("this render's token")
    job = Job(0, 2, 6, str(script), (), str(tmp_path), "ffv1", "yuv420p", 1440,
              str(work / "segment-0000.mkv"))
    task = local_ray.remote(_ray_segment)
    frames = local_ray.remote(num_cpus=0)(_Frames).remote()
    elsewhere = local_ray.get(task.remote(job, "another render's token", frames))
    assert not Path(job.path).exists()
    data = elsewhere.pop("data")
    assert hashlib.sha256(data).hexdigest() == elsewhere["sha256"] and elsewhere["frames"] == 4
    returned = tmp_path / "returned.mkv"
    returned.write_bytes(data)
    raw = subprocess.run([vspipe(), "-s", "2", "-e", "5", str(script), "-"], capture_output=True,
                         check=True).stdout
    assert decode(returned, "yuv420p") == raw
    shared = local_ray.get(task.remote(job, "this render's token", frames))
    assert "data" not in shared and Path(job.path).read_bytes() == data
