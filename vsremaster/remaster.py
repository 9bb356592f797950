"""`Remaster(clip, refs=...)` and `Confidence(...)`: the VapourSynth wiring.

It checks the clip, reads the settings (`settings.Settings`), picks where the networks
run (`engine.placement`), plans scenes and chunks, picks reference sets, and builds the
output clips (`finish.clips`). Outputs of the same clip object with the same settings
share one engine, so a `Remaster` and a `Confidence` of it compute each cell once.
"""
from __future__ import annotations

import os
import threading
import weakref
from dataclasses import dataclass, replace

import vapoursynth as vs

from . import limits
from .engine.host import release_openmp_threads
from .engine.placement import (DEFAULT_CHUNK, check_sizes, find_weights, load_models,
                               pick_device, pick_dtype, push_step)
from .engine.runner import Engine
from .finish.clips import colour_clip, confidence_clip
from .frames.formats import PropError, check_color_props, check_format
from .frames.source import checked, model_input, processing_size, scan_luma
from .hooks import BUILD_HOOKS
from .planning.scenes import SceneIndex
from .planning.windows import Grid
from .references import fallback
from .references.sets import SceneReferences
from .references.sources import RefError, check_refs, load_bank
from .references.synced import SyncedRefs
from .settings import PREVIEW_CHUNK, Settings, described, fail

#: How output frames are finished: VapourSynth filters (CPU) or composed on the device.
FINISHES = ("graph", "device")
#: What `Confidence` does not take: its output is the colorization's confidence map.
CONFIDENCE_FIXED = ("colorize", "confidence", "tone", "saturation")


def Remaster(clip: vs.VideoNode, refs=None, **settings) -> vs.VideoNode:
    """Restore and colorize a black-and-white clip with DeepRemaster.

    clip: GRAY, YUV or RGB, 8-16 bit integer or 16/32 bit float, constant format/size.
    refs: colour references: a clip (same length: synchronised per scene; else a bank;
        its format and size may vary per frame), a directory or list of image files, or
        None. Checked when the filter is created (image headers); a bank of up to 64
        images is read then, a larger one image by image as scenes need them.
    {settings}

    Every argument, and frame 0's colour props, are checked when the script runs; a
    problem raises vs.Error("Remaster: ...") naming the argument and what is allowed.
    Float input may hold NaN or infinities: NaN reads as 0, +inf as 1, -inf as 0.
    """
    return build(clip, refs, **settings).clip


def Confidence(clip: vs.VideoNode, refs=None, **settings) -> vs.VideoNode:
    """Where `Remaster`'s colour is a guess: a GRAYS clip of the clip's size, each pixel
    the match confidence of the colorization's source-reference attention, in [0, 1]:
    1 = matched a reference closely, 0 = no reference resembles this (and 0 throughout
    frames whose scene has no reference). Computed at 1/8 of the colorization's size
    (`color_mindim`, else `mindim`) and upscaled bilinearly; every frame also has
    `_RemasterConfidence` (its mean).

    clip, refs: as `Remaster`'s.
    {settings}

    A `Confidence` and the latest `Remaster` of the same clip object with the same
    arguments (or the other way round) share one computation.
    """
    fixed = [k for k in CONFIDENCE_FIXED if k in settings]
    if fixed:
        fail(f"Confidence has no argument {fixed[0]!r} (its output is the colorization's "
             f"confidence); allowed: the arguments of Remaster but "
             f"{', '.join(CONFIDENCE_FIXED)}")
    return build(clip, refs, output="confidence", **settings).clip


Remaster = described(Remaster)
Confidence = described(Confidence, fixed=CONFIDENCE_FIXED)


