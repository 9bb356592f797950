"""`Remaster(clip, refs=...)`: the VapourSynth filter.

Wiring only: it checks the arguments, plans scenes and chunks, picks reference sets,
and hands frames between VapourSynth and the engine through FrameEval/ModifyFrame, so
VapourSynth itself fetches every frame a chunk needs (no get_frame while rendering).
"""
from __future__ import annotations

import functools
import math
import os
import threading
import weakref
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import torch
import vapoursynth as vs

from . import limits
from .engine.compose import DeviceComposer
from .engine.host import release_openmp_threads
from .engine.models import cpu_bfloat16, half_dtype, shared_models
from .engine.runner import Engine, Request
from .frames.formats import PropError, check_color_props, check_format
from .frames.sink import graph_finish, luma_only, output_format, set_props, write_planes
from .frames.source import (checked, frame_array, frame_at, model_input, processing_size,
                            scan_luma)
from .color.compose import TONES
from .model.decoding import CONTEXTS, WINDOW_RADIUS
from .hooks import BUILD_HOOKS
from .planning.scenes import ScanError, SceneIndex
from .planning.windows import Grid
from .references import fallback
from .references.sets import SceneReferences
from .references.sources import RefError, check_refs, load_bank
from .references.synced import SyncedRefs

DEFAULT_CHUNK = {"cpu": 24, "cuda": 32}
#: Bytes one frame of a push needs, per model pixel and byte of the sample type: NetworkR
#: peaked at about 420 bytes per pixel per frame in fp16 on an H100 and 720 in float32
#: on the CPU (measured with the released layers; the streamed taps hold 3 taps of the
#: widest layer per frame at most, within this).
_PUSH_BYTES_PER_PIXEL_BYTE = 210
_PUSH_BUDGET_CPU = 2 << 30
#: On the CPU a push also stays near this many model pixels (a multiple of the engine's
#: 4-frame batch): each layer then runs over a few frames while their inputs are still in
#: cache. NetworkR at 224x160, golden weights: 8 frames a push 21.0 s for 30 frames, 30 a
#: push 31.8 s, 4 a push 24.2 s (the authors' blocks of 5: 18.0 s).
_PUSH_PIXELS_CPU = 8 * 224 * 160
_PUSH_BUDGET_CUDA = 8 << 30
#: preview=True: model size, attention window and chunk of a quick approximate look
PREVIEW_MINDIM, PREVIEW_WINDOW, PREVIEW_CHUNK = 160, 2, 8
#: How output frames are finished: VapourSynth filters (CPU) or composed on the device.
FINISHES = ("graph", "device")


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


def _check_sizes(clip: vs.VideoNode, mindim: int, ref_mindim: int,
                 device: torch.device) -> None:
    """The per-device limits on model sizes, and the clip's aspect (limits.py says why)."""
    kind = device.type
    where = "the CPU" if kind == "cpu" else "CUDA devices"
    if mindim > limits.MAX_MINDIM[kind]:
        why = (" (in float32 the filter holds about 7 GB at 1920x1080, and memory grows "
               "with the square of mindim)"
               if kind == "cpu" else "")
        _fail(f"mindim {mindim} is too large for {where}; allowed: at most "
              f"{limits.MAX_MINDIM[kind]} there{why}")
    if ref_mindim > limits.MAX_REF_MINDIM[kind]:
        _fail(f"ref_mindim {ref_mindim} is too large for {where}; allowed: at most "
              f"{limits.MAX_REF_MINDIM[kind]} there (the reference encoder holds about "
              "200 bytes per canvas pixel)")
    aspect = max(clip.width, clip.height) / min(clip.width, clip.height)
    if aspect > limits.MAX_ASPECT:
        _fail(f"clip is {clip.width}x{clip.height} (aspect {aspect:.1f}:1); allowed: an "
              f"aspect of at most {limits.MAX_ASPECT:g}:1 (crop it)")


