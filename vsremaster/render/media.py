"""The script's output format as the tools name it, and where the tools are.

`VideoInfo` describes output 0 of a script (from the probe); it gives the ffmpeg pixel
format that holds the same planes, the y4m header `vspipe -c y4m` writes, and the
size of one raw frame.
"""
from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

# chroma subsampling (log2 w, log2 h) -> name used by y4m and by ffmpeg's yuvNNNp formats
SUBSAMPLING = {(1, 1): "420", (1, 0): "422", (0, 0): "444", (0, 1): "440",
               (2, 0): "411", (2, 2): "410"}


class RenderError(Exception):
    """A refusal of `render`, worded for the user ("render: ...")."""

    exit_code = 2


class RenderFailed(RenderError):
    """The render itself failed (a segment, or joining): not the user's input."""

    exit_code = 1


@dataclass(frozen=True)
class VideoInfo:
    """Output 0 of a script: size, format and rate, as VapourSynth reports them."""

    frames: int
    width: int
    height: int
    name: str              # VapourSynth's format name, e.g. YUV420P10
    family: str            # GRAY, YUV or RGB
    bits: int
    float: bool
    ssw: int
    ssh: int
    fps_num: int
    fps_den: int

    @classmethod
    def from_dict(cls, d: dict) -> "VideoInfo":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        return (f"{self.frames} frames, {self.name} {self.width}x{self.height} at "
                f"{self.fps_num}/{self.fps_den} fps")

    def pix_fmt(self) -> str | None:
        """ffmpeg's name for the same planes (None for float formats)."""
        if self.float:
            return None
        depth = "" if self.bits == 8 else f"{self.bits}le"
        if self.family == "GRAY":
            return "gray" + depth
        if self.family == "RGB":
            return "gbrp" + depth     # VapourSynth and ffmpeg both store G, B, R planes raw
        sub = SUBSAMPLING.get((self.ssw, self.ssh))
        return None if sub is None else f"yuv{sub}p{depth}"

    def y4m_header(self) -> bytes | None:
        """The stream header `vspipe -c y4m` writes; None where vspipe refuses y4m."""
        if self.float or self.family not in ("GRAY", "YUV"):
            return None
        depth = "" if self.bits == 8 else str(self.bits)
        if self.family == "GRAY":
            tag = "mono" + depth
        else:
            tag = SUBSAMPLING[(self.ssw, self.ssh)] + ("p" + depth if depth else "")
        return (f"YUV4MPEG2 C{tag} W{self.width} H{self.height} F{self.fps_num}:{self.fps_den}"
                f" Ip A0:0 XLENGTH={self.frames}\n").encode()

    def frame_bytes(self) -> int:
        """Bytes of one frame's planes, packed (as raw video and y4m hold them)."""
        sample = 1 if self.bits <= 8 else 2
        luma = self.width * self.height
        if self.family == "GRAY":
            return luma * sample
        chroma = (self.width >> self.ssw) * (self.height >> self.ssh)
        return (luma + 2 * chroma) * sample


def vspipe() -> str:
    """The vspipe binary itself (the venv's bin/vspipe wraps it in a Python process,
    which would outlive a kill of the wrapper)."""
    import vapoursynth
    for candidate in (Path(vapoursynth.__file__).with_name("vspipe"),
                      Path(sys.executable).with_name("vspipe")):
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("vspipe")
    if not found:
        raise RenderError("render: vspipe not found (beside the vapoursynth module, beside "
                          f"{sys.executable}, or on PATH)")
    return found


def tool(name: str) -> str:
    """ffmpeg or ffprobe from PATH."""
    found = shutil.which(name)
    if not found:
        raise RenderError(f"render: {name} not found on PATH; install ffmpeg (Debian: "
                          "apt-get install ffmpeg)")
    return found


@functools.cache
def ffv1_pix_fmts() -> frozenset[str]:
    """Pixel formats this ffmpeg's FFV1 encoder accepts."""
    text = subprocess.run([tool("ffmpeg"), "-hide_banner", "-h", "encoder=ffv1"],
                          capture_output=True, text=True).stdout
    for line in text.splitlines():
        if "Supported pixel formats:" in line:
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def ffv1_encode_pix_fmt(info: VideoInfo) -> str | None:
    """The format FFV1 stores the output in losslessly, or None when it cannot.

    FFV1 has no 8-bit planar RGB; packing gbrp into bgr0 only moves bytes.
    """
    pix = info.pix_fmt()
    if pix is None:
        return None
    pix = "bgr0" if pix == "gbrp" else pix
    return pix if pix in ffv1_pix_fmts() else None


def count_packets(path: Path) -> int:
    """Video packets (frames, for intra codecs) in a file, without decoding it."""
    out = subprocess.run([tool("ffprobe"), "-v", "error", "-select_streams", "v:0",
                          "-count_packets", "-show_entries", "stream=nb_read_packets",
                          "-of", "csv=p=0", str(path)], capture_output=True, text=True)
    try:
        return int(out.stdout.strip().splitlines()[0])
    except (ValueError, IndexError):
        return -1
