"""Reading the `refs` argument into a bank of RGB images with optional anchors.

`refs` may be a clip of another length than the source's (a bank; `_RemasterAnchor`
props anchor frames to source frames), a directory or list of image files (a number
at the end of a file name anchors it), or None. A clip of the source's length is
synchronised (the frame at each scene start is that scene's reference) and is read
lazily, per scene, by `synced.SyncedRefs`.

A refs clip may have a variable format or size (e.g. a Splice of stills of different
sizes): each frame is read on its own, converted to RGB24 at its own size. Every
frame, whatever its format, must be GRAY, YUV or RGB at a depth the resizer reads.

A bank is checked when the filter is created; every problem is a RefError whose
message starts with "refs" and says what is allowed. Nothing is decoded before it is
checked: image files must be regular files within `limits.MAX_REF_FILE_BYTES`, and their
headers (every file's, before the first is decoded) must declare at most
`MAX_REF_PIXELS` pixels, `MAX_REF_DECODED_BYTES` decoded and an aspect of at most
`MAX_ASPECT`. What choosing keeps per reference (`index_bytes`) must fit
`MAX_BANK_INDEX_BYTES`; there is no limit on the count. A bank that fits the image
cache is read whole at creation; a larger one is a `bank.LazyBank`, each image read
(and its header checked again) when a scene's set needs it.
"""
from __future__ import annotations

import os
import re
import stat
import threading
from numbers import Integral
from pathlib import Path

import cv2
import numpy as np
import vapoursynth as vs

from .. import limits
from ..files import FileMissing, FileRefused, describe_mode, open_regular, size_words
from ..frames.formats import SUPPORTED, check_format, is_variable, to_rgb24
from ..planning.scenes import HIST_BINS, THUMB
from .bank import LazyBank, RefBank, fits_cache
from .imageinfo import ImageInfo, NotAnImage, probe

__all__ = ["RefBank", "LazyBank", "RefError", "load_bank", "check_refs", "read_image"]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
_ALLOWED_FILES = f"image files ({', '.join(sorted(IMAGE_SUFFIXES))})"
_ALLOWED = ("a clip, a directory of image files, a list of image file paths, or None")
_TRAILING_NUMBER = re.compile(r"(\d+)$")
#: Bank images are kept at most this large (short edge) until a set is built.
KEEP_SHORT_EDGE = 512
BLANK_RANGE = 2          # 8-bit levels: a frame flatter than this is blank
#: Bytes choosing keeps per reference besides its name (anchor, list slots, the sorted
#: anchor index), and per unanchored one its descriptor (float64 thumbnail and
#: histogram, their arrays and dict entry): estimates that `MAX_BANK_INDEX_BYTES` counts.
ENTRY_BYTES = 128
DESCRIPTOR_BYTES = (THUMB * THUMB + HIST_BINS) * 8 + 512


class RefError(ValueError):
    """A `refs` argument that cannot be used; the message says why."""


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


def kept_bytes(height: int, width: int) -> int:
    """Bytes a reference of this size takes once read (RGB, shrunk to KEEP_SHORT_EDGE)."""
    scale = min(1.0, KEEP_SHORT_EDGE / min(height, width))
    return max(1, round(height * scale)) * max(1, round(width * scale)) * 3


def size_problem(width: int, height: int) -> str | None:
    """Why a reference of this size is refused (pixels, aspect), or None."""
    if width * height > limits.MAX_REF_PIXELS:
        return (f"is {width}x{height} ({width * height / 1e6:.1f} megapixels); allowed: at "
                f"most {limits.MAX_REF_PIXELS / 1e6:g} megapixels (shrink it first)")
    aspect = max(width, height) / min(width, height)
    if aspect > limits.MAX_ASPECT:
        return (f"is {width}x{height} (aspect {aspect:.1f}:1); allowed: an aspect of at "
                f"most {limits.MAX_ASPECT:g}:1 (crop it)")
    return None