def _check_first_frame(clip: vs.VideoNode) -> None:
    """Frame 0's colour props, read when the script runs: a bad tag is a plain error at
    creation (in vspipe and editors), not one wrapped in a traceback at the first frame.
    Later frames are checked as they are read (`frames.source.checked`)."""
    try:
        props = clip.get_frame(0).props
    except vs.Error as e:
        _fail(f"clip frame 0 cannot be read: {e}")
    try:
        check_color_props(props, clip.format.color_family)
    except PropError as e:
        _fail(f"clip frame 0: {e}")


def _pick_dtype(fp16, device: torch.device) -> torch.dtype:
    """fp16 (True, False or None: auto) -> the networks' dtype on `device`.

    Half precision is float16 on CUDA and bfloat16 on a CPU. Auto picks it where the
    hardware multiplies it fast: CUDA, and CPUs with AMX or AVX512-BF16 (measured: 2.3x
    float32 with the released architecture on AMX, 2.3x on AVX512-BF16 (AMD Zen 4);
    outputs within 1 level of 8 bits on average; README).
    """
    if fp16 is not None and not isinstance(fp16, bool):
        _fail(f"fp16 must be True, False or None (auto), not {fp16!r}")
    bf16 = None if device.type == "cuda" else cpu_bfloat16()
    if fp16 is None:
        fp16 = device.type == "cuda" or bf16 is not None
    if fp16 and device.type != "cuda" and bf16 is None:
        _fail("fp16=True on the CPU needs bfloat16 hardware (AMX or AVX512-BF16), which "
              "this CPU lacks; allowed here: fp16=False or None (float32)")
    return half_dtype(device) if fp16 else torch.float32


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


