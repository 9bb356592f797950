"""Reading the `refs` argument into a bank of RGB images with optional anchors.

`refs` may be a clip of the source's length (synchronised: the frame at each scene
start is that scene's reference), a clip of another length (a bank; `_RemasterAnchor`
props anchor frames to source frames), a directory or list of image files (a number
at the end of a file name anchors it), or None.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import vapoursynth as vs

from ..frames.formats import to_rgb24

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
_TRAILING_NUMBER = re.compile(r"(\d+)$")
#: Bank images are kept at most this large (short edge) until a set is built.
KEEP_SHORT_EDGE = 512
BLANK_RANGE = 2          # 8-bit levels: a frame flatter than this is blank


class RefError(ValueError):
    """A `refs` argument that cannot be used; the message says why."""


@dataclass
class RefBank:
    """Reference images (uint8 RGB [H, W, 3]), their anchors, and whether synchronised."""

    images: list[np.ndarray] = field(default_factory=list)
    anchors: list[int | None] = field(default_factory=list)
    synced: bool = False

    def __len__(self) -> int:
        return len(self.images)


def _shrink(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    scale = KEEP_SHORT_EDGE / min(h, w)
    if scale >= 1:
        return img
    return cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))),
                      interpolation=cv2.INTER_AREA)


def _frame_rgb(f: vs.VideoFrame) -> np.ndarray:
    return _shrink(np.dstack([np.asarray(f[p]) for p in range(3)]))


def anchor_of_name(path: Path) -> int | None:
    """The source frame a file name anchors to (`ref_000134.png` -> 134), if any."""
    m = _TRAILING_NUMBER.search(path.stem)
    return int(m.group(1)) if m else None


def read_image(path: Path) -> np.ndarray:
    """An image file as uint8 RGB; RefError when it is missing, empty or unreadable."""
    if not path.is_file():
        raise RefError(f"reference image {str(path)!r} does not exist")
    if path.stat().st_size == 0:
        raise RefError(f"reference image {str(path)!r} is empty (0 bytes)")
    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    if img is None:
        raise RefError(f"reference image {str(path)!r} is not a readable image")
    if img.dtype != np.uint8:
        img = (img.astype(np.float32) * (255.0 / np.iinfo(img.dtype).max)).round().astype(np.uint8)
    return _shrink(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))


def _from_files(paths: list[Path]) -> RefBank:
    bank = RefBank()
    for path in paths:
        bank.images.append(read_image(path))
        bank.anchors.append(anchor_of_name(path))
    return bank


def _list_dir(path: Path) -> list[Path]:
    if not path.is_dir():
        raise RefError(f"refs directory {str(path)!r} does not exist")
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise RefError(f"refs directory {str(path)!r} is empty")
    others = [p.name for p in files if p.suffix.lower() not in IMAGE_SUFFIXES]
    if others:
        raise RefError(f"refs directory {str(path)!r} holds non-image files: "
                       f"{', '.join(others[:3])} (allowed: {', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def _is_blank(img: np.ndarray) -> bool:
    return int(img.max()) - int(img.min()) < BLANK_RANGE


def _from_clip(refs: vs.VideoNode, scene_starts: list[int], num_frames: int) -> RefBank:
    rgb = to_rgb24(refs)
    if refs.num_frames == num_frames:
        bank = RefBank(synced=True)
        picked = vs.core.std.Splice([rgb[s] for s in scene_starts]) if len(scene_starts) > 1 \
            else rgb[scene_starts[0]]
        for s, f in zip(scene_starts, picked.frames(close=True)):
            img = _frame_rgb(f)
            if not _is_blank(img):
                bank.images.append(img)
                bank.anchors.append(s)
        return bank
    bank = RefBank()
    for f in rgb.frames(close=True):
        img = _frame_rgb(f)
        if _is_blank(img):
            continue
        anchor = f.props.get("_RemasterAnchor")
        bank.images.append(img)
        bank.anchors.append(None if anchor is None else int(anchor))
    return bank


def load_bank(refs, scene_starts: list[int], num_frames: int) -> RefBank:
    """Read `refs` (clip, directory, list of files, or None) into a RefBank."""
    if refs is None:
        return RefBank()
    if isinstance(refs, vs.VideoNode):
        return _from_clip(refs, scene_starts, num_frames)
    if isinstance(refs, (str, os.PathLike)):
        return _from_files(_list_dir(Path(refs)))
    if isinstance(refs, (list, tuple)):
        if not refs:
            raise RefError("refs list is empty")
        if not all(isinstance(p, (str, os.PathLike)) for p in refs):
            raise RefError("refs list must hold image file paths only")
        return _from_files([Path(p) for p in refs])
    raise RefError(f"refs must be a clip, a directory, a list of image files or None, "
                   f"not {type(refs).__name__}")
