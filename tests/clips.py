"""Building test clips in memory."""
from __future__ import annotations

import numpy as np
import vapoursynth as vs

core = vs.core


def moving_pattern(n: int, h: int, w: int, seed: int = 0, shift: int = 2) -> np.ndarray:
    """Grey frames [n, h, w] in [0, 1]: a smooth random texture panning over time."""
    rng = np.random.default_rng(seed)
    base = rng.random((h // 4 + 2, (w + n * shift) // 4 + 2))
    big = np.kron(base, np.ones((4, 4)))
    frames = [big[:h, i * shift:i * shift + w] for i in range(n)]
    yy, xx = np.mgrid[0:h, 0:w]
    grad = 0.5 * (xx / w) + 0.25 * (yy / h)
    return np.clip(0.5 * np.stack(frames) + grad, 0, 1).astype(np.float32)


def from_arrays(frames: np.ndarray, fmt=vs.GRAYS, props: dict | None = None,
                per_frame_props: dict | None = None) -> vs.VideoNode:
    """A clip from [n, h, w] (grey) or [n, 3, h, w] (RGB) float arrays, converted to `fmt`."""
    rgb = frames.ndim == 4
    n, h, w = frames.shape[0], frames.shape[-2], frames.shape[-1]
    blank = core.std.BlankClip(format=vs.RGBS if rgb else vs.GRAYS, width=w, height=h, length=n)

    def fill(n, f):
        i = n
        out = f.copy()
        data = frames[i] if rgb else frames[i][None]
        for p in range(out.format.num_planes):
            np.copyto(np.asarray(out[p]), data[p])
        for key, value in (props or {}).items():
            out.props[key] = value
        for key, value in (per_frame_props or {}).get(i, {}).items():
            out.props[key] = value
        return out

    clip = core.std.ModifyFrame(blank, blank, fill)
    target = core.get_video_format(fmt)
    if target.id == clip.format.id:
        return clip
    if target.color_family == vs.YUV and not rgb:
        y = core.resize.Point(clip, format=target.replace(color_family=vs.GRAY, subsampling_w=0,
                                                          subsampling_h=0).id, range_s="limited")
        yuv = core.std.ShufflePlanes([y, core.std.BlankClip(y, format=target.id,
                                      color=_neutral(target))], [0, 1, 2], vs.YUV)
        return core.std.SetFrameProps(yuv, _Matrix=1)
    kw = {"matrix_s": "709"} if target.color_family == vs.YUV else {}
    if target.color_family == vs.GRAY and rgb:
        kw = {"matrix_s": "709"}
    return core.resize.Point(clip, format=target.id, **kw)


def _neutral(fmt: vs.VideoFormat) -> list:
    mid = 0.0 if fmt.sample_type == vs.FLOAT else 1 << (fmt.bits_per_sample - 1)
    return [0, mid, mid]


def scene_props(starts: list[int]) -> dict:
    """Per-frame props marking scene starts the way scene-change filters do.

    Frame 0 carries the prop too (0), as filters set it on every frame: the filter reads
    props, rather than detecting, when frame 0 has them.
    """
    return {0: {"_SceneChangePrev": 0}} | {s: {"_SceneChangePrev": 1} for s in starts if s > 0}


def planes(f: vs.VideoFrame) -> list[np.ndarray]:
    return [np.array(f[p], copy=True) for p in range(f.format.num_planes)]


def frame_bytes(clip: vs.VideoNode, n: int) -> bytes:
    return b"".join(p.tobytes() for p in planes(clip.get_frame(n)))
