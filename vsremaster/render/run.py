"""`render(script, output, ...)`: plan, render the unfinished segments, join.

The work folder is OUTPUT's name with `.render` for its extension, beside OUTPUT
(`film.mkv` -> `film.render/`), so rendering the same script to `film.mkv` and then
`film.mp4` reuses the segments.
"""
from __future__ import annotations

import contextlib
import os
import re
import shlex
import sys
import threading
import time
from pathlib import Path

from filelock import FileLock, Timeout

from . import manifest as mf
from .join import join
from .manifest import Manifest, Segment
from .media import RenderError, RenderFailed, VideoInfo, ffv1_encode_pix_fmt
from .plan import plan_segments
from .probe import probe
from .segments import Job
from .workers import LocalPool, Progress, import_ray, local_slots, run_ray

DEFAULT_SEGMENT_FRAMES = 3000
LOG = "render.log"
_OURS = re.compile(r"^(segment-\d+\.(mkv|y4m)(\.part)?|joined\..*|segments\.txt|"
                   r"manifest\.json(\.tmp)?|render\.log|\.lock|\.render-token|\.write-test)$")


def work_folder(output: Path) -> Path:
    return output.parent / (output.stem + ".render")


def parse_args(pairs) -> dict[str, str]:
    """-a NAME=VALUE pairs -> {NAME: VALUE}, as vspipe passes them (str values)."""
    args = {}
    for pair in pairs or ():
        name, eq, value = pair.partition("=")
        if not eq or not name.isidentifier():
            raise RenderError(f"render: -a {pair!r}: expected NAME=VALUE with NAME a Python "
                              "identifier (it becomes a global of the script)")
        args[name] = value
    return args


def render(script, output, *, workers: int | None = None, cluster: str | None = None,
           segment_frames: int | None = None, args=(), restart: bool = False,
           ffmpeg_args: str = "", segment_format: str | None = None, clean: bool = False,
           progress: bool = True) -> Path:
    """Render `script`'s output 0 into `output`; returns OUTPUT's path.

    Raises RenderError ("render: ..."): its `exit_code` is 2 for a refusal, 1 for a
    failure (a segment that failed three times, ffmpeg failing to join).
    """
    script, output = Path(script), Path(output)
    if not script.is_file():
        raise RenderError(f"render: SCRIPT {script} is not a file")
    script = script.resolve()
    values = parse_args(args)
    if workers is not None and (isinstance(workers, bool) or workers < 1):
        raise RenderError(f"render: --workers must be at least 1, not {workers}")
    if segment_frames is not None and segment_frames < 1:
        raise RenderError(f"render: --segment-frames must be at least 1, not {segment_frames}")
    if segment_format not in (None, "ffv1", "y4m"):
        raise RenderError(f"render: --segment-format must be ffv1 or y4m, not {segment_format!r}")
    extra = shlex.split(ffmpeg_args or "")
    if extra and output.suffix.lower() == ".y4m":
        raise RenderError("render: --ffmpeg-args does not apply to a .y4m OUTPUT (it is the "
                          "stream vspipe -c y4m writes); use another extension to encode")
    if cluster is not None:
        import_ray()
    fresh = not work_folder(output).exists()
    work = _make_work_folder(output)
    try:
        with _locked(work), _Log(work / LOG) as log:
            man = _resume(work, script, values, segment_frames, segment_format, restart, log)
            if man is None:
                man = _start(work, script, values, segment_frames or DEFAULT_SEGMENT_FRAMES,
                             segment_format or "ffv1", log)
            info = VideoInfo.from_dict(man.info)
            _check_output(output, info, man, extra)
            _render_segments(man, work, script, values, workers, cluster, progress, log)
            log(f"joining {len(man.segments)} segments into {output}")
            with _bar(info.frames, 0, "join", progress) as bar:
                join(man, work, output, extra, on_frames=lambda n: bar.update(n - bar.n))
            log(f"wrote {output} ({info.describe()})")
    except RenderError:
        if fresh and not (work / mf.FILE).exists():     # refused before planning anything
            _remove(work)
        raise
    if clean:
        _remove(work)
    return output


def _remove(work: Path) -> None:
    """Delete the work folder's own files, and the folder when nothing else is left."""
    for path in work.iterdir():
        if _OURS.match(path.name):
            path.unlink()
    with contextlib.suppress(OSError):
        work.rmdir()


