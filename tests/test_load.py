"""Load: the real vspipe with 1 and 4 threads, a long render's cache and memory, SIGINT.

What an interrupted vspipe leaves (VapourSynth R81 on Linux). The venv's `bin/vspipe`
is a Python wrapper that runs the vspipe binary of the vapoursynth package.
- Ctrl+C in a terminal (SIGINT to the whole process group): the binary exits at once
  (status 1, no message) and the wrapper exits with status 0.
- SIGINT to the binary alone: it exits at once with status 1, no message.
Either way it stops within a fraction of a second, and its output file stays as far as
its stdio buffer got (a multiple of 4 KiB, usually cut inside a frame): that partial
file is vspipe's own. The filter writes no file of its own and no temp file anywhere:
HOME and TMPDIR pointed at empty folders stay empty apart from BestSource's index cache
(`$HOME/bsindex`, written by the sample script's bs.VideoSource, not by the filter).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import vapoursynth as vs

from vsremaster.remaster import build
from clips import from_arrays, moving_pattern, scene_props
from conftest import ROOT

VSPIPE = Path(sys.executable).with_name("vspipe")
SAMPLE = ROOT / "samples" / "remaster.vpy"
needs_ffmpeg = pytest.mark.skipif(subprocess.run(["which", "ffmpeg"], capture_output=True)
                                  .returncode != 0, reason="needs ffmpeg (Debian package)")


def lavfi(path: Path, *sources: tuple[str, float], size: str) -> Path:
    """A grey video file of (lavfi source, seconds) one after the other (a cut between each)."""
    args = ["ffmpeg", "-v", "error", "-y"]
    for name, seconds in sources:
        args += ["-t", str(seconds), "-f", "lavfi", "-i", f"{name}=size={size}:rate=24"]
    n = len(sources)
    graph = "".join(f"[{i}:v]format=gray[s{i}];" for i in range(n))
    graph += "".join(f"[s{i}]" for i in range(n)) + f"concat=n={n}:v=1:a=0[v]"
    subprocess.run(args + ["-filter_complex", graph, "-map", "[v]", "-c:v", "ffv1", str(path)],
                   check=True, capture_output=True)
    return path


def vspipe_env(home: Path, tmp: Path) -> dict:
    env = dict(os.environ, HOME=str(home), TMPDIR=str(tmp))
    # `vapoursynth config` wrote where VSScript finds Python under the real home
    env.setdefault("XDG_CONFIG_HOME", str(Path.home() / ".config"))
    return env


# -- 1 and 4 threads ------------------------------------------------------------------------

THREADED = textwrap.dedent('''
    import runpy
    import vapoursynth as vs
    vs.core.num_threads = int(threads)
    runpy.run_path(sample, init_globals={k: v for k, v in globals().items()
                                         if k in ("input", "refs", "mindim", "weights")})
''')


@pytest.mark.slow
@needs_ffmpeg
def test_vspipe_one_and_four_threads_give_identical_bytes(tmp_path, lite_weights):
    video = lavfi(tmp_path / "short.mkv", ("testsrc", 1), ("mandelbrot", 1), size="128x96")
    script = tmp_path / "threaded.vpy"
    script.write_text(THREADED)
    outputs = []
    for threads in (1, 4):
        out = tmp_path / f"out{threads}.y4m"
        run = subprocess.run(
            [str(VSPIPE), "-c", "y4m", "-r", str(threads), "-a", f"threads={threads}",
             "-a", f"sample={SAMPLE}", "-a", f"input={video}", "-a", "mindim=48",
             "-a", f"weights={lite_weights}", str(script), str(out)],
            capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        outputs.append(out.read_bytes())
    header = outputs[0].split(b"\n", 1)[0]
    assert header.split()[:4] == [b"YUV4MPEG2", b"C444", b"W128", b"H96"], header
    assert outputs[0].count(b"FRAME\n") == 48
    assert outputs[0] == outputs[1]


# -- a long render in one process: bounded caches, flat memory -------------------------------

def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@pytest.mark.slow
def test_long_render_keeps_caches_bounded(lite_weights):
    n = 320
    grey = moving_pattern(n, 32, 48, seed=12)
    cuts = list(range(40, n, 40))
    for c in cuts:                           # each scene looks different
        grey[c:] = 1 - grey[c:] if (c // 40) % 2 else grey[c:]
    pipe = build(from_arrays(grey, vs.GRAY8, per_frame_props=scene_props(cuts)),
                 weights=lite_weights, mindim=32, chunk=4, device_index=-1)
    engine = pipe.engine
    caches = {"results": engine.results, "states": engine.states, "encoded": engine.encoded}
    # a few cells each (engine/runner.py), whatever the clip's length
    assert all(1 <= c.size <= 16 for c in caches.values()), {k: c.size for k, c in caches.items()}
    memory = {}
    vs.core.num_threads = 1                  # in order: no cell starts cold (see test_filter)
    for i, f in enumerate(pipe.clip.frames(close=True)):
        assert f.width == 48
        if i % 40 == 0:
            assert all(len(c) <= c.size for c in caches.values()), \
                {k: len(c) for k, c in caches.items()}
        if i + 1 in (n // 10, n):
            memory[i + 1] = rss()
    assert engine.runs["frames"] == n                # each frame once, nothing recomputed
    assert all(len(c) <= c.size for c in caches.values())
    growth = memory[n] - memory[n // 10]
    print(f"RSS at 10%: {memory[n // 10] >> 20} MB, at 100%: {memory[n] >> 20} MB")
    assert growth < 100 << 20, growth


RENDER_1080P = textwrap.dedent('''
    import resource, sys
    sys.path.insert(0, tests)
    import vapoursynth as vs
    from clips import from_arrays, moving_pattern
    from vsremaster.remaster import build
    vs.core.num_threads = 2
    small = from_arrays(moving_pattern(frames, 135, 240, seed=2), vs.GRAYS)
    clip = vs.core.resize.Bicubic(small, 1920, 1080, format=vs.GRAY8)   # 1080p frames on demand
    out = build(clip, weights=weights, mindim=64, device_index=-1).clip
    assert out.format.name == "YUV444P8" and out.width == 1920
    count = sum(1 for _ in out.frames(close=True))
    print(count, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
''')


@pytest.mark.slow
def test_1080p_render_keeps_host_memory_small(lite_weights):
    """Full-size frames are finished by VapourSynth filters frame by frame, never held as
    float32 on the host: peak RSS of a 200-frame 1080p render stays within issue 13's bound."""
    setup = "frames, tests, weights = 200, %r, %r\n" % (str(ROOT / "tests"), str(lite_weights))
    run = subprocess.run([sys.executable, "-c", setup + RENDER_1080P], capture_output=True,
                         text=True, timeout=1800)
    assert run.returncode == 0, run.stderr
    count, peak = map(int, run.stdout.split())
    assert count == 200
    print(f"peak RSS of a 200-frame 1080p render: {peak >> 20} MB")
    assert peak < 2500 << 20, peak >> 20