def _open_image(path: Path):
    """(open file, header) of a reference image file that passed every check."""
    where = f"refs image {str(path)!r}"
    try:
        f = open_regular(path, limits.MAX_REF_FILE_BYTES)
    except FileMissing:
        raise RefError(f"{where} does not exist; allowed: existing {_ALLOWED_FILES}") from None
    except FileRefused as e:
        what = " for a reference image" if e.reason.endswith("allowed") else ""
        raise RefError(f"{where} {e.reason}{what}; allowed: readable {_ALLOWED_FILES}") from None
    try:
        if os.fstat(f.fileno()).st_size == 0:
            raise RefError(f"{where} is empty (0 bytes); allowed: {_ALLOWED_FILES}")
        info = _checked_header(f, where)
    except OSError as e:
        f.close()
        raise RefError(f"{where} cannot be read ({e.strerror or e}); allowed: readable "
                       f"{_ALLOWED_FILES}") from None
    except BaseException:
        f.close()
        raise
    return f, info


def _checked_header(f, where: str) -> ImageInfo:
    try:
        info = probe(f)
    except NotAnImage as e:
        raise RefError(f"{where} is not a readable image ({e}); allowed: "
                       f"{_ALLOWED_FILES}") from None
    why = size_problem(info.width, info.height)
    if why:
        raise RefError(f"{where} {why}")
    if info.decoded_bytes > limits.MAX_REF_DECODED_BYTES:
        raise RefError(f"{where} ({info.describe()}) decodes to "
                       f"{size_words(info.decoded_bytes)}; allowed: at most "
                       f"{size_words(limits.MAX_REF_DECODED_BYTES)} decoded (shrink it or "
                       "save it at 8 bits)")
    return info


def probe_image(path: Path) -> ImageInfo:
    """The checked header of a reference image file (nothing is decoded)."""
    f, info = _open_image(path)
    f.close()
    return info


def read_image(path: Path) -> np.ndarray:
    """An image file as uint8 RGB; RefError when it is missing, empty, unreadable, or
    larger than the limits (checked on its header before it is decoded)."""
    where = f"refs image {str(path)!r}"
    f, _ = _open_image(path)
    try:
        with f:
            f.seek(0)
            data = np.fromfile(f, dtype=np.uint8)
        img = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    except OSError as e:
        raise RefError(f"{where} cannot be read ({e.strerror or e}); allowed: readable "
                       f"{_ALLOWED_FILES}") from None
    except (cv2.error, MemoryError) as e:
        if limits.is_out_of_memory(e):
            raise RefError(f"{where}: not enough memory to decode it; allowed: smaller "
                           f"{_ALLOWED_FILES}") from None
        img = None
    if img is None or img.size == 0:
        raise RefError(f"{where} is not a readable image (corrupt, truncated or another "
                       f"kind of file); allowed: {_ALLOWED_FILES}")
    del data
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if not np.issubdtype(img.dtype, np.integer):
        # float images (e.g. 32-bit TIFF) are in [0, 1]; NaN reads as 0
        img = np.nan_to_num(img.astype(np.float32, copy=False), copy=False, nan=0.0,
                            posinf=1.0, neginf=0.0)
    # shrink before converting: a 16-bit or float image is converted at bank size
    img = _shrink(img)
    if img.dtype != np.uint8:
        scale = 255.0 / np.iinfo(img.dtype).max if np.issubdtype(img.dtype, np.integer) else 255.0
        img = np.clip(img.astype(np.float32) * scale, 0, 255).round().astype(np.uint8)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def index_bytes(name: str, anchored: bool) -> int:
    """Bytes choosing keeps for one reference (estimated; see ENTRY_BYTES)."""
    return ENTRY_BYTES + len(name) + (0 if anchored else DESCRIPTOR_BYTES)


