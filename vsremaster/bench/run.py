"""The benchmark driver: ours, the authors' baseline and the naive window, side by side.

One process; every method gets the same synthetic grey frames, the same references and
the same weights file:
- `ours`: the real filter (`vsremaster.remaster.build`) rendering a GRAYS clip built in
  memory from the frames, with the references as PNG files in a temporary folder and
  `mindim`/`ref_mindim` set to the frames'/references' own short edge, so the model
  runs at the frames' native size. Timed from building the clip (scene scan included;
  weights loading excluded: the warm-up's models are shared) to the last frame.
- `baseline`: `vsremaster.bench.baseline` (the authors' 5-frame blocks, float32).
- `naive`: `vsremaster.bench.naive` (a centred 15-frame window per output frame).

Every method is warmed up first with one untimed run ("small": a 64x48 clip, the CPU
default; "full": the measured size, the CUDA default, where cuDNN and the allocator
tune themselves to the shapes).

Memory, per method, in this one process:
- peak RSS: a sampling thread reads /proc/self/statm every 2 ms while the method runs
  (RSS is process-wide, so `resource.getrusage` would only give the peak of the whole
  run). Memory that earlier methods freed may stay in the allocator's heap, so the
  figure is reported both as the peak and as the growth over the RSS at the method's
  start. The process-wide high-water mark (VmHWM) is reported too.
- peak VRAM (CUDA): `torch.cuda.max_memory_allocated`, reset before each method; each
  method's own weights are on the device while it runs (the others' are freed).
"""
from __future__ import annotations

import gc
import importlib.util
import inspect
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from ..model import NetworkC, NetworkR
from ..model.checkpoint import load_checkpoint, save_checkpoint
from ..references.canvas import canvas_size, place_on_canvas
from . import baseline, naive

METHODS = ("ours", "baseline", "naive")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}
SMALL = (64, 48)              # warm-up size (width, height)
SWEEP_SIZES = (("360p", 640, 360), ("480p", 854, 480), ("720p", 1280, 720),
               ("1080p", 1920, 1080))
#: Reference GPUs for the sweep's analytic "fits" columns (bytes).
GPUS = (("1080Ti-11GB", 11 << 30), ("H100-80GB", 80 << 30))
#: ../shared beside the checkout, or $VSREMASTER_SHARED (as the tests look for it).
SHARED = Path(os.environ.get("VSREMASTER_SHARED", Path(__file__).resolve().parents[2].parent
                             / "shared"))
GOLDEN_GENERATOR = SHARED / "golden" / "deterministic_weights.py"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- configuration --------------------------------------------------------------------
@dataclass
class Config:
    width: int = 224
    height: int = 160
    frames: int = 30
    refs: int = 6
    ref_size: int = 256
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    precision: str = "auto"
    weights: Path | None = None
    methods: tuple[str, ...] = METHODS
    naive_frames: int | None = None
    warmup: str = "auto"
    split: bool = False
    seed: int = 0

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


