"""What a benchmark run is asked to do: sizes, device, precision, methods, filter arguments."""
from __future__ import annotations

import ast
import inspect
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

METHODS = ("ours", "baseline", "naive")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}
#: Arguments of `remaster.build` the benchmark itself decides (the clip and the references).
FIXED_FILTER_ARGS = ("clip", "refs")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Config:
    width: int = 224
    height: int = 160
    frames: int = 30
    refs: int = 6
    ref_size: int = 256
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    precision: str = "auto"
    #: the baseline's precision: "fp32" (the authors' script) or "ours" (ours' precision)
    baseline_precision: str = "fp32"
    weights: Path | None = None
    methods: tuple[str, ...] = METHODS
    naive_frames: int | None = None
    warmup: str = "auto"
    split: bool = False
    seed: int = 0
    #: each method in a fresh process of its own (bench.isolated), else all in this one
    isolate: bool = True
    #: extra keyword arguments for the filter (`--ours-args`), applied to every ours run
    ours_args: dict = field(default_factory=dict)
    #: further ours runs, each with these arguments on top of `ours_args` (`--ours-variant`)
    ours_variants: tuple[dict, ...] = ()

    @property
    def model_size(self) -> tuple[int, int]:
        return model_size(self.width, self.height)

    @property
    def warmup_mode(self) -> str:
        if self.warmup != "auto":
            return self.warmup
        return "full" if self.device.type == "cuda" else "small"


def model_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) rounded down to multiples of 16 (the networks' requirement)."""
    return max(16, width // 16 * 16), max(16, height // 16 * 16)


def parse_device(text: str) -> torch.device:
    device = torch.device(text)
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be cpu, cuda or cuda:N, not {text!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("CUDA is not available here")
        index = torch.cuda.current_device() if device.index is None else device.index
        if not 0 <= index < torch.cuda.device_count():
            raise ValueError(f"no CUDA device {index} (there are {torch.cuda.device_count()})")
        device = torch.device("cuda", index)
    return device


def device_index(device: torch.device) -> int:
    return -1 if device.type == "cpu" else int(device.index)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"


def parse_filter_args(text: str) -> dict:
    """`key=value[,key=value...]` -> {key: value}; values read as Python literals
    (`16`, `True`, `None`, `'x'`) where they are one, else kept as text (`chunk`)."""
    out = {}
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ValueError(f"{item!r} is not key=value")
        try:
            out[key] = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            out[key] = raw.strip()
    return out


def check_filter_args(kwargs: dict) -> None:
    """ValueError naming any key the filter (`remaster.build`: `Remaster`'s arguments and
    its own keyword-only ones) does not take."""
    from ..remaster import Remaster, build
    names = list(inspect.signature(Remaster).parameters) + [
        k for k, p in inspect.signature(build).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY]
    allowed = [k for k in dict.fromkeys(names) if k not in FIXED_FILTER_ARGS]
    bad = [k for k in kwargs if k not in allowed]
    if bad:
        raise ValueError(f"the filter takes no argument {', '.join(map(repr, bad))} "
                         f"(it takes {', '.join(allowed)})")


def variant_name(kwargs: dict) -> str:
    """The label of an ours run with extra filter arguments: `ours[context=chunk]`."""
    return "ours[" + ",".join(f"{k}={v}" for k, v in kwargs.items()) + "]"


def ours_options(args: list[str], variants: list[str]) -> tuple[dict, tuple[dict, ...]]:
    """The texts of `--ours-args` (merged into one dict) and `--ours-variant` (one dict
    each), every key checked against the filter (ValueError naming option and text)."""
    merged, runs = {}, []
    for option, texts in (("--ours-args", args), ("--ours-variant", variants)):
        for text in texts:
            try:
                parsed = parse_filter_args(text)
                check_filter_args(parsed)
            except ValueError as e:
                raise ValueError(f"{option} {text!r}: {e}") from None
            if option == "--ours-args":
                merged.update(parsed)
            elif parsed:
                runs.append(parsed)
    return merged, tuple(runs)


def add_ours_options(parser) -> None:
    """The command-line options of `ours_options`."""
    parser.add_argument("--ours-args", action="append", default=[], metavar="KEY=VALUE[,...]",
                        help="extra keyword arguments for the filter in every ours run, e.g. "
                             "context=chunk or chunk=16 (values read as Python literals, else "
                             "text; they override the command's own; repeatable)")
    parser.add_argument("--ours-variant", action="append", default=[], metavar="KEY=VALUE[,...]",
                        help="one more ours run with these filter arguments on top of "
                             "--ours-args, reported as ours[KEY=VALUE] (repeatable)")