def _check_index(nbytes: int, what: str,
                 fix: str = "anchor the references by their file names, or use fewer") -> None:
    if nbytes > limits.MAX_BANK_INDEX_BYTES:
        raise RefError(f"{what} take {size_words(nbytes)} to choose from ({ENTRY_BYTES} bytes "
                       f"per reference and its name, {size_words(DESCRIPTOR_BYTES)} more per "
                       f"unanchored one); allowed: at most "
                       f"{size_words(limits.MAX_BANK_INDEX_BYTES)} ({fix})")


def _from_files(paths: list[Path]) -> RefBank | LazyBank:
    names = [os.fspath(p) for p in paths]
    anchors = [anchor_of_name(p) for p in paths]
    _check_index(sum(index_bytes(n, a is not None) for n, a in zip(names, anchors)),
                 f"refs ({len(paths)} images)")
    # every header first: nothing is decoded unless every file passes
    kept = 0
    for path in paths:
        info = probe_image(path)
        kept += kept_bytes(info.height, info.width)
    if not fits_cache(len(paths), kept):
        # read per scene; read_image checks the header again, so a file changed since
        # is refused, never decoded past the limits
        return LazyBank(anchors, lambda i: read_image(Path(names[i])))
    return RefBank([read_image(path) for path in paths], anchors)


def _list_dir(path: Path) -> list[Path]:
    if not path.exists():
        raise RefError(f"refs directory {str(path)!r} does not exist; allowed: {_ALLOWED}")
    if not path.is_dir():
        what = "a file" if path.is_file() else describe_mode(path.stat().st_mode)
        raise RefError(f"refs {str(path)!r} is {what}, not a directory; allowed: a directory "
                       f"of {_ALLOWED_FILES}, or a list of image file paths")
    try:
        files = _regular_files(path)
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


def _regular_files(folder: Path) -> list[Path]:
    """The folder's regular files, sorted; hidden entries and subfolders are skipped, any
    other kind of entry (a FIFO, a device, a dangling link) is refused unopened."""
    files, nbytes = [], 0
    for entry in folder.iterdir():
        if entry.name.startswith("."):
            continue
        try:
            mode = entry.stat().st_mode
        except FileNotFoundError:
            raise RefError(f"refs directory {str(folder)!r} holds {entry.name!r}, a link to "
                           f"nothing; allowed: only {_ALLOWED_FILES}") from None
        if stat.S_ISDIR(mode):
            continue
        if not stat.S_ISREG(mode):
            raise RefError(f"refs directory {str(folder)!r} holds {entry.name!r}, "
                           f"{describe_mode(mode)}; allowed: only {_ALLOWED_FILES}")
        files.append(entry)
        # counted while listing: a folder of millions of files is refused before sorting
        nbytes += index_bytes(os.fspath(entry), anchor_of_name(entry) is not None)
        if nbytes > limits.MAX_BANK_INDEX_BYTES:
            _check_index(nbytes, f"refs directory {str(folder)!r}: its first {len(files)} files")
    return sorted(files)


def _is_blank(img: np.ndarray) -> bool:
    return int(img.max()) - int(img.min()) < BLANK_RANGE


def anchor_of_prop(value) -> int | None:
    """A refs frame's `_RemasterAnchor` as a source frame number (None when unset).

    Allowed: an integer >= 0. Anything else (a string, bytes, a float, NaN, an array of
    several values) is a RefError saying so, never a guess.
    """
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        # VapourSynth returns a one-element array as a plain value: this is several
        raise RefError(f"_RemasterAnchor is an array of {len(value)} values; allowed: one "
                       "integer source frame number (>= 0)")
    if isinstance(value, Integral) and not isinstance(value, bool):
        if value < 0:
            raise RefError(f"_RemasterAnchor is {value}; allowed: a source frame number >= 0")
        return int(value)
    shown = repr(value)[:40]
    raise RefError(f"_RemasterAnchor is a {type(value).__name__} ({shown}); allowed: an "
                   "integer source frame number (>= 0)")


