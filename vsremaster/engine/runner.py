"""Runs scene streams over the chunk grid and keeps what they finish.

A request for frame n asks for its *cell* (a chunk of the fixed grid). The engine pushes
the cell's source frames (`lag` frames ahead of it) through the scene stream, resuming
from the state kept after the cell before (a linear render), or starting cold `lag`
frames before the cell (a seek). Streams give the same bits either way
(model.streaming), so a frame's bytes never depend on request order, threads or seeks,
and a seek costs one cell plus the warm-up.

Kept: finished cells as model-size results (`CellResult`), stream states after each
cell, encoded reference sets; every cache is bounded in entries and in bytes.
"""
from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

import numpy as np
import torch

from ..color import rgb_to_model
from ..limits import is_out_of_memory
from ..model import RefEncoding
from ..planning.windows import Cell, Grid
from ..lru import LRU
from .host import release_openmp_threads, trim_host_heap
from .models import Models
from .streams import Finished, SceneState, SceneStream


class OutOfMemory(MemoryError):
    """Memory ran out even for a single frame."""


@dataclass(frozen=True)
class CellResult:
    """A finished cell: model-size results on the device, and the references it used."""

    cell: Cell
    finished: Finished
    refs: tuple[int, ...]
    ready: object = None        # a CUDA event: the tensors are complete once it has passed
    note: str | None = None     # why the cell was kept grey (references.fallback)

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.finished.tensors if t is not None)


class _Slot:
    """Where the requests planned for one cell meet its result: each request holds its
    cell's slot, so the cell is computed once however many others the caches saw since."""

    def __init__(self):
        self.result: CellResult | None = None
        self.busy = 0                       # requests inside `Engine.result` for the cell
        self.idle = threading.Event()       # set whenever busy drops to 0
        self.idle.set()


@dataclass
class Request:
    """What computing frame n's cell needs: a kept state it resumes from, raw frames."""

    cell: Cell
    slot: _Slot
    result: CellResult | None = None
    state: SceneState | None = None
    raw: range = range(0)
    refs: tuple = ((), None)            # the scene's reference ids and canvas


