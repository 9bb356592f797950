"""Joining the finished segments into OUTPUT, chosen by its extension.

- `.y4m`: the stream `vspipe -c y4m` writes for the whole script: its header, then
  every frame as "FRAME\\n" and the raw planes (FFV1 segments are decoded losslessly).
- `.mkv` without --ffmpeg-args: FFV1 in Matroska; FFV1 segments are copied, not
  re-encoded (every frame is a key frame).
- anything else, or `.mkv` with --ffmpeg-args: ffmpeg reads the segments in order
  (its concat demuxer) and encodes with those arguments.

The result is written in the work folder and renamed to OUTPUT when complete.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .manifest import Manifest
from .media import RenderFailed, VideoInfo, count_packets, tool
from .segments import FFV1_ARGS, y4m_frames


def join(manifest: Manifest, work: Path, output: Path, ffmpeg_args: list[str],
         on_frames=None) -> None:
    info = VideoInfo.from_dict(manifest.info)
    joined = work / ("joined" + output.suffix)
    joined.unlink(missing_ok=True)
    ext = output.suffix.lower()
    if ext == ".y4m":
        _join_y4m(manifest, work, info, joined, on_frames)
        frames = y4m_frames(joined, info.frame_bytes())
    else:
        listing = work / "segments.txt"
        listing.write_text("".join(f"file '{_quote(work / s.file)}'\n" for s in manifest.segments))
        if ext == ".mkv" and not ffmpeg_args:
            codec = ["-c", "copy", "-fflags", "+bitexact"] if manifest.kind == "ffv1" else \
                [*FFV1_ARGS, "-pix_fmt", manifest.pix_fmt]
            _ffmpeg(["-f", "concat", "-safe", "0", "-i", str(listing), "-map", "0:v:0", *codec],
                    joined, on_frames)
            frames = count_packets(joined)
        else:
            _ffmpeg(["-f", "concat", "-safe", "0", "-i", str(listing), "-map", "0:v:0",
                     *ffmpeg_args], joined, on_frames)
            frames = None       # the user's arguments may change the frame count (-r)
        listing.unlink()
    if frames is not None and frames != info.frames:
        raise RenderFailed(f"render: the joined file {joined} holds {frames} frames, "
                          f"not {info.frames}")
    os.replace(joined, output)


def _quote(path: Path) -> str:
    """A path for the concat list, inside single quotes."""
    return str(path.resolve()).replace("'", "'\\''")


def _ffmpeg(args: list[str], out: Path, on_frames) -> None:
    cmd = [tool("ffmpeg"), "-nostdin", "-v", "error", "-nostats", "-progress", "pipe:1",
           *args, "-y", str(out)]
    with tempfile.TemporaryFile() as err:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
        for line in p.stdout:
            if line.startswith(b"frame=") and on_frames:
                on_frames(int(line[6:].strip() or 0))
        if p.wait() != 0:
            err.seek(0)
            text = err.read().decode(errors="replace").strip()
            raise RenderFailed(f"render: ffmpeg failed to write {out} "
                              f"({' '.join(cmd)}):\n{text}")


def _join_y4m(manifest: Manifest, work: Path, info: VideoInfo, joined: Path, on_frames) -> None:
    size = info.frame_bytes()
    done = 0
    with open(joined, "wb") as out:
        out.write(info.y4m_header())
        for seg in manifest.segments:
            path = work / seg.file
            if manifest.kind == "y4m":
                with open(path, "rb") as f:
                    f.readline()                       # the segment's own header
                    shutil.copyfileobj(f, out, 1 << 22)
            else:
                _decoded_frames(path, info, size, seg.frames, out)
            done += seg.frames
            if on_frames:
                on_frames(done)


def _decoded_frames(path: Path, info: VideoInfo, size: int, expected: int, out) -> None:
    """Decode an FFV1 segment to raw planes and write them as y4m frames."""
    cmd = [tool("ffmpeg"), "-nostdin", "-v", "error", "-i", str(path), "-map", "0:v:0",
           "-f", "rawvideo", "-pix_fmt", info.pix_fmt(), "-"]
    with tempfile.TemporaryFile() as err:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
        n = 0
        while True:
            frame = p.stdout.read(size)
            if not frame:
                break
            if len(frame) != size:
                p.kill()
                raise RenderFailed(f"render: {path} decoded to a partial frame")
            out.write(b"FRAME\n")
            out.write(frame)
            n += 1
        if p.wait() != 0 or n != expected:
            err.seek(0)
            raise RenderFailed(f"render: decoding {path} gave {n} frames, not {expected}:\n"
                              + err.read().decode(errors="replace").strip())