def _check_frame_size(what: str, width: int, height: int) -> None:
    why = size_problem(width, height)
    if why:
        raise RefError(f"{what} {why}")


def _from_clip(refs: vs.VideoNode) -> RefBank | LazyBank:
    """A bank clip: every frame a reference, anchored by its `_RemasterAnchor` if any.

    Every frame is read once now (its anchor is a prop, and blank frames are skipped);
    its image is kept while the bank fits the image cache, else read again when used.
    """
    if refs.width and refs.height:                 # constant size: checked before reading
        _check_frame_size("refs clip", refs.width, refs.height)
    what = "refs clip (a bank: its length differs from the clip's) frames"
    fix = "anchor the frames with _RemasterAnchor, or use fewer"
    _check_index(refs.num_frames * ENTRY_BYTES, what, fix)
    rgb = to_rgb24(refs)
    images: list[np.ndarray] | None = []
    frames: list[int] = []
    anchors: list[int | None] = []
    kept = nbytes = 0
    for n, f in enumerate(rgb.frames(close=True)):
        where = f"refs clip frame {n}"
        _check_frame_size(where, f.width, f.height)
        img = _frame_rgb(f)
        if _is_blank(img):
            continue
        try:
            anchor = anchor_of_prop(f.props.get("_RemasterAnchor"))
        except RefError as e:
            raise RefError(f"{where}: {e}") from None
        frames.append(n)
        anchors.append(anchor)
        nbytes += ENTRY_BYTES + (0 if anchor is not None else DESCRIPTOR_BYTES)
        _check_index(nbytes + (refs.num_frames - n - 1) * ENTRY_BYTES, f"{what} up to {n}", fix)
        if images is not None:
            kept += img.nbytes
            if fits_cache(len(frames), kept):
                images.append(img)
            else:
                images = None           # too many to hold: read again when used
    if images is not None:
        return RefBank(images, anchors)
    lock = threading.Lock()             # one frame at a time, as SyncedRefs reads

    def read(i: int) -> np.ndarray:
        with lock:
            try:
                return _frame_rgb(rgb.get_frame(frames[i]))
            except vs.Error as e:
                raise RefError(f"refs clip frame {frames[i]} cannot be read as RGB ({e}); "
                               f"allowed: frames in {SUPPORTED}") from None
    return LazyBank(anchors, read)


def check_refs(refs) -> None:
    """Check what can be checked of `refs` without reading it (type, clip format, paths)."""
    if refs is None:
        return
    if isinstance(refs, (str, os.PathLike)):
        _check_path(refs)
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
        for path in refs:
            _check_path(path)
        return
    raise RefError(f"refs must be {_ALLOWED}, not {type(refs).__name__}")


def _check_path(path) -> None:
    """RefError for a path no file system can hold (a NUL byte; open() raises ValueError)."""
    if "\0" in os.fsdecode(path):
        raise RefError(f"refs path {os.fsdecode(path)!r:.80} holds a NUL byte; allowed: a "
                       "path without NUL bytes")


def load_bank(refs) -> RefBank | LazyBank:
    """Read `refs` (a bank clip, directory, list of files, or None) into a bank: a
    RefBank when it fits the image cache, else a LazyBank.

    A refs clip of the source's length is synchronised: the filter reads it lazily
    with `SyncedRefs` instead.
    """
    check_refs(refs)
    if refs is None:
        return RefBank()
    if isinstance(refs, vs.VideoNode):
        if refs.num_frames < 1:
            raise RefError("refs clip has no frames; allowed: a clip of at least one frame")
        try:
            return _from_clip(refs)
        except vs.Error as e:
            raise RefError(f"refs clip cannot be read as RGB ({e}); allowed: frames in "
                           f"{SUPPORTED}") from None
    if isinstance(refs, (str, os.PathLike)):
        return _from_files(_list_dir(Path(refs)))
    return _from_files([Path(p) for p in refs])
