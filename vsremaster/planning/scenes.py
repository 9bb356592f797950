"""Where scenes start: from `_SceneChangePrev`/`_SceneChangeNext` props, or detected.

The clip is scanned once when the filter is created, on a small grey copy of it, to
find scene starts and a thumbnail descriptor of each scene (used to rank references).
Detection (when no frame carries the props, or `sc_threshold` is given) marks a cut
where the mean absolute difference of consecutive frames' luma exceeds the threshold,
as VapourSynth's misc.SCDetect does. Scene-change props of the wrong type (a string,
NaN, an array) and source frames that fail to render end the scan with a ScanError
naming the frame.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import vapoursynth as vs

from ..frames.formats import PropError, scene_change

DEFAULT_SC_THRESHOLD = 0.1
THUMB = 16           # thumbnail edge used to describe scenes and references
HIST_BINS = 16


class ScanError(ValueError):
    """A clip frame that could not be read or whose props cannot be used; names the frame."""


@dataclass
class SceneScan:
    """Scene starts and per-scene descriptors of a clip."""

    starts: list[int]
    from_props: bool
    thumbs: list[np.ndarray] = field(default_factory=list)     # mean luma thumbnail
    hists: list[np.ndarray] = field(default_factory=list)      # mean luma histogram


def describe(luma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Thumbnail-sized luma [THUMB, THUMB] in [0, 1] -> (thumbnail, normalised histogram)."""
    hist, _ = np.histogram(np.clip(luma, 0, 1), bins=HIST_BINS, range=(0, 1))
    return luma.astype(np.float64), hist / max(hist.sum(), 1)


def scan(luma: vs.VideoNode, sc_threshold: float | None) -> SceneScan:
    """Scan a GRAYS luma clip (any size) for scene starts and scene descriptors."""
    thumbs = vs.core.resize.Bilinear(luma, THUMB, THUMB)
    stats = vs.core.std.PlaneStats(thumbs, thumbs[0] + thumbs[:-1]) if luma.num_frames > 1 \
        else vs.core.std.PlaneStats(thumbs, thumbs)
    marks, diffs, descs = [], [], []
    has_props = False
    try:
        for f in stats.frames(close=True):
            props = f.props
            has_props |= "_SceneChangePrev" in props or "_SceneChangeNext" in props
            try:
                marks.append((scene_change(props, "_SceneChangePrev"),
                              scene_change(props, "_SceneChangeNext")))
            except PropError as e:
                raise ScanError(f"clip frame {len(diffs)}: {e}") from None
            diffs.append(float(props["PlaneStatsDiff"]))
            descs.append(describe(np.asarray(f[0]).copy()))
    except vs.Error as e:
        # frames arrive in order: the one that failed is the next to come
        raise ScanError(f"clip frame {len(diffs)} could not be read while scanning for "
                        f"scenes ({str(e).strip()})") from None
    from_props = has_props and sc_threshold is None
    if from_props:
        cuts = [n for n in range(1, len(marks)) if marks[n][0] or marks[n - 1][1]]
    else:
        threshold = DEFAULT_SC_THRESHOLD if sc_threshold is None else sc_threshold
        cuts = [n for n in range(1, len(diffs)) if diffs[n] > threshold]
    result = SceneScan([0] + cuts, from_props)
    bounds = result.starts + [len(descs)]
    for a, b in zip(bounds, bounds[1:]):
        result.thumbs.append(np.mean([d[0] for d in descs[a:b]], axis=0))
        result.hists.append(np.mean([d[1] for d in descs[a:b]], axis=0))
    return result