def build(clip, refs=None, *, finish=None, output="colour", **settings) -> "Pipeline":
    """`Remaster` returning the whole pipeline (clip, engine, scenes, reference sets);
    output="confidence": `Confidence`'s clip; finish: "graph" or "device" (default: the
    device's on CUDA, the graph on a CPU)."""
    if not isinstance(clip, vs.VideoNode):
        fail(f"clip must be a vapoursynth.VideoNode (a video clip), not {type(clip).__name__}")
    why = check_format(clip.format)
    if why:
        fail(f"clip {why}")
    if clip.width == 0 or clip.height == 0:
        fail("clip has a variable size (it changes from frame to frame); allowed: a "
             "constant size (resize it first)")
    if clip.num_frames < 1:
        fail("clip has no frames; allowed: a clip of at least one frame")
    s = Settings.of(settings)
    if finish not in (None, *FINISHES):
        fail(f"finish must be one of {', '.join(map(repr, FINISHES))} or None, not {finish!r}")
    device = pick_device(s.device_index)
    dtype = pick_dtype(s.fp16, device)
    check_sizes(clip, s.model_mindim, s.ref_mindim, device)
    weights_path = find_weights(s.weights)
    s = replace(s, chunk=s.chunk or (PREVIEW_CHUNK if s.preview else DEFAULT_CHUNK[device.type]))
    key = (id(clip), _refs_key(refs), str(weights_path), str(device), dtype, s.engine_key())
    with _shared_lock:
        # each output kind once per engine: a Remaster and a Confidence pair up, while
        # every Remaster of its own computes its own frames
        parts = _shared.get(key)
        if parts is None or parts.source is not clip or output in parts.outputs:
            parts = _shared[key] = _parts(clip, refs, s, weights_path, device, dtype)
        parts.outputs.add(output)
    if s.confidence or output == "confidence":
        parts.engine.enable_confidence()
    if output == "confidence":
        out = confidence_clip(parts, parts.clip)
    else:
        out = colour_clip(parts, parts.clip, s.colorize, device, finish, s.confidence, s.tone,
                          s.saturation)
    return Pipeline(out, parts.engine, parts.index, parts.bank, parts.references)


#: The engine (and what it reads) of the latest filter built per clip object and
#: settings; held weakly, so an entry lives as long as an output clip uses it.
_shared: "weakref.WeakValueDictionary[tuple, _Parts]" = weakref.WeakValueDictionary()
_shared_lock = threading.Lock()


def _refs_key(refs):
    """refs as part of a sharing key: clips by identity, paths by name."""
    if isinstance(refs, (str, os.PathLike)):
        return ("path", os.fspath(refs))
    if isinstance(refs, (list, tuple)) and all(isinstance(r, (str, os.PathLike)) for r in refs):
        return ("paths", tuple(os.fspath(r) for r in refs))
    return ("object", id(refs))


def _check_first_frame(clip: vs.VideoNode) -> None:
    """Frame 0's colour props, read when the script runs: a bad tag is a plain error at
    creation (in vspipe and editors), not one wrapped in a traceback at the first frame.
    Later frames are checked as they are read (`frames.source.checked`)."""
    try:
        props = clip.get_frame(0).props
    except vs.Error as e:
        fail(f"clip frame 0 cannot be read: {e}")
    try:
        check_color_props(props, clip.format.color_family)
    except PropError as e:
        fail(f"clip frame 0: {e}")


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


def _parts(clip, refs, s: Settings, weights_path, device, dtype) -> _Parts:
    for hook in BUILD_HOOKS:
        hook(clip, s.sc_threshold)
    try:
        check_refs(refs)
        # image files are read now, before the (long) scene scan; a clip after it
        files = load_bank(refs) if s.colorize and not isinstance(refs, vs.VideoNode) else None
    except RefError as e:
        fail(str(e))
    models = load_models(weights_path, device, dtype)
    _check_first_frame(clip)            # after the arguments and files: they read no frame

    source, clip = clip, checked(clip)                 # colour props checked per frame
    pw, ph = processing_size(clip.width, clip.height, s.model_mindim)
    small = model_input(clip, pw, ph)
    # the colorization's own size (color_mindim); the restoration and results keep pw x ph
    cw, ch = processing_size(clip.width, clip.height, s.colour_mindim)
    index = SceneIndex(scan_luma(clip), s.sc_threshold)           # reads no frame
    try:
        if not s.colorize or not isinstance(refs, vs.VideoNode):
            bank = files
        elif refs.num_frames == clip.num_frames:
            bank = SyncedRefs(refs)                              # read per scene, lazily
        else:
            bank = load_bank(refs)
    except RefError as e:
        fail(str(e))
    references = SceneReferences(bank, index, s.max_refs if s.colorize else 0, s.ref_mindim,
                                 limits.MAX_CANVAS_PIXELS[device.type])
    grid = Grid(index.bounds, clip.num_frames, s.chunk)
    meta = getattr(models.colorize, "meta", {})
    grey_note = fallback.note(models.name, meta) \
        if s.colorize and fallback.keeps_grey(models.name, meta) else None
    engine = Engine(models, grid, references, s, size=(ph, pw),
                    rgb_input=clip.format.color_family == vs.RGB,
                    step=push_step(pw, ph, device, dtype), threads=vs.core.num_threads,
                    grey_note=grey_note, colour_size=(ch, cw))
    if device.type == "cpu":
        release_openmp_threads()    # the networks run on VapourSynth's threads, not this one
    return _Parts(source, refs, clip, small, index, bank, references, engine, models)


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
