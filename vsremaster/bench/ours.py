"""Ours: the real filter (`vsremaster.remaster.build`) over a clip built in memory.

`measure` renders a GRAYS clip of the benchmark's frames, with the references as PNG
files and `mindim`/`ref_mindim` at the frames'/references' own short edge, so the model
runs at the frames' native size; timed from building the clip (scene scan included;
weights loading excluded: the warm-up's models are shared) to the last frame, frames
pulled with `clip.frames()` as vspipe does. `render` runs the same filter and returns
its frames (for the evaluation and the seam script).

Extra filter arguments (`Config.ours_args`, or `extra` here) go to `build` as given and
override the benchmark's own (precision, mindim, ...), so a run can compare e.g. the
filter's `context="chunk"` decoding with its default in one process.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from .config import DTYPE_NAMES, DTYPES, Config, device_index
from .inputs import Inputs, warmup_input
from .measure import MethodResult, free, record_split, split_for, sync, timed


def grey_clip(frames: np.ndarray, one_scene: bool = True):
    """A GRAYS clip of [N, H, W] float32 frames held in memory (marked as one scene
    unless `one_scene` is False: then the filter detects scenes itself)."""
    import vapoursynth as vs
    core = vs.core
    n, h, w = frames.shape
    blank = core.std.BlankClip(format=vs.GRAYS, width=w, height=h, length=n, keep=True)

    def fill(n, f):
        out = f.copy()
        np.copyto(np.asarray(out[0]), frames[n])
        if one_scene:                               # no detection guesswork
            out.props["_SceneChangePrev"] = 0
            out.props["_SceneChangeNext"] = 0
        return out

    return core.std.ModifyFrame(blank, blank, fill)


def planes_to_rgb(planes: dict[int, np.ndarray], family: str, matrix: int) -> dict[int, np.ndarray]:
    """Output frames of ours ([P, H, W] float planes) -> RGB [H, W, 3] (outside timing)."""
    if family == "RGB":
        return {i: np.ascontiguousarray(p.transpose(1, 2, 0)) for i, p in planes.items()}
    if family == "GRAY":                            # colorize=False: grey, as RGB
        return {i: np.repeat(p.transpose(1, 2, 0), 3, axis=2) for i, p in planes.items()}
    import vapoursynth as vs
    core = vs.core
    keys = sorted(planes)
    _, h, w = planes[keys[0]].shape
    blank = core.std.BlankClip(format=vs.YUV444PS, width=w, height=h, length=len(keys), keep=True)

    def fill(n, f):
        out = f.copy()
        for p in range(3):
            np.copyto(np.asarray(out[p]), planes[keys[n]][p])
        out.props["_Matrix"] = matrix
        return out

    rgb = core.resize.Point(core.std.ModifyFrame(blank, blank, fill), format=vs.RGBS,
                            matrix_in=matrix)
    return {keys[n]: np.dstack([np.asarray(f[p]) for p in range(3)]).copy()
            for n, f in enumerate(rgb.frames(close=True))}


def precision_kwargs(precision: str, device: torch.device) -> dict:
    """The filter's `fp16` argument for --precision on `device` (ValueError where the
    filter has no such precision there: its half precision is `half_dtype(device)`)."""
    from ..engine.models import half_dtype
    if precision == "auto":
        return {}
    if precision == "fp32":
        return {"fp16": False}
    if DTYPES[precision] != half_dtype(device):
        raise ValueError(f"--precision {precision}: the filter's half precision on "
                         f"{device.type} is {DTYPE_NAMES[half_dtype(device)]}")
    return {"fp16": True}


def _planes(f) -> np.ndarray:
    return np.stack([np.asarray(f[p]) for p in range(f.format.num_planes)])


def measure(cfg: Config, inputs: Inputs, small: Inputs, weights, keep: set[int],
            extra: dict | None = None, name: str = "ours") -> MethodResult:
    """The filter timed on `inputs`; `extra`: filter arguments on top of `cfg.ours_args`."""
    from ..remaster import build
    res = MethodResult(name)
    w, h = inputs.frames.shape[2], inputs.frames.shape[1]
    kw = dict(weights=str(weights), device_index=device_index(cfg.device),
              **precision_kwargs(cfg.precision, cfg.device))
    user = {**cfg.ours_args, **(extra or {})}
    warm_in = warmup_input(cfg, inputs, small)
    warm = None
    if warm_in is not None:
        warm_mindim = min(warm_in.frames.shape[1:])
        warm_user = dict(user)
        if warm_user.get("color_mindim"):
            # the timed run's colour/model ratio at the warm-up's smaller size
            warm_user["color_mindim"] = max(32, min(
                warm_mindim, warm_user["color_mindim"] * warm_mindim // min(w, h)))
        warm = build(grey_clip(warm_in.frames), refs=warm_in.ref_paths or None,
                     **{**kw, "mindim": warm_mindim, "ref_mindim": warm_in.ref_size,
                        **warm_user})
        for _ in warm.clip.frames(close=True):
            pass
    clip = grey_clip(inputs.frames)
    planes, family, matrix = {}, None, 1
    with timed(res, cfg.device) as t0:
        pipe = build(clip, refs=inputs.ref_paths or None,
                     **{**kw, "mindim": min(w, h), "ref_mindim": inputs.ref_size, **user})
        # ours restores through the engine's stream (NetworkR layer by layer)
        streams = pipe.engine.stream
        split = split_for(cfg.split, cfg.device, stream=streams.restoration,
                          colorize=pipe.engine.models.colorize, decoder=streams.decoder)
        with split:
            t_built = time.perf_counter()
            count = 0
            for i, f in enumerate(pipe.clip.frames(close=True)):
                count += 1
                if i in keep:
                    planes[i] = _planes(f)
                    family = f.format.color_family.name
                    matrix = int(f.props.get("_Matrix", 1))
            sync(cfg.device)
    res.frames = count
    res.precision = DTYPE_NAMES.get(pipe.engine.models.dtype, str(pipe.engine.models.dtype))
    res.info = {"runs": dict(pipe.engine.runs), "build_s": round(t_built - t0, 3),
                "scenes": len(pipe.scene_starts())}
    if user:
        res.info["filter_args"] = {k: repr(v) if not isinstance(v, (int, float, str, bool))
                                   else v for k, v in user.items()}
    res.info["grid_size"] = pipe.engine.grid.size
    res.info["push_step"] = pipe.engine.step
    record_split(res, split, t_built - t0)
    if planes:
        res.outputs = planes_to_rgb(planes, family, matrix)
        res.shape = next(iter(res.outputs.values())).shape
    del pipe, warm, clip
    free(cfg.device)
    return res


def render(frames: np.ndarray, ref_paths: list[str] | None, weights, *,
           device: torch.device | str = "cpu", ref_mindim: int = 256,
           one_scene: bool = True, scenes: list | None = None,
           **filter_args) -> np.ndarray:
    """The filter's output for grey frames [T, H, W] float32 (model L, at model size),
    as float32 RGB [T, 3, H, W] in [0, 1]. `mindim` defaults to the frames' short edge
    (the model runs at their own size); `filter_args` go to `build` as given. With
    `one_scene` False the filter detects scenes itself; `scenes`, a list, receives
    their first frames."""
    from ..remaster import build
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    kw = dict(weights=str(weights), device_index=device_index(device),
              mindim=min(frames.shape[1:]), ref_mindim=ref_mindim, **filter_args)
    pipe = build(grey_clip(frames, one_scene), refs=ref_paths or None, **kw)
    if scenes is not None:
        scenes[:] = pipe.scene_starts()
    planes, family, matrix = {}, None, 1
    for i, f in enumerate(pipe.clip.frames(close=True)):
        planes[i] = _planes(f)
        family = f.format.color_family.name
        matrix = int(f.props.get("_Matrix", 1))
    del pipe
    rgb = planes_to_rgb(planes, family, matrix)
    return np.stack([rgb[i].transpose(2, 0, 1) for i in range(len(frames))])