class Engine:
    """The networks, the grid and the caches of one filter instance."""

    def __init__(self, models: Models, grid: Grid, references, settings, *,
                 size: tuple[int, int], rgb_input: bool, step: int = 8, threads: int = 1,
                 cache_bytes: int = 512 << 20, state_bytes: int = 1 << 30,
                 grey_note: str | None = None, confidence: bool = False,
                 colour_size: tuple[int, int] | None = None):
        """references: (scene start, scene stop) -> (bank indices, canvas or None);
        settings: the filter's `Settings` (restore, colorize, context, window); size:
        the model size (h, w); step: most frames per push through the networks (memory);
        cache_bytes / state_bytes: bounds of the finished-cell and stream-state caches;
        grey_note: when given, scenes without references are kept grey (neutral ab, no
        colorization) and their frames say `grey_note`; confidence: finish each frame's
        match confidence too (`enable_confidence` turns it on later); colour_size: the
        colorization's size (h, w), at most `size` (None: `size`); results stay at `size`."""
        restore, colorize = settings.restore, settings.colorize
        self.size, self.colour_size = size, tuple(colour_size or size)
        self.models, self.grid, self.references = models, grid, references
        self.colorize, self.rgb_input = colorize, rgb_input
        # fixed frames per call (a fixed shape keeps the bits; 4 on a CPU beat one frame
        # per call, RESULTS.md "The streaming engine"); zero frames pad the last call
        batch = 4 if models.device.type == "cpu" else 8
        self.stream = SceneStream(models, restore=restore, colorize=colorize,
                                  context=settings.context, batch=batch, window=settings.window,
                                  chunk_of=lambda t: (grid.cell_of(t).start, grid.cell_of(t).stop),
                                  confidence=confidence, sizes=(size, self.colour_size))
        # a scene kept grey goes through restoration only (its confidence is 0)
        self.grey_note = grey_note if colorize else None
        self.grey_stream = SceneStream(models, restore=restore, colorize=False, batch=batch) \
            if self.grey_note else None
        self.step = max(1, step)
        self._torch_threads = torch.get_num_threads()
        # VapourSynth's threads keep about this many cells in flight at once; one push
        # finishes up to lag frames' worth of cells more (a scene's end, a cold start)
        ahead = -(-threads // grid.size) + 1
        per_push = -(-(self.stream.lag + grid.size) // grid.size)
        self.results = LRU(1 + ahead + per_push, cache_bytes, lambda r: r.nbytes)
        self.states = LRU(1 + ahead, state_bytes, lambda s: s.nbytes)
        self.encoded = LRU(4)
        self._slots: "weakref.WeakValueDictionary[int, _Slot]" = weakref.WeakValueDictionary()
        self._slots_lock = threading.Lock()
        #: pushes and cold starts so far (benchmarks and tests read them)
        self.runs = {"push": 0, "cold": 0, "frames": 0, "refs": 0}

    @property
    def lag(self) -> int:
        return self.stream.lag

    @property
    def confidence(self) -> bool:
        return self.stream.confidence

    def enable_confidence(self) -> None:
        """Finish every frame's match confidence from now on (a second output of the same
        filter asks for it when the script is evaluated). Cells and states kept so far
        lack it and are dropped."""
        if not self.colorize or self.stream.confidence:
            return
        with self.models.lock, self._slots_lock:
            self.stream.confidence = True
            self.results.clear()
            self.states.clear()
            for slot in self._slots.values():
                slot.result = None

    def _stream_for(self, refs: tuple) -> SceneStream:
        """The stream of a scene with references `refs` (grey scenes: restoration only)."""
        return self.grey_stream if self.grey_note and not refs[0] else self.stream

    # -- planning (cheap; no model lock) ------------------------------------------
    def request(self, n: int) -> Request:
        """Plan frame n: its cell's result if at hand, else the raw frames to compute it.

        Takes no model lock: frames of finished cells are served while others compute.
        What the request pins (slot, state) stays alive with it whatever the caches drop.
        """
        cell = self.grid.cell_of(n)
        with self._slots_lock:
            slot = self._slots.get(cell.start)
            if slot is None:
                slot = self._slots[cell.start] = _Slot()
        done = slot.result or self.results.get(cell.start)
        if done is not None:
            return Request(cell, slot, done)
        # chosen here, outside the model lock: a synchronised refs clip is read now
        refs = self.references(cell.scene_start, cell.scene_stop) if self.colorize else ((), None)
        lag = self._stream_for(refs).lag
        state = self.states.get(cell.start)
        piece = self._piece(cell, lag)
        start = piece.start if state is not None else self._cold_start(cell, lag)
        return Request(cell, slot, None, state, range(start, piece.stop), refs)

    @staticmethod
    def _piece(cell: Cell, lag: int) -> range:
        """The source frames pushed to finish `cell` after the cell before it."""
        stop = cell.scene_stop
        return range(min(cell.start + lag, stop), min(cell.stop + lag, stop))

    @staticmethod
    def _cold_start(cell: Cell, lag: int) -> int:
        return max(cell.scene_start, cell.start - lag)

    # -- computing (with the raw frames the request listed) --------------------------
    def result(self, req: Request, raw: dict[int, np.ndarray]) -> CellResult:
        """The finished cell of a request, computing it if needed.

        raw: model-size frames by number ([h, w] luma or [3, h, w] RGB), as listed.
        """
        if req.result is not None:
            return req.result
        slot = req.slot
        with self._slots_lock:
            slot.busy += 1
            slot.idle.clear()
        try:
            self._wait_for_cell_before(req)
            with self.models.lock, torch.inference_mode():
                # OpenMP keeps a thread count per thread: a VapourSynth thread made while
                # torch had another count would sum convolutions in another order
                if torch.get_num_threads() != self._torch_threads:
                    torch.set_num_threads(self._torch_threads)
                done = slot.result or self.results.get(req.cell.start)
                if done is None:
                    done = self._compute(req, raw)
                    if self.models.device.type == "cpu":
                        trim_host_heap()
                        release_openmp_threads()
                slot.result = done
                return done
        finally:
            with self._slots_lock:
                slot.busy -= 1
                if not slot.busy:
                    slot.idle.set()

    def _wait_for_cell_before(self, req: Request) -> None:
        """With no state to resume from, wait while the cell before is being computed: its
        state then lets this cell resume instead of starting cold (same bits, less work).
        Only requests already inside `result` are waited for; they need nothing but the
        model lock, so no VapourSynth thread waits on another."""
        cell = req.cell
        if req.state is not None or cell.start == cell.scene_start or \
                self.states.get(cell.start) is not None:
            return
        with self._slots_lock:
            before = self._slots.get(self.grid.cell_of(cell.start - 1).start)
        if before is not None and before.result is None:
            before.idle.wait()

    def _compute(self, req: Request, raw: dict[int, np.ndarray]) -> CellResult:
        cell = req.cell
        stream = self._stream_for(req.refs)
        state = req.state or self.states.get(cell.start)
        piece = self._piece(cell, stream.lag)
        if state is None:
            start = self._cold_start(cell, stream.lag)
            state = stream.begin(start, start == cell.scene_start)
            piece = range(start, piece.stop)
            self.runs["cold"] += 1
        key, refs = self._ref_encoding(*req.refs) if stream is self.stream else ((), None)
        l = self._to_l([raw[i] for i in piece]) if len(piece) else None
        state, fin = self._push(stream, state, l, refs, piece.stop == cell.scene_stop)
        note = None
        if stream is not self.stream:
            fin = fin.neutral(self.size, self.models.device, self.stream.confidence)
            note = self.grey_note
        self.runs["push"] += 1
        self.runs["frames"] += len(piece)
        if not state.finished:
            self.states.put(cell.stop, state)
        ready = None
        if self.models.device.type == "cuda":
            ready = torch.cuda.Event()
            ready.record()
        got = None
        # every whole cell the push finished (a cold start from the scene's first frame
        # or the scene's last push finishes several; their bits are the same either way)
        at = fin.start
        while at < fin.start + fin.length:
            c = self.grid.cell_of(at)
            if c.start >= at and c.stop <= fin.start + fin.length:
                result = CellResult(c, fin.part(c.start, c.stop).own(), key, ready, note)
                self.results.put(c.start, result)
                got = result if c.start == cell.start else got
            at = c.stop
        if got is None:
            raise RuntimeError(f"frames {cell.start}-{cell.stop - 1} were not finished")
        return got

    def _push(self, stream: SceneStream, state: SceneState, l, refs, last: bool):
        """Push; out of memory, again from the same state in steps half as long (the
        bits are the same), down to one frame; then OutOfMemory."""
        while True:
            try:
                return stream.push(state, l, refs, last, self.step)
            except Exception as e:         # noqa: BLE001 - only allocation failures retry
                if not is_out_of_memory(e):
                    raise
                if self.models.device.type == "cuda":
                    torch.cuda.empty_cache()
                if self.step == 1:
                    raise OutOfMemory(f"out of {self.models.device} memory for a single "
                                      "frame; lower mindim, ref_mindim or max_refs, or use "
                                      "another device") from None
                self.step = max(1, self.step // 2)

    def _to_l(self, frames: list[np.ndarray]) -> torch.Tensor:
        """Raw model-size frames ([h, w] luma or [3, h, w] RGB) -> model L [T, 1, h, w]."""
        x = torch.from_numpy(np.stack(frames)).to(self.models.device, non_blocking=True)
        x = torch.nan_to_num(x.float(), nan=0.0, posinf=1.0, neginf=0.0)
        if self.rgb_input:
            return rgb_to_model(x)[0]
        return x.unsqueeze(1).clamp(0, 1)

    def _ref_encoding(self, key: tuple, canvas) -> tuple[tuple[int, ...], RefEncoding | None]:
        if not key:
            return (), None
        enc = self.encoded.get(key)
        if enc is None:
            m = self.models
            refs = torch.from_numpy(canvas).to(m.device, m.dtype)
            enc = m.colorize.encode_refs(refs.unsqueeze(0))
            self.runs["refs"] += 1
            self.encoded.put(key, enc)
        return key, enc