# -- inputs ---------------------------------------------------------------------------
def synthetic_frames(n: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Grey frames [n, h, w] float32 in [0, 1]: a smooth random texture panning, on a ramp."""
    rng = np.random.default_rng(seed)
    shift = max(1, width // 100)
    base = rng.random((height // 8 + 2, (width + n * shift) // 8 + 2)).astype(np.float32)
    big = cv2.resize(base, (base.shape[1] * 8, base.shape[0] * 8), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = 0.3 * xx / width + 0.2 * yy / height
    out = np.empty((n, height, width), np.float32)
    for i in range(n):
        out[i] = np.clip(0.6 * big[:height, i * shift:i * shift + width] + ramp, 0, 1)
    return out


def ref_shape(width: int, height: int, ref_size: int) -> tuple[int, int]:
    """(h, w) of reference images with short edge `ref_size` and the frames' aspect,
    equal to their canvas (so placing them on it resizes nothing)."""
    aspect = width / height
    h, w = (ref_size, ref_size * aspect) if aspect >= 1 else (ref_size / aspect, ref_size)
    h, w = max(16, int(h) // 16 * 16), max(16, int(w) // 16 * 16)
    return canvas_size([(h, w)], ref_size)


def synthetic_refs(n: int, height: int, width: int, seed: int = 1) -> list[np.ndarray]:
    """n colourful uint8 RGB images [h, w, 3] (smooth random colour fields)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        base = rng.random((height // 32 + 2, width // 32 + 2, 3)).astype(np.float32)
        big = cv2.resize(base, (width, height), interpolation=cv2.INTER_CUBIC)
        out.append((np.clip(big, 0, 1) * 255).round().astype(np.uint8))
    return out


@dataclass
class Inputs:
    """What every method gets: grey frames, reference images, canvas, their files."""

    frames: np.ndarray                 # [N, H, W] float32, model size
    ref_images: list[np.ndarray]       # uint8 RGB
    canvas: np.ndarray | None          # [R, 3, Hr, Wr] float32
    ref_paths: list[str]
    ref_size: int


def make_inputs(width: int, height: int, frames: int, refs: int, ref_size: int,
                folder: Path, seed: int = 0, tag: str = "") -> Inputs:
    grey = synthetic_frames(frames, height, width, seed)
    images = synthetic_refs(refs, *ref_shape(width, height, ref_size), seed=seed + 1)
    paths = []
    for i, img in enumerate(images):
        path = folder / f"ref{tag}_{chr(97 + i % 26)}{i // 26}.png"   # no trailing number: no anchor
        cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        paths.append(str(path))
    canvas = place_on_canvas(images, ref_size) if images else None
    return Inputs(grey, images, canvas, paths, ref_size)


# -- weights --------------------------------------------------------------------------
def _golden_module():
    if not GOLDEN_GENERATOR.is_file():
        return None
    spec = importlib.util.spec_from_file_location("deterministic_weights", GOLDEN_GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def default_weights(folder: Path) -> tuple[Path, str]:
    """Write full-size weights for the benchmark; (path, where they came from).

    The golden generator of ../shared/golden when present (seed-stable across machines),
    else PyTorch's default initialisation seeded with 0 (attention gamma set to 0.5 so
    the attention paths contribute, as the golden weights do).
    """
    model_r, model_c = NetworkR(), NetworkC()
    golden = _golden_module()
    if golden is not None:
        state_r = golden.make_state_dict(model_r.state_dict())
        state_c = golden.make_state_dict(model_c.state_dict())
        source = f"golden generated weights ({GOLDEN_GENERATOR})"
    else:
        torch.manual_seed(0)
        model_r, model_c = NetworkR(), NetworkC()
        state_r, state_c = model_r.state_dict(), model_c.state_dict()
        for key in state_c:
            if key.endswith("gamma"):
                state_c[key] = torch.full_like(state_c[key], 0.5)
        source = "seeded torch init (seed 0, attention gamma 0.5; golden generator not found)"
    path = save_checkpoint(folder / "bench-weights.safetensors", state_r, state_c,
                           name="bench-generated")
    return path, source


# -- memory ---------------------------------------------------------------------------
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int | None:
    """Current resident set size, from /proc/self/statm (None where there is no /proc)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


def process_peak_rss() -> int:
    """Process-wide RSS high-water mark (VmHWM, else getrusage)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


class PeakMemory:
    """Peak RSS (sampled by a thread) and peak CUDA memory while the block runs."""

    def __init__(self, device: torch.device, interval: float = 0.002):
        self.device, self.interval = device, interval
        self.start = self.peak = 0
        self.vram: int | None = None
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            now = rss_bytes()
            if now is not None and now > self.peak:
                self.peak = now

    def __enter__(self) -> "PeakMemory":
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
        now = rss_bytes()
        self._proc = now is None
        self.start = self.peak = now if now is not None else process_peak_rss()
        if not self._proc:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.vram = torch.cuda.max_memory_allocated(self.device)
        if self._proc:
            self.peak = process_peak_rss()
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, rss_bytes() or 0)


def mb(n: int | None) -> float | None:
    return None if n is None else round(n / 2**20, 1)


# -- results --------------------------------------------------------------------------
@dataclass
class MethodResult:
    name: str
    frames: int = 0                    # output frames produced in the timed run
    seconds: float = 0.0
    cpu_seconds: float = 0.0           # process CPU time (all threads) in the timed run
    rss_start: int = 0
    rss_peak: int = 0
    vram_peak: int | None = None
    precision: str = "fp32"
    outputs: dict = field(default_factory=dict)     # frame -> RGB [H, W, 3] float32
    shape: tuple | None = None                       # one output frame's shape
    info: dict = field(default_factory=dict)
    error: str | None = None

    @property
    def ms_per_frame(self) -> float | None:
        return 1000 * self.seconds / self.frames if self.frames else None

    @property
    def fps(self) -> float | None:
        return self.frames / self.seconds if self.frames and self.seconds else None


class _Keeper:
    """A sink keeping the RGB output of selected frames (for the sanity comparison)."""

    def __init__(self, keep: set[int], bgr: bool = False, chw: bool = False):
        self.keep, self.bgr, self.chw = keep, bgr, chw
        self.outputs: dict[int, np.ndarray] = {}
        self.count = 0
        self.shape = None

    def __call__(self, i, l, ab, image) -> None:
        self.count += 1
        img = image.transpose(1, 2, 0) if self.chw else image
        if self.shape is None:
            self.shape = tuple(img.shape)
        if i in self.keep:
            self.outputs[i] = np.ascontiguousarray(img[..., ::-1] if self.bgr else img, np.float32)


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _cpu_time() -> float:
    """CPU seconds used by this process so far (user + system, every thread)."""
    t = os.times()
    return t.user + t.system


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _load(weights: Path, device: torch.device, dtype: torch.dtype) -> tuple[NetworkR, NetworkC]:
    model_r, model_c = load_checkpoint(weights, device=device)
    return model_r.to(dtype), model_c.to(dtype)


def _oom(e: BaseException) -> bool:
    return isinstance(e, torch.cuda.OutOfMemoryError) or "out of memory" in str(e).lower()


# -- baseline and naive ---------------------------------------------------------------
def _timed(cfg: Config, res: MethodResult, model_r, model_c, sink, call) -> None:
    """Run `call(model_r, model_c)` under the wall and CPU clocks, peak memory and the time
    split; fill `res`."""
    split = _split_for(cfg, model_r, model_c)
    with PeakMemory(cfg.device) as mem, split:
        t0 = time.perf_counter()
        c0 = _cpu_time()
        res.info = call(model_r, model_c)
        _sync(cfg.device)
        res.seconds = time.perf_counter() - t0
        res.cpu_seconds = _cpu_time() - c0
    _record_split(res, split)
    res.frames, res.outputs, res.shape = sink.count, sink.outputs, sink.shape
    res.rss_start, res.rss_peak, res.vram_peak = mem.start, mem.peak, mem.vram


def run_baseline(cfg: Config, inputs: Inputs, small: Inputs, weights: Path, keep: set[int],
                 frames: int | None = None) -> MethodResult:
    res = MethodResult("baseline", precision="fp32")
    model_r, model_c = _load(weights, cfg.device, torch.float32)
    grey = inputs.frames if frames is None else inputs.frames[:frames]
    try:
        if cfg.warmup_mode != "none":
            w = small if cfg.warmup_mode == "small" else inputs
            baseline.run(model_r, model_c, w.frames[:baseline.BLOCK], w.canvas, device=cfg.device)
        sink = _Keeper(keep, bgr=True)
        _timed(cfg, res, model_r, model_c, sink, lambda r, c: baseline.run(
            r, c, grey, inputs.canvas, device=cfg.device, sink=sink))
    finally:
        del model_r, model_c
        _free(cfg.device)
    return res


def run_naive(cfg: Config, inputs: Inputs, small: Inputs, weights: Path, keep: set[int],
              dtype: torch.dtype, only: list[int] | None) -> MethodResult:
    res = MethodResult("naive", precision=DTYPE_NAMES[dtype])
    model_r, model_c = _load(weights, cfg.device, dtype)
    try:
        if cfg.warmup_mode != "none":
            w = small if cfg.warmup_mode == "small" else inputs
            naive.run(model_r, model_c, w.frames, w.canvas, device=cfg.device, dtype=dtype,
                      only=[len(w.frames) // 2])
        sink = _Keeper(keep, chw=True)
        _timed(cfg, res, model_r, model_c, sink, lambda r, c: naive.run(
            r, c, inputs.frames, inputs.canvas, device=cfg.device, dtype=dtype,
            sink=sink, only=only))
        res.info["output_frames_timed"] = res.frames
    finally:
        del model_r, model_c
        _free(cfg.device)
    return res


# -- ours -----------------------------------------------------------------------------
def grey_clip(frames: np.ndarray):
    """A GRAYS clip of [N, H, W] float32 frames held in memory, marked as one scene."""
    import vapoursynth as vs
    core = vs.core
    n, h, w = frames.shape
    blank = core.std.BlankClip(format=vs.GRAYS, width=w, height=h, length=n, keep=True)

    def fill(n, f):
        out = f.copy()
        np.copyto(np.asarray(out[0]), frames[n])
        out.props["_SceneChangePrev"] = 0       # one scene: no detection guesswork
        out.props["_SceneChangeNext"] = 0
        return out

    return core.std.ModifyFrame(blank, blank, fill)


def _planes_to_rgb(planes: dict[int, np.ndarray], family: str, matrix: int) -> dict[int, np.ndarray]:
    """Output frames of ours ([P, H, W] float planes) -> RGB [H, W, 3] (outside timing)."""
    if family == "RGB":
        return {i: np.ascontiguousarray(p.transpose(1, 2, 0)) for i, p in planes.items()}
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


def ours_kwargs(precision: str) -> dict:
    """The filter's precision arguments for --precision (whatever `build` offers)."""
    from ..remaster import build
    params = inspect.signature(build).parameters
    if precision == "auto":
        return {}
    if "precision" in params:
        return {"precision": precision}
    if "dtype" in params:
        return {"dtype": DTYPES[precision]}
    if precision == "bf16":
        raise ValueError("this version of Remaster has no bfloat16 switch (fp16= only)")
    return {"fp16": precision == "fp16"}


class SplitTimer:
    """Times ours' network calls by wrapping the shared models' methods (instance
    attributes, removed afterwards). On CUDA it synchronises around every call."""

    KINDS = (("restore", "restore", "forward"), ("restore", "stream", "push"),
             ("encode", "colorize", "encode_frames"), ("decode", "colorize", "decode"),
             ("refs", "colorize", "encode_refs"))

    def __init__(self, models, device: torch.device):
        self.models, self.device = models, device
        self.seconds = {k: 0.0 for k, _, _ in self.KINDS}
        self.calls = {k: 0 for k, _, _ in self.KINDS}
        self._patched = []

    def __enter__(self) -> "SplitTimer":
        for kind, attr, method in self.KINDS:
            obj = getattr(self.models, attr, None)
            original = getattr(obj, method, None)
            if obj is None or original is None:
                continue
            setattr(obj, method, self._wrap(kind, original))
            self._patched.append((obj, method))
        return self

    def _wrap(self, kind, original):
        def timed(*args, **kwargs):
            _sync(self.device)
            t0 = time.perf_counter()
            out = original(*args, **kwargs)
            _sync(self.device)
            self.seconds[kind] += time.perf_counter() - t0
            self.calls[kind] += 1
            return out
        return timed

    def __exit__(self, *exc) -> None:
        for obj, method in self._patched:
            try:
                delattr(obj, method)
            except AttributeError:
                pass


class _NoSplit:
    seconds = calls = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def _split_for(cfg: Config, model_r, model_c):
    """A SplitTimer over a method's networks (always on the CPU, with --split on CUDA)."""
    if not (cfg.split or cfg.device.type == "cpu"):
        return _NoSplit()
    from types import SimpleNamespace
    return SplitTimer(SimpleNamespace(restore=model_r, colorize=model_c), cfg.device)


def _record_split(res: MethodResult, split, before: float = 0.0) -> None:
    if split.seconds is None:
        return
    res.info["split_s"] = {k: round(v, 3) for k, v in split.seconds.items()}
    res.info["split_s"]["other"] = round(res.seconds - before - sum(split.seconds.values()), 3)
    res.info["split_calls"] = dict(split.calls)


def run_ours(cfg: Config, inputs: Inputs, small: Inputs, weights: Path,
             keep: set[int]) -> MethodResult:
    from ..remaster import build
    res = MethodResult("ours")
    w, h = inputs.frames.shape[2], inputs.frames.shape[1]
    kw = dict(weights=str(weights), device_index=device_index(cfg.device), **ours_kwargs(cfg.precision))
    warm = None
    if cfg.warmup_mode != "none":
        wi = small if cfg.warmup_mode == "small" else inputs
        warm = build(grey_clip(wi.frames), refs=wi.ref_paths or None,
                     mindim=min(wi.frames.shape[1:]), ref_mindim=wi.ref_size, **kw)
        for _ in warm.clip.frames(close=True):
            pass
    clip = grey_clip(inputs.frames)
    planes, family, matrix = {}, None, 1
    split = None
    with PeakMemory(cfg.device) as mem:
        t0 = time.perf_counter()
        c0 = _cpu_time()
        pipe = build(clip, refs=inputs.ref_paths or None, mindim=min(w, h),
                     ref_mindim=inputs.ref_size, **kw)
        want_split = cfg.split or cfg.device.type == "cpu"
        # ours restores through the engine's stream (NetworkR layer by layer)
        from types import SimpleNamespace
        nets = SimpleNamespace(stream=pipe.engine.stream, colorize=pipe.engine.models.colorize)
        split = SplitTimer(nets, cfg.device) if want_split else _NoSplit()
        with split:
            t_built = time.perf_counter()
            count = 0
            for i, f in enumerate(pipe.clip.frames(close=True)):
                count += 1
                if i in keep:
                    planes[i] = np.stack([np.asarray(f[p]) for p in range(f.format.num_planes)])
                    family = f.format.color_family.name
                    matrix = int(f.props.get("_Matrix", 1))
            _sync(cfg.device)
            res.seconds = time.perf_counter() - t0
            res.cpu_seconds = _cpu_time() - c0
    res.frames = count
    res.rss_start, res.rss_peak, res.vram_peak = mem.start, mem.peak, mem.vram
    res.precision = DTYPE_NAMES.get(pipe.engine.models.dtype, str(pipe.engine.models.dtype))
    res.info = {"runs": dict(pipe.engine.runs), "build_s": round(t_built - t0, 3),
                "scenes": len(pipe.scenes.starts)}
    for name in ("grid", "restore_grid"):
        grid = getattr(pipe.engine, name, None)
        if grid is not None and hasattr(grid, "size"):
            res.info[f"{name}_size"] = grid.size
    _record_split(res, split, t_built - t0)
    if planes:
        res.outputs = _planes_to_rgb(planes, family, matrix)
        res.shape = next(iter(res.outputs.values())).shape
    del pipe, warm, clip
    _free(cfg.device)
    return res


# -- comparison -----------------------------------------------------------------------
def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.clip(rgb, 0, 1).astype(np.float32), cv2.COLOR_RGB2Lab)


def compare(results: dict[str, MethodResult]) -> dict:
    """Mean absolute differences (CIE Lab units) between methods' final RGB outputs,
    over the frames every method kept."""
    names = [n for n in METHODS if n in results and results[n].outputs]
    common = sorted(set.intersection(*(set(results[n].outputs) for n in names))) if names else []
    out: dict = {"compared_frames": len(common)}
    if not common:
        return out
    labs = {n: np.stack([_lab(results[n].outputs[i]) for i in common]) for n in names}
    for a, b in (("ours", "naive"), ("ours", "baseline"), ("baseline", "naive")):
        if a in labs and b in labs:
            out[f"ab_mad_{a}_{b}"] = round(float(np.abs(labs[a][..., 1:] - labs[b][..., 1:]).mean()), 4)
            out[f"l_mad_{a}_{b}"] = round(float(np.abs(labs[a][..., 0] - labs[b][..., 0]).mean()), 4)
    for n in names:
        out[f"ab_mean_abs_{n}"] = round(float(np.abs(labs[n][..., 1:]).mean()), 4)
    return out


# -- the benchmark --------------------------------------------------------------------
def _keep_frames(n: int, h: int, w: int, naive_only: list[int] | None) -> set[int]:
    if naive_only is not None:
        return set(naive_only)
    count = min(n, max(4, 2**24 // (h * w)))
    return set(np.linspace(0, n - 1, count).round().astype(int).tolist())


def _naive_only(n: int, k: int | None) -> list[int] | None:
    if k is None or k >= n:
        return None
    return sorted(set(np.linspace(0, n - 1, max(1, k)).round().astype(int).tolist()))


def _resolve_dtype(cfg: Config, results: dict) -> torch.dtype:
    if "ours" in results and results["ours"].precision in DTYPES:
        return DTYPES[results["ours"].precision]
    if cfg.precision == "auto":
        return torch.float16 if cfg.device.type == "cuda" else torch.float32
    return DTYPES[cfg.precision]


def _weights(cfg: Config, folder: Path) -> tuple[Path, str]:
    """The weights file to time with (generated into `folder` unless given) and what it is."""
    if cfg.weights is None:
        weights, source = default_weights(folder)
    else:
        weights, source = Path(cfg.weights), f"file {cfg.weights}"
    log(f"weights: {source}")
    return weights, source


def bench(cfg: Config) -> dict:
    """Run the selected methods; return the JSON summary (and print the table)."""
    w, h = cfg.model_size
    with tempfile.TemporaryDirectory(prefix="vsremaster-bench-") as tmp:
        folder = Path(tmp)
        weights, source = _weights(cfg, folder)
        inputs = make_inputs(w, h, cfg.frames, cfg.refs, cfg.ref_size, folder, cfg.seed)
        small = make_inputs(*SMALL, 6, cfg.refs, 32, folder, cfg.seed, tag="small")
        only = _naive_only(cfg.frames, cfg.naive_frames) if "naive" in cfg.methods else None
        keep = _keep_frames(cfg.frames, h, w, only)
        results: dict[str, MethodResult] = {}
        for name in METHODS:
            if name not in cfg.methods:
                continue
            log(f"{name}: running ({cfg.frames} frames at {w}x{h}, {cfg.refs} refs, "
                f"warm-up {cfg.warmup_mode})")
            if name == "ours":
                results[name] = run_ours(cfg, inputs, small, weights, keep)
            elif name == "baseline":
                results[name] = run_baseline(cfg, inputs, small, weights, keep)
            else:
                results[name] = run_naive(cfg, inputs, small, weights, keep,
                                          _resolve_dtype(cfg, results), only)
            r = results[name]
            log(f"{name}: {r.frames} frames in {r.seconds:.2f} s")
    summary = summarise(cfg, results, source)
    print_table(cfg, results, summary)
    return summary


def summarise(cfg: Config, results: dict[str, MethodResult], source: str) -> dict:
    w, h = cfg.model_size

    def get(name, attr):
        r = results.get(name)
        return None if r is None else getattr(r, attr)

    def ratio(a, b):
        return round(a / b, 3) if a and b else None

    ours_fps, base_fps, naive_fps = get("ours", "fps"), get("baseline", "fps"), get("naive", "fps")
    summary = {
        "ours_fps": _r(ours_fps), "baseline_fps": _r(base_fps), "naive_fps": _r(naive_fps),
        "speedup": ratio(ours_fps, base_fps), "naive_speedup": ratio(ours_fps, naive_fps),
        "peak_rss_mb": mb(get("ours", "rss_peak")), "peak_vram_mb": mb(get("ours", "vram_peak")),
        "device": device_name(cfg.device), "width": w, "height": h, "refs": cfg.refs,
        "ref_size": cfg.ref_size, "frames": cfg.frames,
        "precision": get("ours", "precision") or _dtype_label(cfg),
    }
    for name, r in results.items():
        summary[f"{name}_ms_per_frame"] = _r(r.ms_per_frame, 2)
        summary[f"{name}_cpu_ms_per_frame"] = _r(1000 * r.cpu_seconds / r.frames, 2) if r.frames else None
        summary[f"{name}_peak_rss_mb"] = mb(r.rss_peak)
        summary[f"{name}_rss_growth_mb"] = mb(r.rss_peak - r.rss_start)
        summary[f"{name}_peak_vram_mb"] = mb(r.vram_peak)
        summary[f"{name}_precision"] = r.precision
        summary[f"{name}_output_shape"] = [r.frames, *r.shape] if r.shape else None
        summary[f"{name}_info"] = r.info
    summary["process_peak_rss_mb"] = mb(process_peak_rss())
    summary.update(compare(results))
    summary["weights"] = source
    summary["warmup"] = cfg.warmup_mode
    if cfg.width != w or cfg.height != h:
        summary["requested_size"] = [cfg.width, cfg.height]
    return summary


def _r(x, nd=3):
    return None if x is None else round(x, nd)


def _dtype_label(cfg: Config) -> str:
    return DTYPE_NAMES[_resolve_dtype(cfg, {})]


def _fmt(x, spec: str) -> str:
    if x is None:
        width = spec.split(".")[0]
        return "-".rjust(int(width) if width.isdigit() else 0)
    return format(x, spec)


def print_table(cfg: Config, results: dict[str, MethodResult], summary: dict) -> None:
    w, h = cfg.model_size
    print(f"DeepRemaster benchmark: {cfg.frames} frames of {w}x{h}, {cfg.refs} references "
          f"of {cfg.ref_size} px, {summary['device']}")
    print(f"weights: {summary['weights']}; warm-up: {cfg.warmup_mode} (untimed)")
    print(f"{'method':<9} {'prec':<5} {'frames':>6} {'ms/frame':>10} {'fps':>8} "
          f"{'CPU ms/frame':>13} {'peak RSS MB':>12} {'RSS +MB':>9} {'peak VRAM MB':>13}")
    for name in METHODS:
        r = results.get(name)
        if r is None:
            continue
        print(f"{name:<9} {r.precision:<5} {r.frames:>6} {_fmt(r.ms_per_frame, '10.1f')} "
              f"{_fmt(r.fps, '8.3f')} {_fmt(1000 * r.cpu_seconds / r.frames if r.frames else None, '13.1f')} "
              f"{_fmt(mb(r.rss_peak), '12.1f')} "
              f"{_fmt(mb(r.rss_peak - r.rss_start), '9.1f')} {_fmt(mb(r.vram_peak), '13.1f')}")
    print(f"speedup ours/baseline: {_fmt(summary['speedup'], '.3f')}   "
          f"ours/naive: {_fmt(summary['naive_speedup'], '.3f')}   "
          f"process peak RSS: {_fmt(summary['process_peak_rss_mb'], '.1f')} MB")
    if "ours" in results:
        info = results["ours"].info
        print(f"ours: engine.runs {info.get('runs')}, build (scene scan) {info.get('build_s')} s")
    for name in METHODS:
        if name in results and "split_s" in results[name].info:
            info = results[name].info
            print(f"{name}: time split s {info['split_s']}, calls {info['split_calls']}")
    if "naive" in results and results["naive"].frames < cfg.frames:
        print(f"naive: timed {results['naive'].frames} of {cfg.frames} output frames "
              "(every output frame costs the same window)")
    diffs = {k: v for k, v in summary.items() if k.startswith(("ab_", "l_mad", "compared"))}
    if diffs:
        print("sanity (mean abs difference of final outputs, CIE Lab units): "
              + ", ".join(f"{k}={v}" for k, v in diffs.items()))


# -- the resolution sweep -------------------------------------------------------------
def baseline_attention(width: int, height: int, refs: int, ref_h: int, ref_w: int,
                       block: int = baseline.BLOCK) -> dict:
    """The baseline's L x S attention matrices for one block, analytically (float32).

    stattn1 at 1/8 (frames x refs), stattn2 at 1/16 (frames x refs), selfattn1 at 1/16
    and selfattn2 at 1/8 (frames x frames). The authors' matmul-softmax keeps the logits
    and the softmax output alive together: about twice the largest matrix at the peak.
    """
    l8 = block * (height // 8) * (width // 8)
    l16 = block * (height // 16) * (width // 16)
    s8 = refs * (ref_h // 8) * (ref_w // 8)
    s16 = refs * (ref_h // 16) * (ref_w // 16)
    sizes = {"stattn1": l8 * s8, "stattn2": l16 * s16, "selfattn1": l16 * l16, "selfattn2": l8 * l8}
    largest = max(sizes.values()) * 4
    return {"elements": sizes, "largest_matrix_bytes": largest, "peak_bytes": 2 * largest}


def sweep(cfg: Config, frames: int, sizes=SWEEP_SIZES) -> dict:
    """Peak memory of ours against the baseline's attention memory, 360p to 1080p."""
    rows = []
    cuda = cfg.device.type == "cuda"
    plan = list(sizes)
    if not cuda:   # on a CPU: the configured size measured, the video sizes analytic
        plan = [("bench", cfg.width, cfg.height)] + plan
    with tempfile.TemporaryDirectory(prefix="vsremaster-sweep-") as tmp:
        folder = Path(tmp)
        weights, source = _weights(cfg, folder)
        small = make_inputs(*SMALL, 6, cfg.refs, 32, folder, cfg.seed, tag="small")
        for label, width, height in plan:
            w, h = model_size(width, height)
            rh, rw = ref_shape(w, h, cfg.ref_size)
            att = baseline_attention(w, h, cfg.refs, rh, rw)
            row = {"name": label, "width": w, "height": h, "ref_h": rh, "ref_w": rw,
                   "baseline_attn_matrix_gb": round(att["largest_matrix_bytes"] / 2**30, 3),
                   "baseline_attn_peak_gb": round(att["peak_bytes"] / 2**30, 3),
                   "measured": cuda or label == "bench"}
            for gpu, capacity in GPUS:
                row[f"baseline_attn_fits_{gpu}"] = att["peak_bytes"] < capacity
            if row["measured"]:
                log(f"sweep {label}: {w}x{h}, {frames} frames")
                sub = Config(**{**cfg.__dict__, "width": w, "height": h, "frames": frames})
                inputs = make_inputs(w, h, frames, cfg.refs, cfg.ref_size, folder, cfg.seed,
                                     tag=label)
                _measure_row(sub, row, inputs, small, weights, att)
                del inputs
                _free(cfg.device)
            rows.append(row)
            log(f"sweep {label}: {row}")
    summary = {"mode": "sweep", "device": device_name(cfg.device), "refs": cfg.refs,
               "ref_size": cfg.ref_size, "frames": frames, "weights": source, "rows": rows}
    print_sweep(summary)
    return summary


def _measure_row(cfg: Config, row: dict, inputs: Inputs, small: Inputs, weights: Path,
                 att: dict) -> None:
    key = "vram" if cfg.device.type == "cuda" else "rss"
    try:
        r = run_ours(cfg, inputs, small, weights, keep=set())
        row["ours_fps"] = _r(r.fps)
        row[f"ours_peak_{key}_mb"] = mb(r.vram_peak if key == "vram" else r.rss_peak)
        row["ours_precision"] = r.precision
    except Exception as e:   # noqa: BLE001 - a row that fails is reported, not fatal
        row["ours_error"] = "out of memory" if _oom(e) else f"{type(e).__name__}: {e}"
        _free(cfg.device)
    if cfg.device.type == "cuda":
        free = torch.cuda.mem_get_info(cfg.device)[0]
        if att["peak_bytes"] > free:
            row["baseline"] = (f"does not fit: attention alone needs {att['peak_bytes'] / 2**30:.1f} "
                               f"GB, {free / 2**30:.1f} GB free")
            return
    one_block = Config(**{**cfg.__dict__, "warmup": "none"})
    try:
        r = run_baseline(one_block, inputs, small, weights, keep=set(), frames=baseline.BLOCK)
        row[f"baseline_peak_{key}_mb"] = mb(r.vram_peak if key == "vram" else r.rss_peak)
        row["baseline"] = "fits (one 5-frame block measured)"
    except Exception as e:   # noqa: BLE001
        if not _oom(e):
            raise
        row["baseline"] = "out of memory (one 5-frame block)"
        _free(cfg.device)


def print_sweep(summary: dict) -> None:
    print(f"Resolution sweep: {summary['refs']} references of {summary['ref_size']} px, "
          f"{summary['device']}; ours over {summary['frames']} frames, the baseline's "
          "attention for one 5-frame block")
    mem = "VRAM" if summary["device"].startswith("cuda") else "RSS"
    print(f"{'size':<7} {'model':>10} {'ours fps':>9} {'ours peak ' + mem + ' MB':>18} "
          f"{'base L*S GB':>12} {'base attn peak GB':>18} {'base measured MB':>17}  "
          f"fits 11GB/80GB  baseline")
    for row in summary["rows"]:
        key = "vram" if mem == "VRAM" else "rss"
        ours = row.get(f"ours_peak_{key}_mb")
        fits = "/".join("yes" if row[f"baseline_attn_fits_{g}"] else "no" for g, _ in GPUS)
        note = row.get("baseline") or ("analytic only" if not row["measured"] else "")
        if row.get("ours_error"):
            note += f"; ours: {row['ours_error']}"
        print(f"{row['name']:<7} {str(row['width']) + 'x' + str(row['height']):>10} "
              f"{_fmt(row.get('ours_fps'), '9.3f')} {_fmt(ours, '18.1f')} "
              f"{row['baseline_attn_matrix_gb']:>12.2f} {row['baseline_attn_peak_gb']:>18.2f} "
              f"{_fmt(row.get(f'baseline_peak_{key}_mb'), '17.1f')}  {fits:>14}  {note}")


def main(cfg: Config, do_sweep: bool = False, sweep_frames: int | None = None) -> int:
    if do_sweep:
        frames = sweep_frames or (64 if cfg.device.type == "cuda" else 10)
        summary = sweep(cfg, frames)
    else:
        summary = bench(cfg)
    print(json.dumps(summary, default=str), flush=True)
    return 0