def _make_work_folder(output: Path) -> Path:
    folder = output.parent
    if not folder.is_dir():
        raise RenderError(f"render: OUTPUT folder {folder} does not exist or is not a folder; "
                          "allowed: an existing folder you can write to")
    work = work_folder(output)
    if output.is_dir() or output.resolve() == work.resolve():
        raise RenderError(f"render: OUTPUT {output} is a folder (or the work folder's name); "
                          "allowed: a file name such as film.mkv")
    try:
        work.mkdir(exist_ok=True)
        probe_file = work / ".write-test"
        probe_file.write_bytes(b"")
        probe_file.unlink()
    except OSError as e:
        raise RenderError(f"render: OUTPUT folder {folder} is not writable ({e.strerror}); "
                          f"allowed: a folder you can write to (the segments go into {work})") \
            from None
    return work


@contextlib.contextmanager
def _locked(work: Path):
    """One render per work folder at a time (the OS drops the lock when a render dies)."""
    try:
        lock = FileLock(work / ".lock", timeout=0).acquire()
    except Timeout:
        raise RenderError(f"render: another render is using {work}") from None
    with lock:
        yield


class _Log:
    """Timestamped lines into the work folder's render.log, and onto stderr."""

    def __init__(self, path: Path):
        self.path = path
        self.lock = threading.Lock()

    def __enter__(self):
        self.file = open(self.path, "a", encoding="utf-8")
        self.file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} ---- {' '.join(sys.argv)}\n")
        return self

    def __exit__(self, *exc):
        self.file.close()

    def __call__(self, message: str) -> None:
        with self.lock:
            self.file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")
            self.file.flush()
            from tqdm import tqdm
            tqdm.write(f"render: {message}", file=sys.stderr)


def _resume(work: Path, script: Path, values: dict, segment_frames, segment_format,
            restart: bool, log) -> Manifest | None:
    """The manifest to continue from, with its finished segments checked; None to start anew."""
    path = work / mf.FILE
    if not path.exists():
        foreign = [p.name for p in work.iterdir() if not _OURS.match(p.name)]
        if foreign:
            raise RenderError(f"render: {work} exists and is not a render work folder (it has "
                              f"no {mf.FILE} but holds {', '.join(sorted(foreign)[:5])}); "
                              "move it away or choose another OUTPUT name")
        return None
    try:
        man = Manifest.load(work)
    except (ValueError, TypeError, KeyError) as e:
        if not restart:
            raise RenderError(f"render: {path} is unreadable ({e}); pass --restart to "
                              "discard the work folder's segments") from None
        man = None
    finished = sum(s.done for s in man.segments) if man else 0
    if man is not None and not restart:
        if man.version != mf.VERSION:
            raise RenderError(f"render: {work} was made by another version of render; pass "
                              "--restart to discard its segments")
        if man.script_sha256 != mf.file_sha256(script):
            raise RenderError(f"render: SCRIPT {script} changed since the segments in {work} "
                              f"were rendered ({finished} finished, from {man.script}); pass "
                              "--restart to discard them")
        if man.args != values:
            raise RenderError(f"render: the -a arguments changed since the segments in {work} "
                              f"were rendered (were {man.args}, now {values}); pass --restart "
                              "to discard them")
    if restart:
        for p in work.iterdir():
            if _OURS.match(p.name) and p.name not in (".lock", LOG):
                p.unlink()
        log(f"--restart: discarded {finished} finished segments")
        return None
    if segment_frames is not None and segment_frames != man.segment_frames:
        log(f"keeping the plan in {work} (--segment-frames {man.segment_frames}); pass "
            "--restart to plan again")
    if segment_format is not None and segment_format != man.kind:
        log(f"keeping the segments' format in {work} ({man.kind})")
    for i, seg in enumerate(man.segments):
        if seg.done:
            problem = seg.check(work)
            if problem:
                log(f"{seg.label(i)}: {problem}; rendering it again")
                seg.sha256 = seg.bytes = seg.seconds = None
            else:
                log(f"{seg.label(i)}: finished earlier, checked")
    man.save(work)
    return man


