"""`Remaster(clip, refs=...)`: the VapourSynth filter.

Wiring only: it checks the arguments, plans scenes and chunks, picks reference sets,
and hands frames between VapourSynth and the engine through FrameEval/ModifyFrame, so
VapourSynth itself fetches every frame a chunk needs (no get_frame while rendering).
"""
from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from numbers import Integral, Real

import torch
import vapoursynth as vs

from .engine.models import shared_models
from .engine.runner import Engine, Request
from .frames.formats import ColorProps, check_format, output_format
from .frames.sink import set_props, to_output, write_planes
from .frames.source import frame_array, frame_at, processing_size, scan_luma, working_clip
from .planning import scenes
from .planning.windows import Grid
from .references import fallback
from .references.canvas import place_on_canvas
from .references.selection import choose_sets
from .references.sources import RefError, check_refs, load_bank

DEFAULT_CHUNK = {"cpu": 24, "cuda": 32}
_RESTORE_BYTES_PER_PIXEL_BYTE = 210
_RESTORE_BUDGET_CPU = 4 << 30
_RESTORE_BUDGET_CUDA = 8 << 30


def _fail(message: str):
    raise vs.Error(f"Remaster: {message}")


def _int_arg(name: str, value, lo: int, hi: int, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, Integral) or not lo <= value <= hi:
        _fail(f"{name} must be an integer from {lo} to {hi}"
              f"{' or None' if allow_none else ''}, not {value!r}")
    return int(value)


def _pick_device(device_index) -> torch.device:
    if device_index is None:
        return torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    if isinstance(device_index, bool) or not isinstance(device_index, Integral):
        _fail(f"device_index must be None (auto), -1 (CPU) or a CUDA device number, "
              f"not {device_index!r}")
    if device_index == -1:
        return torch.device("cpu")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if not 0 <= device_index < count:
        allowed = f"None (auto), -1 (CPU) or 0-{count - 1}" if count else "None (auto) or -1 (CPU)"
        where = f"this machine has CUDA devices 0-{count - 1}" if count else \
            "this machine has no CUDA device, or torch was built without CUDA"
        _fail(f"device_index {device_index} names a CUDA device that does not exist "
              f"({where}); allowed: {allowed}")
    return torch.device("cuda", int(device_index))


def _pick_dtype(fp16, device: torch.device) -> torch.dtype:
    if fp16 is not None and not isinstance(fp16, bool):
        _fail(f"fp16 must be True, False or None (auto), not {fp16!r}")
    if fp16 is None:
        fp16 = device.type == "cuda"
    if fp16 and device.type != "cuda":
        _fail("fp16=True needs a CUDA device (the CPU runs float32); allowed on the CPU: "
              "fp16=False or None")
    return torch.float16 if fp16 else torch.float32


def _find_weights(weights):
    from .model.checkpoint import CheckpointError
    from .weights import find_weights
    if weights is not None and not isinstance(weights, (str, os.PathLike)):
        _fail(f"weights must be a path to a weights file (str or os.PathLike) or None "
              f"(search the usual places), not {type(weights).__name__}")
    try:
        return find_weights(weights)
    except (CheckpointError, OSError) as e:
        _fail(f"weights: {e}")


def _load_models(path, device: torch.device, dtype: torch.dtype):
    """The shared models for a weights file; any problem with the file is a clear vs.Error."""
    from .model.checkpoint import CheckpointError
    try:
        return shared_models(path, device, dtype)
    except (CheckpointError, OSError) as e:
        _fail(f"weights: {e}; allowed: the authors' remasternet.pth.tar or a vsremaster "
              ".safetensors file")


