"""The work folder's manifest: what is being rendered and which segments are finished.

`manifest.json` holds the script's SHA-256, the `-a` arguments, the output's format, the
segment plan and, per finished segment, its file's size and SHA-256. It is replaced
atomically after every segment, so a kill at any moment leaves a manifest that only
names complete files.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

FILE = "manifest.json"
VERSION = 1


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Segment:
    """Frames [start, end) of the output, written to `file` in the work folder."""

    start: int
    end: int
    file: str
    sha256: str | None = None      # set once the file is complete
    bytes: int | None = None
    seconds: float | None = None

    @property
    def frames(self) -> int:
        return self.end - self.start

    @property
    def done(self) -> bool:
        return self.sha256 is not None

    def label(self, index: int) -> str:
        return f"segment {index} (frames {self.start}-{self.end - 1})"

    def check(self, work: Path) -> str | None:
        """None when the finished file is there and intact, else what is wrong."""
        path = work / self.file
        if not path.is_file():
            return "its file is missing"
        if path.stat().st_size != self.bytes:
            return f"its file has {path.stat().st_size} bytes, not {self.bytes}"
        if file_sha256(path) != self.sha256:
            return "its file's SHA-256 differs from the one recorded"
        return None


@dataclass
class Manifest:
    script: str
    script_sha256: str
    args: dict
    info: dict                     # media.VideoInfo as a dict
    kind: str                      # "ffv1" or "y4m"
    pix_fmt: str | None            # FFV1's storage format
    segment_frames: int
    scenes_from: str
    segments: list[Segment] = field(default_factory=list)
    version: int = VERSION

    @classmethod
    def load(cls, work: Path) -> "Manifest":
        data = json.loads((work / FILE).read_text())
        data["segments"] = [Segment(**s) for s in data["segments"]]
        return cls(**data)

    def save(self, work: Path) -> None:
        tmp = work / (FILE + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        os.replace(tmp, work / FILE)
