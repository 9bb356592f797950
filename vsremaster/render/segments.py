"""Rendering frames [start, end) of a script into one lossless file.

The real vspipe evaluates the script, as a plain `vspipe` render would, with
`--start/--end` and the `-a` arguments. FFV1 segments: vspipe writes Matroska with raw
frames (it has a raw layout for every integer format, RGB included) into ffmpeg, which
stores them as FFV1 (intra-only, slice CRCs, bit-exact) in the same pixel format. y4m segments:
vspipe writes the file itself. The file is written under a `.part` name and renamed
once its frame count is checked, so a finished name always means a complete file.
"""
from __future__ import annotations

import collections
import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from .manifest import file_sha256
from .media import count_packets, tool, vspipe

_PROGRESS = re.compile(rb"Frame: (\d+)/(\d+)")
# intra-only FFV1 with slice CRCs; bitexact: no date or random IDs in the file, so the
# same frames give the same bytes (and SHA-256) on any run
FFV1_ARGS = ["-c:v", "ffv1", "-level", "3", "-g", "1", "-slicecrc", "1",
             "-fflags", "+bitexact", "-flags:v", "+bitexact"]


class SegmentError(Exception):
    """One attempt at a segment failed; the message says why (tool output included)."""


@dataclass(frozen=True)
class Job:
    """Everything a worker needs to render one segment, on this machine or another."""

    index: int
    start: int
    end: int                 # exclusive
    script: str              # absolute path
    args: tuple              # ((name, value), ...)
    cwd: str                 # the coordinator's working directory (relative paths in scripts)
    kind: str                # "ffv1" or "y4m"
    pix_fmt: str | None      # FFV1 storage format
    frame_bytes: int         # one raw frame
    path: str                # the finished file

    def at(self, path: Path) -> "Job":
        return replace(self, path=str(path))


def vspipe_command(job: Job, container: str, out: str) -> list[str]:
    cmd = [vspipe(), "-p", "-o", "0", "-s", str(job.start), "-e", str(job.end - 1),
           "-c", container]
    for name, value in job.args:
        cmd += ["-a", f"{name}={value}"]
    return cmd + [job.script, out]


def render_segment(job: Job, env: dict | None = None, on_frames=None, on_start=None) -> dict:
    """Render `job` to `job.path`; {"sha256", "bytes", "frames", "seconds"}.

    on_frames(n): called as vspipe reports frames done. on_start(processes): the started
    processes, so a caller can stop them. Raises SegmentError on any failure.
    """
    t0 = time.monotonic()
    final = Path(job.path)
    part = final.with_name(final.name + ".part")
    part.unlink(missing_ok=True)
    cwd = job.cwd if os.path.isdir(job.cwd) else None
    with tempfile.TemporaryFile() as ffmpeg_err:
        if job.kind == "ffv1":
            source = subprocess.Popen(vspipe_command(job, "mkv", "-"), stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                      env=env, cwd=cwd)
            encoder = subprocess.Popen(
                [tool("ffmpeg"), "-nostdin", "-v", "error", "-f", "matroska", "-i", "-",
                 "-map", "0:v:0", *FFV1_ARGS, "-pix_fmt", job.pix_fmt, "-f", "matroska",
                 "-y", str(part)], stdin=source.stdout, stdout=subprocess.DEVNULL,
                stderr=ffmpeg_err, env=env, cwd=cwd)
            source.stdout.close()      # ffmpeg holds the pipe; vspipe sees it close
            processes = [source, encoder]
        else:
            source = subprocess.Popen(vspipe_command(job, "y4m", str(part)),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                      stdin=subprocess.DEVNULL, env=env, cwd=cwd)
            encoder, processes = None, [source]
        if on_start:
            on_start(processes)
        log = _follow(source.stderr, on_frames)
        errors = []
        if source.wait() != 0:
            errors.append(f"vspipe exited with {source.returncode}:\n" + "\n".join(log))
        if encoder is not None and encoder.wait() != 0:
            ffmpeg_err.seek(0)
            text = ffmpeg_err.read().decode(errors="replace").strip()
            errors.append(f"ffmpeg exited with {encoder.returncode}:\n{text}")
    if errors:
        part.unlink(missing_ok=True)
        raise SegmentError("\n".join(errors))
    frames = count_packets(part) if job.kind == "ffv1" else y4m_frames(part, job.frame_bytes)
    if frames != job.end - job.start:
        part.unlink(missing_ok=True)
        raise SegmentError(f"the segment file holds {frames} frames, not {job.end - job.start}")
    result = {"sha256": file_sha256(part), "bytes": part.stat().st_size, "frames": frames}
    os.replace(part, final)
    result["seconds"] = round(time.monotonic() - t0, 3)
    return result


def _follow(stream, on_frames) -> list[str]:
    """Read vspipe's stderr to the end: progress to on_frames, the last other lines back."""
    lines = collections.deque(maxlen=40)
    pending = b""
    while True:
        block = stream.read1(4096) if hasattr(stream, "read1") else stream.read(4096)
        if not block:
            break
        pending += block
        *done, pending = re.split(rb"[\r\n]", pending)
        for line in done:
            m = _PROGRESS.search(line)
            if m:
                if on_frames:
                    on_frames(int(m.group(1)))
            elif line.strip():
                lines.append(line.decode(errors="replace"))
    if pending.strip() and not _PROGRESS.search(pending):
        lines.append(pending.decode(errors="replace"))
    stream.close()
    return list(lines)


def y4m_frames(path: Path, frame_bytes: int) -> int:
    """Frames in a y4m file written by vspipe (FRAME lines carry no parameters)."""
    with open(path, "rb") as f:
        header = f.readline()
    body = path.stat().st_size - len(header)
    per = len(b"FRAME\n") + frame_bytes
    return body // per if header.startswith(b"YUV4MPEG2 ") and body % per == 0 else -1