def _restore_cell_size(pw: int, ph: int, device: torch.device, dtype: torch.dtype) -> int:
    """Frames per restoration push that fit the memory budget.

    Measured: NetworkR peaks at about 420 bytes per pixel per frame in fp16 on an H100
    and 720 in float32 on the CPU (210 per byte of element size covers both). A push
    also holds each layer's 2 carried frames, a padding frame, and the stream state (all
    layers' carries, about 3 frames' worth): 5 frames on top.
    """
    per_frame = _RESTORE_BYTES_PER_PIXEL_BYTE * torch.finfo(dtype).bits // 8 * pw * ph
    if device.type == "cuda":
        budget = min(torch.cuda.mem_get_info(device)[0] // 4, _RESTORE_BUDGET_CUDA)
    else:
        budget = _RESTORE_BUDGET_CPU
    return int(min(max(budget // per_frame - 5, 2), 64))


def Remaster(clip: vs.VideoNode, refs=None, *, weights=None, device_index=None,
             restore: bool = True, colorize: bool = True, mindim: int = 320,
             ref_mindim: int = 256, max_refs: int = 6, chunk: int | None = None,
             fp16: bool | None = None, sc_threshold: float | None = None) -> vs.VideoNode:
    """Restore and colorize a black-and-white clip with DeepRemaster.

    clip: GRAY, YUV or RGB, 8-16 bit integer or 16/32 bit float, constant format/size.
    refs: colour references: a clip (same length: synchronised per scene; else a bank;
        its format and size may vary per frame), a directory or list of image files, or
        None. Read when the filter is created.
    weights: weights file (default: VSREMASTER_WEIGHTS, user data dir, bundled models/).
    device_index: None = first CUDA device or CPU; -1 = CPU; n = CUDA device n.
    restore / colorize: run the restoration / colorization network.
    mindim / ref_mindim: short edge of frames / references at model size.
    max_refs: most references per scene. chunk: frames per chunk (context excluded).
    fp16: half precision (default on CUDA). sc_threshold: detect scene changes with this
        threshold instead of reading `_SceneChangePrev`/`_SceneChangeNext`.

    Every argument is checked here, when the script runs, before any frame is rendered;
    a problem raises vs.Error("Remaster: ...") naming the argument and what is allowed.
    Float input may hold NaN or infinities: NaN reads as 0, +inf as 1, -inf as 0.
    """
    return build(clip, refs, weights=weights, device_index=device_index, restore=restore,
                 colorize=colorize, mindim=mindim, ref_mindim=ref_mindim, max_refs=max_refs,
                 chunk=chunk, fp16=fp16, sc_threshold=sc_threshold).clip


def build(clip, refs=None, *, weights=None, device_index=None, restore=True, colorize=True,
          mindim=320, ref_mindim=256, max_refs=6, chunk=None, fp16=None,
          sc_threshold=None) -> "Pipeline":
    """`Remaster` returning the whole pipeline (clip, engine, scenes, reference sets)."""
    if not isinstance(clip, vs.VideoNode):
        _fail(f"clip must be a vapoursynth.VideoNode (a video clip), not {type(clip).__name__}")
    why = check_format(clip.format)
    if why:
        _fail(f"clip {why}")
    if clip.width == 0 or clip.height == 0:
        _fail("clip has a variable size (it changes from frame to frame); allowed: a "
              "constant size (resize it first)")
    if clip.num_frames < 1:
        _fail("clip has no frames; allowed: a clip of at least one frame")
    for name, value in (("restore", restore), ("colorize", colorize)):
        if not isinstance(value, bool):
            _fail(f"{name} must be True or False, not {value!r}")
    mindim = _int_arg("mindim", mindim, 32, 4320)
    ref_mindim = _int_arg("ref_mindim", ref_mindim, 32, 4320)
    max_refs = _int_arg("max_refs", max_refs, 0, 64)
    chunk = _int_arg("chunk", chunk, 1, 512, allow_none=True)
    if sc_threshold is not None and (isinstance(sc_threshold, bool) or not isinstance(sc_threshold, Real)
                                     or math.isnan(sc_threshold) or not 0 < sc_threshold <= 1):
        _fail(f"sc_threshold must be a number in (0, 1] or None (read scene-change props), "
              f"not {sc_threshold!r}")
    device = _pick_device(device_index)
    dtype = _pick_dtype(fp16, device)
    weights_path = _find_weights(weights)
    try:
        check_refs(refs)
        # image files are read now, before the (long) scene scan; a clip after it
        files = load_bank(refs, None, clip.num_frames) \
            if colorize and not isinstance(refs, vs.VideoNode) else None
    except RefError as e:
        _fail(str(e))
    models = _load_models(weights_path, device, dtype)
    if chunk is None:
        chunk = DEFAULT_CHUNK[device.type]

    rgb_input = clip.format.color_family == vs.RGB
    work = working_clip(clip)
    pw, ph = processing_size(clip.width, clip.height, mindim)
    small = vs.core.resize.Bicubic(work, pw, ph)
    scan = scenes.scan(scan_luma(work), sc_threshold)
    try:
        bank = load_bank(refs, scan.starts, clip.num_frames) \
            if colorize and isinstance(refs, vs.VideoNode) else files
    except RefError as e:
        _fail(str(e))
    ref_sets = choose_sets(bank, scan, clip.num_frames, max_refs) if colorize \
        else [()] * len(scan.starts)
    canvases = {s: place_on_canvas([bank.images[i] for i in s], ref_mindim)
                for s in set(ref_sets) if s}
    meta = getattr(models.colorize, "meta", {})
    grey = fallback.grey_scenes(ref_sets, colorize, models.name, meta)
    grid = Grid(scan.starts, clip.num_frames, chunk)
    restore_grid = Grid(scan.starts, clip.num_frames, _restore_cell_size(pw, ph, device, dtype))
    engine = Engine(models, grid, restore_grid, ref_sets, canvases, restore=restore,
                    colorize=colorize, rgb_input=rgb_input, threads=vs.core.num_threads,
                    grey_scenes=grey)
    colour = ColorProps.of(clip, clip.get_frame(0).props)
    out_family = vs.RGB if (colorize or rgb_input) else vs.GRAY
    blank = vs.core.std.BlankClip(work, format=vs.RGBS if out_family == vs.RGB else vs.GRAYS,
                                  keep=True)
    render = _Render(engine, work, small, blank, models.name)
    result = vs.core.std.FrameEval(blank, render.eval)
    out = to_output(result, clip, output_format(clip.format, colorize), colour)
    out = fallback.mark(out, scan.starts, grey, fallback.note(models.name, meta))
    return Pipeline(out, engine, scan, bank, ref_sets)


@dataclass
class Pipeline:
    """What `build` made: the output clip and the parts behind it."""

    clip: vs.VideoNode
    engine: Engine
    scenes: scenes.SceneScan
    bank: object
    ref_sets: list


class _Render:
    """The per-frame glue between VapourSynth and the engine."""

    def __init__(self, engine: Engine, work, small, blank, model_name: str):
        self.engine, self.work, self.small, self.blank = engine, work, small, blank
        self.model_name = model_name

    def eval(self, n: int) -> vs.VideoNode:
        req = self.engine.request(n)
        clips = [self.blank, self.work] + [frame_at(self.work, i, n) for i in req.full] \
            + [frame_at(self.small, i, n) for i in req.raw]
        return vs.core.std.ModifyFrame(self.blank, clips, functools.partial(self.frame, req=req))

    def frame(self, n: int, f: list[vs.VideoFrame], req: Request) -> vs.VideoFrame:
        split = 2 + len(req.full)
        full = [frame_array(fr) for fr in f[2:split]]
        raw = {i: frame_array(fr) for i, fr in zip(req.raw, f[split:])}
        done = self.engine.result(req, raw, full)
        result = f[0].copy()
        write_planes(result, done.frames[n - done.cell.start])
        extra = {"_RemasterScene": done.cell.scene, "_RemasterModel": self.model_name}
        if done.refs:
            extra["_RemasterRefs"] = list(done.refs)
        set_props(result, f[1].props, extra)
        return result