def _push_step(pw: int, ph: int, device: torch.device, dtype: torch.dtype) -> int:
    """Frames per push through the networks that fit the memory budget."""
    per_frame = _PUSH_BYTES_PER_PIXEL_BYTE * torch.finfo(dtype).bits // 8 * pw * ph
    if device.type == "cuda":
        budget = min(torch.cuda.mem_get_info(device)[0] // 4, _PUSH_BUDGET_CUDA)
    else:
        budget = _PUSH_BUDGET_CPU
    step = min(max(budget // per_frame, 1), 64)
    if device.type == "cpu":
        step = min(step, max(4, _PUSH_PIXELS_CPU // (pw * ph) // 4 * 4))
    return int(step)


def Remaster(clip: vs.VideoNode, refs=None, *, weights=None, device_index=None,
             restore: bool = True, colorize: bool = True, mindim: int = 320,
             ref_mindim: int = 256, max_refs: int = 6, chunk: int | None = None,
             fp16: bool | None = None, sc_threshold: float | None = None,
             context: str = "frame", preview: bool = False,
             confidence: bool = False, tone: str = "keep") -> vs.VideoNode:
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
    fp16: half precision: float16 on CUDA, bfloat16 on a CPU (default on CUDA and on
        CPUs with AMX or AVX512-BF16; False: float32 everywhere). sc_threshold: detect
        scene changes with this threshold instead of reading
        `_SceneChangePrev`/`_SceneChangeNext`.
    context: "frame" (each frame's self attention and decoder see frames t-7..t+7 of its
        scene) or "chunk" (the released decoding: a chunk plus 7 frames each side share
        one window; seams at chunk bounds; for comparison).
    preview: a quick approximate look for editors on a CPU: mindim at most PREVIEW_MINDIM,
        self attention over PREVIEW_WINDOW frames each side, chunks of PREVIEW_CHUNK.
    confidence: add `_RemasterConfidence` to every frame, the frame's mean match
        confidence in [0, 1] (see `Confidence`; needs colorize=True).
    tone: GRAY/YUV input: "keep" (the output's luma is the input's, restored; the
        colour is laid over it) or "lab" (the authors' Lab round trip: the luma read as
        L*/100; mid-greys come back darker). RGB input takes the exact Lab round trip.

    Every argument is checked here, when the script runs, before any frame is rendered;
    a problem raises vs.Error("Remaster: ...") naming the argument and what is allowed.
    Float input may hold NaN or infinities: NaN reads as 0, +inf as 1, -inf as 0.
    """
    return build(clip, refs, weights=weights, device_index=device_index, restore=restore,
                 colorize=colorize, mindim=mindim, ref_mindim=ref_mindim, max_refs=max_refs,
                 chunk=chunk, fp16=fp16, sc_threshold=sc_threshold, context=context,
                 preview=preview, confidence=confidence, tone=tone).clip


def Confidence(clip: vs.VideoNode, refs=None, *, weights=None, device_index=None,
               restore: bool = True, mindim: int = 320, ref_mindim: int = 256,
               max_refs: int = 6, chunk: int | None = None, fp16: bool | None = None,
               sc_threshold: float | None = None, context: str = "frame",
               preview: bool = False) -> vs.VideoNode:
    """Where `Remaster`'s colour is a guess: a GRAYS clip of the clip's size, each pixel
    the match confidence of the colorization's source-reference attention, in [0, 1]:
    1 = matched a reference closely, 0 = no reference resembles this (and 0 throughout
    frames whose scene has no reference). Computed at 1/8 of the model size and upscaled
    bilinearly; every frame also has `_RemasterConfidence` (its mean).

    Arguments as `Remaster`'s. A `Confidence` and the latest `Remaster` of the same clip
    object with the same arguments (or the other way round) share one computation: each
    chunk runs through the networks once for both.
    """
    return build(clip, refs, weights=weights, device_index=device_index, restore=restore,
                 mindim=mindim, ref_mindim=ref_mindim, max_refs=max_refs, chunk=chunk,
                 fp16=fp16, sc_threshold=sc_threshold, context=context, preview=preview,
                 output="confidence").clip


def build(clip, refs=None, *, weights=None, device_index=None, restore=True, colorize=True,
          mindim=320, ref_mindim=256, max_refs=6, chunk=None, fp16=None,
          sc_threshold=None, context="frame", preview=False, finish=None, confidence=False,
          output="colour", tone="keep") -> "Pipeline":
    """`Remaster` returning the whole pipeline (clip, engine, scenes, reference sets);
    output="confidence": `Confidence`'s clip. Outputs of the same clip object with the same
    arguments share their engine (`_shared`)."""
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
    for name, value in (("restore", restore), ("colorize", colorize), ("preview", preview),
                        ("confidence", confidence)):
        if not isinstance(value, bool):
            _fail(f"{name} must be True or False, not {value!r}")
    if confidence and not colorize:
        _fail("confidence=True needs colorize=True (the confidence is the colorization's); "
              "allowed with colorize=False: confidence=False")
    mindim = _int_arg("mindim", mindim, 32, 4320)
    ref_mindim = _int_arg("ref_mindim", ref_mindim, 32, 4320)
    max_refs = _int_arg("max_refs", max_refs, 0, 64)
    chunk = _int_arg("chunk", chunk, 1, 512, allow_none=True)
    if sc_threshold is not None and (isinstance(sc_threshold, bool) or not isinstance(sc_threshold, Real)
                                     or math.isnan(sc_threshold) or not 0 < sc_threshold <= 1):
        _fail(f"sc_threshold must be a number in (0, 1] or None (read scene-change props), "
              f"not {sc_threshold!r}")
    if context not in CONTEXTS:
        _fail(f"context must be one of {', '.join(map(repr, CONTEXTS))}, not {context!r}")
    if tone not in TONES:
        _fail(f"tone must be one of {', '.join(map(repr, TONES))}, not {tone!r}")
    if finish not in (None, *FINISHES):
        _fail(f"finish must be one of {', '.join(map(repr, FINISHES))} or None, not {finish!r}")
    window = WINDOW_RADIUS
    if preview:
        mindim, window = min(mindim, PREVIEW_MINDIM), PREVIEW_WINDOW
        chunk = chunk or PREVIEW_CHUNK
    device = _pick_device(device_index)
    dtype = _pick_dtype(fp16, device)
    _check_sizes(clip, mindim, ref_mindim, device)
    weights_path = _find_weights(weights)
    if chunk is None:
        chunk = DEFAULT_CHUNK[device.type]
    key = (id(clip), _refs_key(refs), str(weights_path), str(device), dtype, restore, colorize,
           mindim, ref_mindim, max_refs, chunk, sc_threshold, context, window)
    with _shared_lock:
        # each output kind once per engine: a Remaster and a Confidence pair up, while
        # every Remaster of its own computes its own frames (as before)
        parts = _shared.get(key)
        if parts is None or parts.source is not clip or output in parts.outputs:
            parts = _shared[key] = _parts(clip, refs, weights_path, device, dtype, restore,
                                          colorize, mindim, ref_mindim, max_refs, chunk,
                                          sc_threshold, context, window)
        parts.outputs.add(output)
    if confidence or output == "confidence":
        parts.engine.enable_confidence()
    if output == "confidence":
        return Pipeline(_confidence_clip(parts, parts.clip), parts.engine, parts.index,
                        parts.bank, parts.references)
    clip_out = _colour_clip(parts, parts.clip, colorize, device, finish, confidence, tone)
    return Pipeline(clip_out, parts.engine, parts.index, parts.bank, parts.references)


#: The engine (and what it reads) of the latest filter built per clip object and
#: arguments; held weakly, so an entry lives as long as an output clip uses it.
_shared: "weakref.WeakValueDictionary[tuple, _Parts]" = weakref.WeakValueDictionary()
_shared_lock = threading.Lock()


def _refs_key(refs):
    """refs as part of a sharing key: clips by identity, paths by name."""
    if isinstance(refs, (str, os.PathLike)):
        return ("path", os.fspath(refs))
    if isinstance(refs, (list, tuple)) and all(isinstance(r, (str, os.PathLike)) for r in refs):
        return ("paths", tuple(os.fspath(r) for r in refs))
    return ("object", id(refs))


@dataclass(eq=False)
class _Parts:
    """What the outputs of one filter share. Holds the given clip and refs objects, so
    their ids in the sharing key are not reused while it lives; `clip` is the given clip
    with its colour props checked per frame (what the outputs read)."""

    source: vs.VideoNode
    refs: object
    clip: vs.VideoNode
    small: vs.VideoNode
    index: SceneIndex
    bank: object
    references: SceneReferences
    engine: Engine
    models: object
    outputs: set = None             # output kinds built over these parts

    def __post_init__(self):
        self.outputs = set()


def _parts(clip, refs, weights_path, device, dtype, restore, colorize, mindim, ref_mindim,
           max_refs, chunk, sc_threshold, context, window) -> _Parts:
    for hook in BUILD_HOOKS:
        hook(clip, sc_threshold)
    try:
        check_refs(refs)
        # image files are read now, before the (long) scene scan; a clip after it
        files = load_bank(refs) \
            if colorize and not isinstance(refs, vs.VideoNode) else None
    except RefError as e:
        _fail(str(e))
    models = _load_models(weights_path, device, dtype)
    _check_first_frame(clip)            # after the arguments and files: they read no frame

    source, clip = clip, checked(clip)                 # colour props checked per frame
    pw, ph = processing_size(clip.width, clip.height, mindim)
    small = model_input(clip, pw, ph)
    index = SceneIndex(scan_luma(clip), sc_threshold)           # reads no frame
    try:
        if not colorize or not isinstance(refs, vs.VideoNode):
            bank = files
        elif refs.num_frames == clip.num_frames:
            bank = SyncedRefs(refs)                              # read per scene, lazily
        else:
            bank = load_bank(refs)
    except RefError as e:
        _fail(str(e))
    references = SceneReferences(bank, index, max_refs if colorize else 0, ref_mindim,
                                 limits.MAX_CANVAS_PIXELS[device.type])
    grid = Grid(index.bounds, clip.num_frames, chunk)
    meta = getattr(models.colorize, "meta", {})
    grey_note = fallback.note(models.name, meta) \
        if colorize and fallback.keeps_grey(models.name, meta) else None
    engine = Engine(models, grid, references, restore=restore, colorize=colorize,
                    rgb_input=clip.format.color_family == vs.RGB, context=context,
                    step=_push_step(pw, ph, device, dtype), threads=vs.core.num_threads,
                    window=window, grey_note=grey_note)
    if device.type == "cpu":
        release_openmp_threads()    # the networks run on VapourSynth's threads, not this one
    return _Parts(source, refs, clip, small, index, bank, references, engine, models)


def _colour_clip(parts: _Parts, clip, colorize: bool, device, finish, confidence: bool,
                 tone: str):
    """Remaster's output clip over shared parts."""
    engine, small, models = parts.engine, parts.small, parts.models
    finish = finish or ("device" if device.type == "cuda" else "graph")
    out_fmt = output_format(clip.format, colorize)
    if finish == "graph":
        planes = vs.RGBS if colorize else vs.GRAYS
        blank = vs.core.std.BlankClip(small, format=planes, keep=True)
        render = _Render(engine, small, blank, models.name, None)
        out = graph_finish(vs.core.std.FrameEval(blank, render.eval), clip, out_fmt, colorize,
                           tone)
    else:
        composed = out_fmt if colorize or clip.format.color_family == vs.RGB else \
            out_fmt.replace(color_family=vs.GRAY, subsampling_w=0, subsampling_h=0)
        blank = vs.core.std.BlankClip(clip, format=composed.id, keep=True)
        render = _Render(engine, small, blank, models.name,
                         (clip, DeviceComposer(device, clip.format, composed, tone)))
        out = vs.core.std.FrameEval(blank, render.eval)
        if composed.color_family == vs.GRAY:
            out = luma_only(out, clip)
    render.parts, render.confidence_prop = parts, confidence
    return out


def _confidence_clip(parts: _Parts, clip) -> vs.VideoNode:
    """Confidence's output: the map at 1/8 of the model size, upscaled to the clip's size."""
    small = parts.small
    blank = vs.core.std.BlankClip(small, format=vs.GRAYS, width=small.width // 8,
                                  height=small.height // 8, keep=True)
    render = _ConfidenceRender(parts.engine, small, blank, parts.models.name, None)
    render.parts = parts
    out = vs.core.resize.Bilinear(vs.core.std.FrameEval(blank, render.eval),
                                  clip.width, clip.height)
    return vs.core.std.CopyFrameProps(out, clip, props=SOURCE_TIMING_PROPS)


#: Source frame props the confidence clip keeps (its colour props would not describe it).
SOURCE_TIMING_PROPS = ["_DurationNum", "_DurationDen", "_AbsoluteTime",
                       "_SceneChangePrev", "_SceneChangeNext"]


def mean_confidence(done, j: int) -> float:
    """The mean match confidence of frame j of a finished cell."""
    if done.ready is not None:
        done.ready.synchronize()
    return float(done.finished.confidence[j].double().mean())


@dataclass
class Pipeline:
    """What `build` made: the output clip and the parts behind it."""

    clip: vs.VideoNode
    engine: Engine
    scenes: SceneIndex
    bank: object
    references: SceneReferences

    def scene_bounds(self) -> list[tuple[int, int]]:
        """Every scene of the clip (scans the whole clip: for tests and tools)."""
        return self.scenes.all_bounds()

    def scene_starts(self) -> list[int]:
        return [a for a, _ in self.scene_bounds()]

    def ref_sets(self) -> list[tuple[int, ...]]:
        """Each scene's reference ids (bank indices; for a synchronised clip, frame numbers)."""
        return [self.references(a, b)[0] for a, b in self.scene_bounds()]


class _Render:
    """The per-frame glue between VapourSynth and the engine.

    Graph finishing: each frame is the model-size result of its cell (planes delta L,
    a, b). Device finishing: the source frame comes along and the frame is composed.
    """

    #: add `_RemasterConfidence` (the engine then finishes confidences)
    confidence_prop = False

    def __init__(self, engine: Engine, small, blank, model_name: str, device_finish):
        self.engine, self.small, self.blank = engine, small, blank
        self.model_name = model_name
        self.source, self.compose = device_finish or (None, None)

    def eval(self, n: int) -> vs.VideoNode:
        try:
            req = self.engine.request(n)
        except ScanError as e:
            raise vs.Error(f"Remaster: clip {e}") from None
        except vs.Error:
            raise
        except Exception as e:       # noqa: BLE001 - every failure reaches the user named
            raise vs.Error(f"Remaster: frame {n}: {e}") from None
        clips = [self.blank] + ([self.source] if self.source is not None else []) \
            + [frame_at(self.small, i, n) for i in req.raw]
        return vs.core.std.ModifyFrame(self.blank, clips, functools.partial(self.frame, req=req))

    def frame(self, n: int, f: list[vs.VideoFrame], req: Request) -> vs.VideoFrame:
        try:
            return self._frame(n, f, req)
        except vs.Error:
            raise
        except Exception as e:       # noqa: BLE001 - every failure reaches the user named
            raise vs.Error(f"Remaster: frame {n}: {e}") from e

    def _result(self, n: int, f, req: Request):
        """(the frames as a list, the finished cell, n's index in it); the raw frames
        follow the blank (and the source frame when composing on the device)."""
        f = f if isinstance(f, list) else [f]          # ModifyFrame passes one clip's alone
        first = 1 if self.source is None else 2
        raw = {i: frame_array(fr) for i, fr in zip(req.raw, f[first:])}
        done = self.engine.result(req, raw)
        return f, done, n - done.cell.start

    def _props(self, done) -> dict:
        """The props every output frame of a cell gets."""
        extra = {"_RemasterScene": done.cell.scene_start, "_RemasterModel": self.model_name}
        if done.refs:
            extra["_RemasterRefs"] = list(done.refs)
        return extra

    def _frame(self, n: int, f, req: Request) -> vs.VideoFrame:
        f, done, j = self._result(n, f, req)
        result = f[0].copy()
        extra = self._props(done)
        if self.confidence_prop:
            extra["_RemasterConfidence"] = mean_confidence(done, j)
        if done.note:
            extra[fallback.NOTE_PROP] = done.note
        if self.source is None:
            fin = done.finished
            planes = [fin.delta[j] if fin.delta is not None else None]
            if fin.ab is not None:
                planes += list(fin.ab[j])
            write_planes(result, [np.zeros(result[0].shape, np.float32) if p is None
                                  else p.reshape(result[0].shape).cpu().numpy() for p in planes])
            set_props(result, {}, extra)
        else:
            extra.update(self.compose(f[1], done, j, result))
            set_props(result, f[1].props, extra)
        return result


class _ConfidenceRender(_Render):
    """The per-frame glue of `Confidence`: each frame is its cell's confidence map."""

    def _frame(self, n: int, f, req: Request) -> vs.VideoFrame:
        f, done, j = self._result(n, f, req)
        result = f[0].copy()
        write_planes(result, done.finished.confidence[j].cpu().numpy())
        set_props(result, {}, {**self._props(done),
                               "_RemasterConfidence": mean_confidence(done, j)})
        return result
