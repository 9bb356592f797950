"""Independent implementations the tests compare the filter's with (nothing else uses them).

- `scan`: scene starts and descriptors of a whole clip in one pass, the plain way
  (`clip.frames()`, every frame); `SceneIndex` must give the same bounds and descriptors
  within each block, whatever the request order or threads.
- `choose_sets`: every scene's reference set at once from a `SceneScan`; the filter's
  `selection.choose_set` picks one scene's lazily and must give the same sets.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import vapoursynth as vs

from vsremaster.frames.formats import PropError, scene_change
from vsremaster.planning.scenes import DEFAULT_SC_THRESHOLD, THUMB, ScanError, describe
from vsremaster.references.selection import ref_descriptor, similarity
from vsremaster.references.sources import RefBank


@dataclass
class SceneScan:
    """Scene starts and per-scene descriptors of a clip."""

    starts: list[int]
    from_props: bool
    thumbs: list[np.ndarray] = field(default_factory=list)     # mean luma thumbnail
    hists: list[np.ndarray] = field(default_factory=list)      # mean luma histogram


def scan(luma: vs.VideoNode, sc_threshold: float | None) -> SceneScan:
    """Scan a whole GRAYS luma clip (any size) for scene starts and scene descriptors.

    Props are used when any frame carries `_SceneChangePrev`/`_SceneChangeNext` (and no
    `sc_threshold` is given); otherwise a cut is where consecutive thumbnails differ by
    more than the threshold."""
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
                raise ScanError(len(diffs), str(e)) from None
            diffs.append(float(props["PlaneStatsDiff"]))
            descs.append(describe(np.asarray(f[0]).copy()))
    except vs.Error as e:
        # frames arrive in order: the one that failed is the next to come
        raise ScanError(len(diffs), f"could not be read while scanning for scenes "
                                    f"({str(e).strip()})") from None
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


def choose_sets(bank: RefBank, scenes: SceneScan, num_frames: int,
                max_refs: int) -> list[tuple[int, ...]]:
    """One tuple of bank indices per scene of a whole-clip scan."""
    bounds = scenes.starts + [num_frames]
    if max_refs == 0 or not len(bank):
        return [()] * len(scenes.starts)
    anchored = [i for i, a in enumerate(bank.anchors) if a is not None]
    loose = [i for i, a in enumerate(bank.anchors) if a is None]
    descs = {i: ref_descriptor(bank.images[i]) for i in loose}
    sets = []
    for s, (a, b) in enumerate(zip(bounds, bounds[1:])):
        mid = (a + b - 1) / 2
        inside = sorted((i for i in anchored if a <= bank.anchors[i] < b),
                        key=lambda i: (abs(bank.anchors[i] - mid), i))
        if not inside and anchored:
            dist = {i: max(a - bank.anchors[i], bank.anchors[i] - (b - 1), 0) for i in anchored}
            best = min(dist.values())
            inside = sorted(i for i in anchored if dist[i] == best)
        scene_desc = (scenes.thumbs[s], scenes.hists[s])
        ranked = sorted(loose, key=lambda i: (-similarity(descs[i], scene_desc), i))
        sets.append(tuple((inside + ranked)[:max_refs]))
    return sets
