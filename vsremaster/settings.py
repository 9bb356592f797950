"""The filter's settings, declared once: field, default, check and meaning together.

`Remaster` and `Confidence` take them as keyword arguments (their signatures and docs
are made from `Settings`), the sharing of engines keys on them and the engine reads them.
A bad value is `vs.Error("Remaster: <name> ...")` naming what is allowed.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
import textwrap
import os
from dataclasses import dataclass, field
from numbers import Integral, Real

import vapoursynth as vs

from .model.decoding import CONTEXTS, WINDOW_RADIUS

#: How GRAY and YUV input's luma comes out (finish.compose): kept, or the authors' Lab trip
TONES = ("keep", "lab")
#: Largest `saturation`: beyond it nearly every colour leaves the gamut and is clipped
MAX_SATURATION = 4.0
#: preview=True: model size, attention window and chunk of a quick approximate look
PREVIEW_MINDIM, PREVIEW_WINDOW, PREVIEW_CHUNK = 160, 2, 8


def fail(message: str):
    raise vs.Error(f"Remaster: {message}")


def _doc(text: str, **kw):
    return field(metadata={"doc": text}, **kw)


@dataclass(frozen=True)
class Settings:
    """Everything `Remaster` takes besides the clip and its references."""

    weights: str | os.PathLike | None = _doc(
        "weights file: the authors' remasternet.pth.tar or a vsremaster .safetensors "
        "(default: VSREMASTER_WEIGHTS, the user data folder, the bundled model)", default=None)
    device_index: int | None = _doc(
        "None: the first CUDA device, else the CPU; -1: the CPU; n: CUDA device n",
        default=None)
    restore: bool = _doc("run the restoration network", default=True)
    colorize: bool = _doc("run the colorization network (False keeps the input's colour "
                          "family)", default=True)
    mindim: int = _doc("short edge of frames at model size (multiples of 16)", default=320)
    color_mindim: int | None = _doc(
        "short edge the colorization runs at (multiples of 16), at most mindim; the "
        "restoration still runs at mindim (None: mindim)", default=None)
    ref_mindim: int = _doc("short edge of the reference canvas", default=256)
    max_refs: int = _doc("most references per scene", default=6)
    chunk: int | None = _doc("frames computed per request (default 24 on a CPU, 32 on "
                             "CUDA); with context='frame' the output does not depend on it",
                             default=None)
    fp16: bool | None = _doc("half precision: float16 on CUDA, bfloat16 on a CPU (default "
                             "where the hardware is fast at it); False: float32", default=None)
    sc_threshold: float | None = _doc("find scene changes with this threshold in (0, 1] "
                                      "instead of reading the clip's scene-change props",
                                      default=None)
    context: str = _doc("'frame': each frame's attention sees t-7..t+7 of its scene; "
                        "'chunk': the released decoding, seams at chunk bounds",
                        default="frame")
    preview: bool = _doc(f"a quick approximate look: mindim at most {PREVIEW_MINDIM}, "
                         f"attention {PREVIEW_WINDOW} frames each side, chunks of "
                         f"{PREVIEW_CHUNK}", default=False)
    confidence: bool = _doc("add _RemasterConfidence (mean match confidence, [0, 1]) to "
                            "every frame; needs colorize", default=False)
    tone: str = _doc("GRAY/YUV input: 'keep' (the output's luma is the input's, restored) "
                     "or 'lab' (the authors' Lab round trip; mid-greys come back darker)",
                     default="keep")
    saturation: float = _doc("factor on the model's a*b* before the conversion to the "
                             "output (1.0: the model's colour; above 1: more vivid)",
                             default=1.0)

    def __post_init__(self):
        if self.weights is not None and not isinstance(self.weights, (str, os.PathLike)):
            fail(f"weights must be a path to a weights file (str or os.PathLike) or None "
                 f"(search the usual places), not {type(self.weights).__name__}")
        if self.device_index is not None and (isinstance(self.device_index, bool) or
                                              not isinstance(self.device_index, Integral)):
            fail(f"device_index must be None (auto), -1 (CPU) or a CUDA device number, "
                 f"not {self.device_index!r}")
        for name in ("restore", "colorize", "preview", "confidence"):
            if not isinstance(getattr(self, name), bool):
                fail(f"{name} must be True or False, not {getattr(self, name)!r}")
        if self.confidence and not self.colorize:
            fail("confidence=True needs colorize=True (the confidence is the "
                 "colorization's); allowed with colorize=False: confidence=False")
        _int("mindim", self.mindim, 32, 4320)
        if self.color_mindim is not None:
            _int("color_mindim", self.color_mindim, 32, 4320, " or None")
            if self.color_mindim > self.mindim:
                fail(f"color_mindim {self.color_mindim} is above mindim {self.mindim}; "
                     f"allowed: 32 to mindim, or None (the colorization at mindim)")
        _int("ref_mindim", self.ref_mindim, 32, 4320)
        _int("max_refs", self.max_refs, 0, 64)
        if self.chunk is not None:
            _int("chunk", self.chunk, 1, 512, " or None")
        if self.fp16 is not None and not isinstance(self.fp16, bool):
            fail(f"fp16 must be True, False or None (auto), not {self.fp16!r}")
        t = self.sc_threshold
        if t is not None and (isinstance(t, bool) or not isinstance(t, Real) or math.isnan(t)
                              or not 0 < t <= 1):
            fail(f"sc_threshold must be a number in (0, 1] or None (read scene-change "
                 f"props), not {t!r}")
        if self.context not in CONTEXTS:
            fail(f"context must be one of {', '.join(map(repr, CONTEXTS))}, "
                 f"not {self.context!r}")
        v = self.saturation
        if isinstance(v, bool) or not isinstance(v, Real) or not math.isfinite(v) or \
                not 0 <= v <= MAX_SATURATION:
            fail(f"saturation must be a finite number from 0 to {MAX_SATURATION:g} "
                 f"(1.0: the model's colour), not {v!r}")
        if v != 1.0 and not self.colorize:
            fail(f"saturation={v!r} needs colorize=True (it scales the colorization's "
                 f"colour); allowed with colorize=False: 1.0")
        if self.tone not in TONES:
            fail(f"tone must be one of {', '.join(map(repr, TONES))}, not {self.tone!r}")

    @classmethod
    def of(cls, given: dict) -> "Settings":
        """Settings from keyword arguments; an unknown one is a vs.Error listing them."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = [k for k in given if k not in names]
        if unknown:
            fail(f"unknown argument {unknown[0]!r}; allowed: clip, refs, {', '.join(names)}")
        return cls(**given)

    @property
    def model_mindim(self) -> int:
        return min(self.mindim, PREVIEW_MINDIM) if self.preview else self.mindim

    @property
    def colour_mindim(self) -> int:
        """Short edge of the colorization's model size (preview caps it too)."""
        return min(self.color_mindim or self.mindim, self.model_mindim)

    @property
    def window(self) -> int:
        """Frames each side a self attention sees."""
        return PREVIEW_WINDOW if self.preview else WINDOW_RADIUS

    def engine_key(self) -> "Settings":
        """These settings less what only the output clip uses (shared engines key on it)."""
        return dataclasses.replace(self, confidence=False, tone="keep", saturation=1.0)


def _int(name: str, value, lo: int, hi: int, none: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, Integral) or not lo <= value <= hi:
        fail(f"{name} must be an integer from {lo} to {hi}{none}, not {value!r}")


def described(func, fixed: tuple = ()):
    """`func(clip, refs=None, **settings)` given the signature and the argument lines
    of its docstring from `Settings` (less the `fixed` ones)."""
    params = [inspect.Parameter("clip", inspect.Parameter.POSITIONAL_OR_KEYWORD),
              inspect.Parameter("refs", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)]
    lines = []
    for f in dataclasses.fields(Settings):
        if f.name in fixed:
            continue
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY,
                                        default=f.default, annotation=f.type))
        lines += textwrap.wrap(f"{f.name}: {f.metadata['doc']}. Default: {f.default!r}.",
                               84, initial_indent="    ", subsequent_indent="        ")
    func.__signature__ = inspect.Signature(params, return_annotation="vs.VideoNode")
    func.__doc__ = func.__doc__.replace("{settings}", "\n".join(lines).lstrip())
    return func