def _start(work: Path, script: Path, values: dict, k: int, segment_format: str, log) -> Manifest:
    log(f"evaluating {script} to plan the segments")
    found = probe(script, values, Path.cwd())
    if found["info"] is None:
        raise RenderError(f"render: SCRIPT {script} has nothing to render ({found['why']}); "
                          "allowed: a script that sets a video output 0 (clip.set_output())")
    info = VideoInfo.from_dict(found["info"])
    if info.float:
        raise RenderError(f"render: the script's output is {info.name}, a float format; "
                          "allowed: integer formats (convert it in the script, e.g. "
                          "core.resize.Point(clip, format=vs.YUV444P16))")
    if info.fps_num <= 0 or info.fps_den <= 0:
        raise RenderError("render: the script's output has a variable frame rate; allowed: "
                          "a constant one (std.AssumeFPS)")
    pix_fmt = ffv1_encode_pix_fmt(info)
    kind = segment_format
    if kind == "ffv1" and pix_fmt is None:
        if info.y4m_header() is None:
            raise RenderError(f"render: neither FFV1 nor y4m can hold {info.name} losslessly")
        log(f"this ffmpeg's FFV1 cannot hold {info.name}: the segments are y4m")
        kind = "y4m"
    if kind == "y4m" and info.y4m_header() is None:
        raise RenderError(f"render: --segment-format y4m cannot hold {info.name} (y4m holds "
                          "YUV and GRAY, as vspipe -c y4m); use ffv1")
    ranges = plan_segments(info.frames, found.get("scenes") or [], k)
    ext = "mkv" if kind == "ffv1" else "y4m"
    man = Manifest(script=str(script), script_sha256=mf.file_sha256(script), args=values,
                   info=info.to_dict(), kind=kind, pix_fmt=pix_fmt, segment_frames=k,
                   scenes_from=found["scenes_from"],
                   segments=[Segment(a, b, f"segment-{i:04d}.{ext}")
                             for i, (a, b) in enumerate(ranges)])
    man.save(work)
    log(f"{info.describe()}; {len(ranges)} segments of about {k} frames, cut at "
        f"{man.scenes_from}; segments as {'FFV1 in Matroska' if kind == 'ffv1' else 'y4m'} "
        f"in {work}")
    return man


def _check_output(output: Path, info: VideoInfo, man: Manifest, extra: list[str]) -> None:
    ext = output.suffix.lower()
    if ext == ".y4m" and info.y4m_header() is None:
        raise RenderError(f"render: a .y4m OUTPUT cannot hold {info.name} (y4m holds YUV and "
                          "GRAY, as vspipe -c y4m); use .mkv")
    if ext == ".mkv" and not extra and man.kind == "y4m" and man.pix_fmt is None:
        raise RenderError(f"render: this ffmpeg's FFV1 cannot hold {info.name}, so a lossless "
                          ".mkv is not possible; use .y4m, or --ffmpeg-args to choose a codec")


def _render_segments(man: Manifest, work: Path, script: Path, values: dict, workers, cluster,
                     progress: bool, log) -> None:
    todo = [i for i, s in enumerate(man.segments) if not s.done]
    info = VideoInfo.from_dict(man.info)
    done_frames = sum(s.frames for s in man.segments if s.done)
    if not todo:
        return
    jobs = [Job(i, man.segments[i].start, man.segments[i].end, str(script),
                tuple(values.items()), os.getcwd(), man.kind, man.pix_fmt, info.frame_bytes(),
                str(work / man.segments[i].file)) for i in todo]
    counter = Progress(done_frames)
    lock = threading.Lock()

    def on_done(job: Job, result: dict) -> None:
        with lock:
            seg = man.segments[job.index]
            seg.sha256, seg.bytes = result["sha256"], result["bytes"]
            seg.seconds = result["seconds"]
            man.save(work)
        counter.finished(job.index, seg.frames)
        log(f"{seg.label(job.index)}: rendered in {result['seconds']:.1f} s")

    with _bar(info.frames, done_frames, "render", progress) as bar:
        def tick() -> None:
            bar.update(counter.total() - bar.n)

        try:
            if cluster is not None:
                log(f"rendering {len(jobs)} segments on Ray ({cluster})")
                run_ray(jobs, cluster, workers, work, counter, on_done, log, tick)
            else:
                slots, described = local_slots(workers)
                log(f"rendering {len(jobs)} segments with {described}")
                LocalPool(slots, counter, on_done, log, tick).run(jobs)
        except KeyboardInterrupt:
            finished = sum(s.done for s in man.segments)
            log(f"interrupted with {finished} of {len(man.segments)} segments finished; "
                "run the same command again to resume")
            raise
        tick()
    missing = [seg.label(i) for i, seg in enumerate(man.segments) if not seg.done]
    if missing:
        raise RenderFailed(f"render: not rendered: {', '.join(missing)}")


@contextlib.contextmanager
def _bar(total: int, initial: int, desc: str, enabled: bool):
    from tqdm import tqdm
    bar = tqdm(total=total, initial=initial, desc=desc, unit="frame", disable=not enabled,
               dynamic_ncols=True, file=sys.stderr, smoothing=0.05)
    try:
        yield bar
    finally:
        bar.close()
