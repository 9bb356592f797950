"""Which frames would most help as new references: the scenes whose colour is most a guess.

From each frame's mean match confidence (`vsremaster.Confidence`, `_RemasterConfidence`)
and its scene: scenes ranked by their mean confidence, weakest first, and in each the
frame with the lowest confidence (all frames of a clip have one size, so the lowest mean
is the lowest confidence mass). A colour version of that frame, added as a reference,
gives the scene a reference that resembles it where it resembles the others least.

`export_grey` hands those frames over ready to colour: full size, grey, named as the refs
folder anchors them (`ref_NNNNNN.png`).
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import vapoursynth as vs

from ..color.lab import RGB_TO_XYZ
from ..frames.formats import srgb_linear


@dataclass(frozen=True)
class SceneScore:
    """A scene [start, stop), its mean confidence, and its weakest frame."""

    start: int
    stop: int
    mean: float
    frame: int
    frame_confidence: float

    def as_dict(self) -> dict:
        return {"scene": [self.start, self.stop - 1], "mean": round(self.mean, 6),
                "frame": self.frame, "frame_confidence": round(self.frame_confidence, 6)}


def rank_scenes(confidence: list[float], scene_of: list[int]) -> list[SceneScore]:
    """Scenes weakest first (ties: earlier first) from per-frame mean confidences and
    each frame's scene start (frames in order, every scene's frames consecutive)."""
    if len(confidence) != len(scene_of):
        raise ValueError("one confidence and one scene start per frame")
    scenes: dict[int, list[int]] = {}
    for n, start in enumerate(scene_of):
        scenes.setdefault(start, []).append(n)
    out = []
    for start, frames in scenes.items():
        values = np.array([confidence[n] for n in frames], np.float64)
        weakest = frames[int(np.argmin(values))]         # the first of equal minima
        out.append(SceneScore(start, frames[-1] + 1, float(values.mean()), weakest,
                              float(confidence[weakest])))
    return sorted(out, key=lambda s: (s.mean, s.start))


def contact_sheet(tiles: list[np.ndarray], labels: list[str], columns: int = 2,
                  gap: int = 8, label_height: int = 22) -> np.ndarray:
    """uint8 RGB tiles [h, w, 3] (any sizes) with a label under each, in rows of
    `columns`, on a dark grey sheet: uint8 RGB."""
    if not tiles:
        raise ValueError("no tiles")
    cell_w = max(t.shape[1] for t in tiles)
    cell_h = max(t.shape[0] for t in tiles) + label_height
    rows = -(-len(tiles) // columns)
    cols = min(columns, len(tiles))
    sheet = np.full((gap + rows * (cell_h + gap), gap + cols * (cell_w + gap), 3), 32, np.uint8)
    for i, (tile, label) in enumerate(zip(tiles, labels)):
        y = gap + (i // columns) * (cell_h + gap)
        x = gap + (i % columns) * (cell_w + gap)
        sheet[y:y + tile.shape[0], x:x + tile.shape[1]] = tile
        cv2.putText(sheet, label, (x + 2, y + tile.shape[0] + label_height - 7),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (235, 235, 235), 1, cv2.LINE_AA)
    return sheet


def beside(a: np.ndarray, b: np.ndarray, gap: int = 4) -> np.ndarray:
    """Two uint8 RGB images of one height side by side."""
    pad = np.full((a.shape[0], gap, 3), 32, np.uint8)
    return np.concatenate([a, pad, b], axis=1)


def heat(values: np.ndarray) -> np.ndarray:
    """A confidence map [h, w] in [0, 1] as uint8 RGB (inferno: black 0, yellow 1)."""
    v = np.clip(np.nan_to_num(values), 0.0, 1.0)
    bgr = cv2.applyColorMap(np.round(v * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)
    return np.ascontiguousarray(bgr[..., ::-1])


# --- export: the suggested frames, grey, ready to colour ---------------------------------

class ExportError(ValueError):
    """An export folder that cannot take the frames; the message says why."""


def ref_name(frame: int) -> str:
    """The file name the refs folder anchors to `frame` (`sources.anchor_of_name`)."""
    return f"ref_{frame:06d}.png"


def export_problem(folder: Path) -> str | None:
    """Why `folder` cannot take exported frames (a file, not writable), or None. A folder
    that does not exist yet is fine if its nearest existing parent is a writable folder."""
    probe = folder
    while not probe.exists():
        if probe.is_symlink():
            return f"{str(probe)!r} is a link to nothing"
        probe = probe.parent
    if not probe.is_dir():
        what = "a file" if probe.is_file() else "not a directory"
        return f"{str(probe)!r} is {what}; allowed: a directory (made if missing)"
    try:        # a real write: permission bits say nothing to root or of a read-only mount
        fd, tmp = tempfile.mkstemp(prefix=".vsremaster-probe-", dir=probe)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        return f"{str(probe)!r} is not writable ({e.strerror or e}); allowed: a writable directory"
    return None


def grey_picture(clip: vs.VideoNode) -> vs.VideoNode:
    """The clip as a full-range grey a user sees it: GRAY/YUV its luma (expanded from each
    frame's range, as the networks read it); RGB the sRGB grey of the same luminance,
    so the same L* as the networks read. 8-bit sources give GRAY8, deeper ones GRAY16."""
    core = vs.core
    fmt = clip.format
    out = vs.GRAY8 if fmt.sample_type == vs.INTEGER and fmt.bits_per_sample <= 8 else vs.GRAY16
    if fmt.color_family != vs.RGB:
        luma = clip if fmt.color_family == vs.GRAY else core.std.ShufflePlanes(clip, 0, vs.GRAY)
        return core.resize.Point(luma, format=out, range_s="full")
    lin = srgb_linear(clip)                 # as the finish reads RGB
    # Y, as the networks' Lab L is computed
    y = " ".join(f"{c} {w!r} *" for c, w in zip("xyz", RGB_TO_XYZ[1])) + " + +"
    grey = core.std.Expr([core.std.ShufflePlanes(lin, p, vs.GRAY) for p in range(3)],
                         f"{y} 0 max 1 min")
    encoded = core.std.Expr(grey, "x 0.0031308 > x 1 2.4 / pow 1.055 * 0.055 - x 12.92 * ?")
    return core.resize.Point(encoded, format=out, range_s="full")


def export_grey(clip: vs.VideoNode, frames: list[int], folder: Path,
                overwrite: bool = False) -> list[Path]:
    """Write each frame of `frames` as `folder/ref_NNNNNN.png` (`grey_picture`, full size).

    Nothing is written unless all can be: the names are checked first (an existing file
    is kept unless `overwrite`: it may be one already coloured by hand), every picture
    is rendered and written to a hidden temporary file beside its target (the refs
    folder skips hidden files), and only then are they renamed into place."""
    why = export_problem(folder)
    if why:
        raise ExportError(why)
    targets = [folder / ref_name(n) for n in frames]
    odd = [t.name for t in targets if (t.exists() or t.is_symlink()) and
           (t.is_symlink() or not t.is_file())]
    if odd:
        raise ExportError(f"{str(folder)!r} holds {', '.join(odd)}, not a plain file; "
                          f"allowed: a folder where those names are free or plain files")
    taken = [t.name for t in targets if t.exists()]
    if taken and not overwrite:
        raise ExportError(f"{str(folder)!r} already holds {', '.join(taken)} (perhaps "
                          f"coloured already); allowed: another folder, or --force to "
                          f"overwrite them")
    grey = grey_picture(clip)
    pictures = [np.array(grey.get_frame(n)[0], copy=True) for n in frames]
    folder.mkdir(parents=True, exist_ok=True)
    temps: list[str] = []
    try:
        for target, picture in zip(targets, pictures):
            ok, data = cv2.imencode(".png", picture)
            if not ok:
                raise ExportError(f"could not encode {target.name} as PNG")
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
            temps.append(tmp)
            with os.fdopen(fd, "wb") as f:
                f.write(data.tobytes())
        for tmp, target in zip(temps, targets):
            os.replace(tmp, target)
    except BaseException:
        for tmp in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)
        raise
    return targets