LONG_RENDER = textwrap.dedent('''
    import resource
    import vapoursynth as vs
    from vsremaster.remaster import build
    core = vs.core
    scenes = [core.std.BlankClip(format=vs.GRAY8, width=320, height=240, length=30,
                                 color=[(40 + 70 * k) % 220]) for k in range(-(-frames // 30))]
    out = build(core.std.Splice(scenes)[:frames], weights=weights, mindim=64, device_index=-1).clip
    peaks = []
    for n, _ in enumerate(out.frames(close=True), 1):
        if n in (frames // 10, frames):
            peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    print(*peaks)
''')


@pytest.mark.slow
def test_long_render_peak_memory_stays_flat(lite_weights):
    """Peak RSS at the end of a render within 10 % of its value at a tenth (issue 14): what
    the engine frees goes back to the system (scenes of 30 frames: the tenth has seen every
    kind of push)."""
    setup = "frames, weights = 1000, %r\n" % str(lite_weights)
    run = subprocess.run([sys.executable, "-c", setup + LONG_RENDER], capture_output=True,
                         text=True, timeout=1800, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    tenth, end = map(int, run.stdout.split())
    print(f"peak RSS at 10 %: {tenth >> 20} MB, at 100 %: {end >> 20} MB")
    assert end <= 1.10 * tenth, (tenth >> 20, end >> 20)


# -- SIGINT -------------------------------------------------------------------------------

def real_vspipe() -> Path:
    return Path(vs.__file__).with_name("vspipe")


@pytest.mark.slow
@needs_ffmpeg
@pytest.mark.parametrize("how", ["ctrl-c", "binary"])
def test_sigint_stops_vspipe_and_leaves_no_files_of_ours(tmp_path, lite_weights, how):
    inputs, home, tmp, work = (tmp_path / d for d in ("in", "home", "tmp", "work"))
    for d in (inputs, home, tmp, work):
        d.mkdir()
    video = lavfi(inputs / "long.mkv", ("testsrc", 20), size="320x240")
    refs = ROOT / "samples" / "film" / "refs"
    before = {p: p.stat().st_mtime_ns for p in [*refs.iterdir(), lite_weights]}
    weights_dir = sorted(lite_weights.parent.iterdir())
    out = work / "out.y4m"
    frame = 320 * 240 * 3 + len(b"FRAME\n")        # grey in, YUV444P8 out
    exe = VSPIPE if how == "ctrl-c" else real_vspipe()
    proc = subprocess.Popen(
        [str(exe), "-c", "y4m", "-a", f"input={video}", "-a", "mindim=48",
         "-a", f"weights={lite_weights}", str(SAMPLE), str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=work,
        env=vspipe_env(home, tmp), start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not (out.exists() and out.stat().st_size > 3 * frame):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no frames after 4 minutes"
            time.sleep(0.05)
        sent = time.monotonic()
        if how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)          # what a terminal's Ctrl+C does
        else:
            proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=30)                      # no hang
        stopped = time.monotonic() - sent
        time.sleep(0.5)                                 # let any straggler finish
        leftovers = subprocess.run(["pgrep", "-s", str(proc.pid)], capture_output=True,
                                   text=True).stdout.split()
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    err = proc.stderr.read().decode()
    size = out.stat().st_size
    print(f"SIGINT ({how}): exit status {rc} after {stopped:.2f} s, leaving {size} bytes "
          f"({size / frame:.2f} frames of 480); stderr: {err.strip()[-300:]!r}")
    assert leftovers == [], "a process of the render is still running"
    assert size < 480 * frame, "the render was not interrupted"
    assert rc in (0, 1)
    # only vspipe's own (partial) output, nothing of ours, no temp files anywhere
    assert sorted(p.name for p in work.iterdir()) == ["out.y4m"]
    assert list(tmp.iterdir()) == []
    assert [p.name for p in home.iterdir()] in ([], ["bsindex"])
    assert all(p.suffix == ".bsindex" for p in home.rglob("*") if p.is_file())
    assert sorted(p.name for p in inputs.iterdir()) == ["long.mkv"]
    assert sorted(lite_weights.parent.iterdir()) == weights_dir
    assert {p: p.stat().st_mtime_ns for p in before} == before
