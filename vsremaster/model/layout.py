"""What a weights file must hold for NetworkR/NetworkC: keys, shapes, dtypes, values.

The expected layout comes from the networks built on the meta device (no memory), so a
file's declared shapes are checked before any of its tensors is read, and a file
claiming an enormous network is refused before that network is built.
"""
from __future__ import annotations

import functools
import math

import torch

from .colorization import NetworkC
from .restoration import NetworkR

#: The networks' channel width: 1.0 is the released architecture, the project's lite
#: model 0.25; nothing wider exists.
MAX_WIDTH = 1.0
_SHOWN = 5  # how many offending keys an error message lists
_INTEGER = {torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
            torch.uint16, torch.uint32, torch.uint64}


class LayoutError(ValueError):
    """A state_dict (or a file's header) that does not fit the architecture."""


def kind(dtype: torch.dtype) -> str:
    """'floating', 'integer' or the dtype's name (bool, complex, ...)."""
    if dtype.is_floating_point:
        return "floating"
    return "integer" if dtype in _INTEGER else str(dtype).removeprefix("torch.")


def parse_width(value) -> float:
    """A stored width (metadata string or number) as a float in (0, MAX_WIDTH]."""
    try:
        width = float(value)
    except (TypeError, ValueError):
        width = math.nan
    if not (math.isfinite(width) and 0 < width <= MAX_WIDTH):
        raise LayoutError(f"network width {str(value)[:40]!r} is not a number in "
                          f"(0, {MAX_WIDTH:g}] (1 is the released architecture)")
    return width


def width_from_first_layer(shape) -> float | None:
    """The width implied by `modelR.layers.1.conv3d.weight`'s shape, or None if it has none."""
    if not isinstance(shape, (tuple, list, torch.Size)) or len(shape) != 5:
        return None
    out = shape[0]
    return out / 64 if isinstance(out, int) and not isinstance(out, bool) and out > 0 else None


@functools.lru_cache(maxsize=8)
def expected_layout(width: float) -> dict[str, dict[str, tuple[tuple[int, ...], str]]]:
    """{'modelR': {key: (shape, kind)}, 'modelC': {...}} of the networks at `width`."""
    width = parse_width(width)
    with torch.device("meta"):
        models = {"modelR": NetworkR(width), "modelC": NetworkC(width)}
    return {label: {k: (tuple(v.shape), kind(v.dtype)) for k, v in m.state_dict().items()}
            for label, m in models.items()}


def largest_numel() -> int:
    """Elements in both networks at the widest width: the most any weights file holds."""
    return sum(math.prod(shape) for layout in expected_layout(MAX_WIDTH).values()
               for shape, _ in layout.values())


def check_layout(expected: dict[str, tuple[tuple[int, ...], str]],
                 found: dict[str, tuple[tuple[int, ...], str]], label: str = "") -> None:
    """LayoutError naming missing/unexpected keys, wrong shapes or wrong dtype kinds.

    `found` maps keys to (shape, kind) as declared by a file's header or read from tensors.
    """
    where = f"{label}: " if label else ""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    problems = []
    if missing:
        problems.append(f"{_n(missing, 'key')} missing: {_few(missing)}")
    if unexpected:
        problems.append(f"{_n(unexpected, 'unexpected key')}: {_few(unexpected)}")
    if problems:
        raise LayoutError(where + "; ".join(problems))
    wrong = [(k, expected[k][0], tuple(found[k][0])) for k in expected
             if tuple(found[k][0]) != expected[k][0]]
    if wrong:
        shown = "; ".join(f"{k!r}: expected {e}, found {f}" for k, e, f in wrong[:_SHOWN])
        raise LayoutError(f"{where}{_n(wrong, 'tensor')} with the wrong shape: {shown}")
    kinds = [(k, expected[k][1], found[k][1]) for k in expected if found[k][1] != expected[k][1]]
    if kinds:
        shown = "; ".join(f"{k!r}: {f}, expected {e}" for k, e, f in kinds[:_SHOWN])
        raise LayoutError(f"{where}{_n(kinds, 'tensor')} of the wrong type ({shown}); "
                          "weights are not converted between integer and floating point")


def layout_of(state: dict) -> dict[str, tuple[tuple[int, ...], str]]:
    """(shape, kind) of each tensor of a state_dict."""
    return {k: (tuple(v.shape), kind(v.dtype)) for k, v in state.items()}


def check_values(state: dict, label: str = "") -> None:
    """LayoutError when a floating tensor holds NaN or infinity, or a BatchNorm running
    variance is negative (either would turn every frame into NaN)."""
    where = f"{label}: " if label else ""
    bad = [k for k, v in state.items()
           if v.dtype.is_floating_point and not bool(torch.isfinite(v).all())]
    if bad:
        raise LayoutError(f"{where}{_n(bad, 'tensor')} holding NaN or infinite values: "
                          f"{_few(bad)} (damaged or diverged weights)")
    negative = [k for k, v in state.items()
                if k.endswith("running_var") and v.dtype.is_floating_point and bool((v < 0).any())]
    if negative:
        raise LayoutError(f"{where}{_n(negative, 'BatchNorm variance')} below zero: "
                          f"{_few(negative)} (damaged weights)")


def _n(items: list, noun: str) -> str:
    return f"{len(items)} {noun}{'s' if len(items) != 1 else ''}"


def _few(keys: list[str]) -> str:
    more = f" (+{len(keys) - _SHOWN} more)" if len(keys) > _SHOWN else ""
    return ", ".join(repr(k) for k in keys[:_SHOWN]) + more
