"""Reading the `refs` argument into a bank of RGB images with optional anchors.

`refs` may be a clip of the source's length (synchronised: the frame at each scene
start is that scene's reference), a clip of another length (a bank; `_RemasterAnchor`
props anchor frames to source frames), a directory or list of image files (a number
at the end of a file name anchors it), or None.

A refs clip may have a variable format or size (e.g. a Splice of stills of different
sizes): each frame is read on its own, converted to RGB24 at its own size. Every
frame, whatever its format, must be GRAY, YUV or RGB at a depth the resizer reads.

Everything is read when the filter is created; every problem is a RefError whose
message starts with "refs" and says what is allowed.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import vapoursynth as vs

from ..frames.formats import SUPPORTED, check_format, is_variable, to_rgb24

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
_ALLOWED_FILES = f"image files ({', '.join(sorted(IMAGE_SUFFIXES))})"
_ALLOWED = ("a clip, a directory of image files, a list of image file paths, or None")
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
    where = f"refs image {str(path)!r}"
    if not path.exists():
        raise RefError(f"{where} does not exist; allowed: existing {_ALLOWED_FILES}")
    if not path.is_file():
        raise RefError(f"{where} is not a file; allowed: {_ALLOWED_FILES}")
    try:
        if path.stat().st_size == 0:
            raise RefError(f"{where} is empty (0 bytes); allowed: {_ALLOWED_FILES}")
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as e:
        raise RefError(f"{where} cannot be read ({e.strerror or e}); allowed: readable "
                       f"{_ALLOWED_FILES}") from None
    img = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    if img is None or img.size == 0:
        raise RefError(f"{where} is not a readable image (corrupt, truncated or another "
                       f"kind of file); allowed: {_ALLOWED_FILES}")
    if img.dtype != np.uint8:
        if np.issubdtype(img.dtype, np.integer):
            img = img.astype(np.float32) * (255.0 / np.iinfo(img.dtype).max)
        else:   # float images (e.g. 32-bit TIFF) are in [0, 1]; NaN reads as 0
            img = np.nan_to_num(img.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0) * 255.0
        img = np.clip(img, 0, 255).round().astype(np.uint8)
    return _shrink(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))


def _from_files(paths: list[Path]) -> RefBank:
    bank = RefBank()
    for path in paths:
        bank.images.append(read_image(path))
        bank.anchors.append(anchor_of_name(path))
    return bank


def _list_dir(path: Path) -> list[Path]:
    if not path.exists():
        raise RefError(f"refs directory {str(path)!r} does not exist; allowed: {_ALLOWED}")
    if not path.is_dir():
        raise RefError(f"refs {str(path)!r} is a file, not a directory; allowed: a directory "
                       f"of {_ALLOWED_FILES}, or a list of image file paths")
    try:
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    except OSError as e:
        raise RefError(f"refs directory {str(path)!r} cannot be read ({e.strerror or e})") from None
    if not files:
        raise RefError(f"refs directory {str(path)!r} is empty; allowed: a directory holding "
                       f"{_ALLOWED_FILES}")
    others = [p.name for p in files if p.suffix.lower() not in IMAGE_SUFFIXES]
    if others:
        raise RefError(f"refs directory {str(path)!r} holds non-image files: "
                       f"{', '.join(others[:3])}; allowed: only {_ALLOWED_FILES}")
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


def check_refs(refs) -> None:
    """Check what can be checked of `refs` without reading it (type, clip format)."""
    if refs is None or isinstance(refs, (str, os.PathLike)):
        return
    if isinstance(refs, vs.VideoNode):
        fmt = refs.format
        if not is_variable(fmt):
            why = check_format(fmt)
            if why:
                raise RefError(f"refs clip {why}")
        return
    if isinstance(refs, (list, tuple)):
        if not refs:
            raise RefError(f"refs list is empty; allowed: {_ALLOWED}")
        bad = [p for p in refs if not isinstance(p, (str, os.PathLike))]
        if bad:
            raise RefError(f"refs list holds a {type(bad[0]).__name__} ({bad[0]!r:.40}); "
                           "allowed: image file paths (str or os.PathLike) only")
        return
    raise RefError(f"refs must be {_ALLOWED}, not {type(refs).__name__}")


def load_bank(refs, scene_starts: list[int] | None, num_frames: int) -> RefBank:
    """Read `refs` (clip, directory, list of files, or None) into a RefBank.

    `scene_starts` is only read for clips (files and None do not need the scene scan).
    """
    check_refs(refs)
    if refs is None:
        return RefBank()
    if isinstance(refs, vs.VideoNode):
        if scene_starts is None:
            raise ValueError("a refs clip is read with the scene starts")
        if refs.num_frames < 1:
            raise RefError("refs clip has no frames; allowed: a clip of at least one frame")
        try:
            return _from_clip(refs, scene_starts, num_frames)
        except vs.Error as e:
            raise RefError(f"refs clip cannot be read as RGB ({e}); allowed: frames in "
                           f"{SUPPORTED}") from None
    if isinstance(refs, (str, os.PathLike)):
        return _from_files(_list_dir(Path(refs)))
    return _from_files([Path(p) for p in refs])
