"""Runs the networks over the chunk grid: each piece of work once, in fixed shapes.

Three kinds of work, each cached per grid cell (bounded LRU):
- restoration of an R-cell: NetworkR streamed over the scene a cell at a time
  (`model.streaming`), identical to one pass over the whole scene. Streams start at the
  first cell of each *run* (RUN_FRAMES frames of cells) from RESTORE_RADIUS frames before
  it; the state after each cell is kept, so the next cell costs only its own frames;
- per-frame encoder features of a cell (spatial encoders and source-reference
  attention), shared by the cell and the chunks of both neighbours;
- decoding of a cell: the cell with CONTEXT frames each side (edge-replicated at scene
  bounds) through self attention and the 3x3x3 decoder; the cell's frames are kept.
Reference sets are encoded once per set. The same cell is always computed from the
same inputs in the same shapes, so a frame's bytes never depend on request order.
"""
from __future__ import annotations

import dataclasses
import threading
import weakref
from dataclasses import dataclass, field

import numpy as np
import torch

from ..color import rgb_to_model
from ..color.compose import compose
from ..model import FrameFeatures, RESTORE_RADIUS, RefEncoding
from ..model.streaming import RestorationStream, StreamState
from ..planning.windows import Cell, Grid
from ..references.fallback import NEUTRAL_AB
from .cache import LRU
from .models import Models

#: Frames of context each side of a decoded chunk (the model's 15-frame window).
CONTEXT = 7
#: Frames of R-cells per restoration run: a run's first cell costs about 6 frames of
#: extra work (its stream starts RESTORE_RADIUS frames early); a seek into a run
#: restores the run from its start (or the latest kept state) up to the frame.
RUN_FRAMES = 64


class OutOfMemory(MemoryError):
    """Device memory ran out even for a single frame."""


def _free_device_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


@dataclass
class Decoded:
    """The finished frames of one cell: float32 [T, C, H, W] at full size, on the host."""

    cell: Cell
    frames: np.ndarray
    refs: tuple[int, ...]


class _Slot:
    """Where the requests planned for one cell meet its result. Every request holds its
    cell's slot, so the cell is computed once while any of them is waiting, however many
    other cells the bounded cache has seen meanwhile (many threads, long prefetch)."""

    decoded: Decoded | None = None


@dataclass
class Request:
    """What computing frame n's cell needs: cached pieces it holds on to, and raw frames."""

    cell: Cell
    slot: _Slot = field(default_factory=_Slot)
    decoded: Decoded | None = None
    restored: dict = field(default_factory=dict)
    #: per R-cell to compute: the cell of the stream state it resumes from, and the state
    resume: dict = field(default_factory=dict)
    features: dict = field(default_factory=dict)
    raw: list[int] = field(default_factory=list)

    @property
    def full(self) -> list[int]:
        """Full-size frames needed: the cell's, unless its results are at hand."""
        return [] if self.decoded is not None else list(self.cell.frames)


class Engine:
    """The networks plus the grid, reference sets and caches of one filter instance."""

    def __init__(self, models: Models, grid: Grid, restore_grid: Grid,
                 ref_sets: list[tuple[int, ...]], ref_canvases: dict, *,
                 restore: bool, colorize: bool, rgb_input: bool, cache_cells: int = 4,
                 threads: int = 1, grey_scenes: frozenset[int] = frozenset()):
        self.models = models
        self.grid, self.restore_grid = grid, restore_grid
        self.ref_sets, self.ref_canvases = ref_sets, ref_canvases
        self.restore, self.colorize, self.rgb_input = restore, colorize, rgb_input
        #: scenes composed with neutral ab instead of colorized (references.fallback)
        self.grey_scenes = grey_scenes
        # VapourSynth's threads keep about this many cells in flight at once
        ahead = -(-threads // grid.size)
        # a scene's last push finishes every cell within RESTORE_RADIUS of its end at once
        self.restored = LRU(cache_cells + -(-RESTORE_RADIUS // restore_grid.size) + 1)
        self.states = LRU(2)
        self.stream = RestorationStream(models.restore, restore_grid.size) if restore else None
        # a chunk reads the features of the cells its context reaches
        self.features = LRU(max(cache_cells + 2, 2 + 2 * -(-CONTEXT // grid.size) + ahead))
        # finished frames are full size: keep few (a linear render needs the current one)
        self.decoded = LRU(2 + ahead)
        self._slots: "weakref.WeakValueDictionary[int, _Slot]" = weakref.WeakValueDictionary()
        self._slots_lock = threading.Lock()
        self.encoded = LRU(4)
        #: how many times each kind of work ran (benchmarks and tests read it)
        self.runs = {"restore": 0, "encode": 0, "decode": 0, "refs": 0}

    # -- planning (cheap, called when a frame is requested) -------------------------
    def _feature_cells(self, cell: Cell) -> list[Cell]:
        colour = self.colorize and cell.scene not in self.grey_scenes
        return self.grid.cells_covering(cell.context(CONTEXT)) if colour else []

    def request(self, n: int) -> Request:
        """Plan frame n: pin what is cached, list the raw frames still needed.

        Takes no model lock: a frame whose chunk is finished is served while other
        chunks compute. What it pins stays alive with the request, whatever the caches drop.
        """
        cell = self.grid.cell_of(n)
        with self._slots_lock:
            slot = self._slots.get(cell.start)
            if slot is None:
                slot = self._slots[cell.start] = _Slot()
        req = Request(cell, slot, decoded=slot.decoded or self.decoded.get(cell.start))
        if req.decoded is not None:
            return req
        need: set[int] = set(cell.frames)
        for fc in self._feature_cells(cell):
            feats = self.features.get(fc.start)
            if feats is None:
                need.update(fc.frames)
            else:
                req.features[fc.start] = feats
        raw: set[int] = set()
        for rc in self.restore_grid.cells_covering(need):
            got = self.restored.get(rc.start)
            if got is not None:
                req.restored[rc.start] = got
            elif not self.restore:
                raw.update(rc.frames)
            else:
                at, state = self._latest_state(rc, req)
                req.resume[rc.start] = (at, state)
                raw.update(self._stream_inputs(rc, at if state is not None else None))
        req.raw = sorted(raw)
        return req

    # -- restoration runs ---------------------------------------------------------------
    def _run_first(self, rc: Cell) -> Cell:
        """The first cell of rc's run. A run that would start within RESTORE_RADIUS of
        the scene's end joins the run before it, whose last push finishes those frames:
        every cell then comes from one stream, whatever the order of requests."""
        size = self.restore_grid.size
        per_run = max(1, RUN_FRAMES // size)
        index = rc.index - rc.index % per_run
        while index and rc.scene_start + index * size + RESTORE_RADIUS >= rc.scene_stop:
            index -= per_run
        return self.restore_grid.cell_of(rc.scene_start + index * size)

    def _latest_state(self, rc: Cell, req: Request) -> tuple[Cell, StreamState | None]:
        """The latest stream state of rc's run at or before rc: kept, or pinned by the
        request when it was planned; else (the run's first cell, None)."""
        first = self._run_first(rc)
        pinned_at, pinned = req.resume.get(rc.start, (None, None))
        cell = rc
        while True:
            state = self.states.get(cell.start)
            if state is None and cell == pinned_at:
                state = pinned
            if state is not None or cell.start == first.start:
                return cell, state
            cell = self.restore_grid.cell_of(cell.start - 1)

    def _warm_up(self, first: Cell) -> tuple[int, list[range]]:
        """Where the stream of a run starts, and its input pieces before the first cell's."""
        start = max(first.scene_start, first.start - RESTORE_RADIUS)
        stop = min(first.start + RESTORE_RADIUS, first.scene_stop)
        size = self.restore_grid.size
        return start, [range(i, min(i + size, stop)) for i in range(start, stop, size)]

    @staticmethod
    def _piece(cell: Cell) -> range:
        """The input frames pushed to finish `cell` (RESTORE_RADIUS frames ahead of it)."""
        return range(cell.start + RESTORE_RADIUS, min(cell.stop + RESTORE_RADIUS, cell.scene_stop))

    def _stream_inputs(self, rc: Cell, resume_at: Cell | None) -> range:
        """Raw frames a stream needs to finish rc: from a state at `resume_at`, or cold."""
        lo = self._warm_up(self._run_first(rc))[0] if resume_at is None else \
            self._piece(resume_at).start
        return range(lo, min(rc.stop + RESTORE_RADIUS, rc.scene_stop))

    # -- computing (called with the raw frames the request listed) --------------------
    def result(self, req: Request, raw: dict[int, np.ndarray],
               full: list[np.ndarray]) -> Decoded:
        """The finished cell of a request, computing whatever is missing.

        raw: model-size frames by number, as listed in `req.raw`; full: the cell's
        full-size frames ([H, W] luma or [3, H, W] RGB), as listed in `req.full`.
        """
        if req.decoded is not None:
            return req.decoded
        with self.models.lock, torch.inference_mode():
            done = req.slot.decoded or self.decoded.get(req.cell.start)
            if done is None:
                done = self._decode(req, raw, full)
                self.decoded.put(req.cell.start, done)
            req.slot.decoded = done
            return done

    def _to_l(self, frames: list[np.ndarray]) -> torch.Tensor:
        """Raw small frames ([h, w] luma or [3, h, w] RGB) -> model L [T, 1, h, w]."""
        m = self.models
        x = torch.from_numpy(np.stack(frames)).to(m.device, non_blocking=True)
        if self.rgb_input:
            return rgb_to_model(x.float())[0]
        return x.float().unsqueeze(1).clamp(0, 1)

    def _restored_cell(self, rc: Cell, req: Request, raw) -> tuple[torch.Tensor, torch.Tensor]:
        """(input L, restored L) [T, 1, h, w] of R-cell rc, streaming its run as needed."""
        got = req.restored.get(rc.start) or self.restored.get(rc.start)
        if got is not None:
            return got
        if not self.restore:
            l_in = self._to_l([raw[i] for i in rc.frames])
            self.restored.put(rc.start, (l_in, l_in))
            return l_in, l_in
        cell, state = self._latest_state(rc, req)
        pieces: list[range] = []
        if state is None:
            start, pieces = self._warm_up(cell)
            state = self.stream.begin(start, start == cell.scene_start)
        # finished frames not yet handed to a cell: from time t0 on
        t0, emit, ins, outs = state.next_out, cell, [], []
        while True:
            for piece in pieces + [self._piece(cell)]:
                if not state.finished:
                    state, done = self._push(state, self._to_l([raw[i] for i in piece]),
                                             piece.stop == cell.scene_stop)
                    if done is not None:
                        ins.append(done[0])
                        outs.append(done[1])
            pieces = []
            while emit is not None and emit.stop <= state.next_out:
                l_in, l_out = torch.cat(ins), torch.cat(outs)
                part = slice(emit.start - t0, emit.stop - t0)
                pair = (l_in[part].clone(), l_out[part].clone())
                self.restored.put(emit.start, pair)
                self.runs["restore"] += 1
                got = pair if emit.start == rc.start else got
                ins, outs, t0 = [l_in[part.stop:]], [l_out[part.stop:]], emit.stop
                emit = self.restore_grid.cell_of(emit.stop) if emit.stop < emit.scene_stop else None
            if state.finished or cell.stop == cell.scene_stop:
                return got
            cell = self.restore_grid.cell_of(cell.stop)
            if self._run_first(cell) != cell:     # keep the state for the run's next cell
                self.states.put(cell.start, state)
            if got is not None:
                return got

    def _push(self, state: StreamState, l: torch.Tensor, last: bool):
        """Push model L [T, 1, h, w]; out of memory, push it in halves (the same values).

        Returns the new state and, if frames were finished, (inputs, outputs) [n, 1, h, w].
        """
        m = self.models
        try:
            x = l.to(m.dtype).permute(1, 0, 2, 3).unsqueeze(0)
            state, done = self.stream.push(state, x, last)
            if done is None:
                return state, None
            return state, tuple(t[0].permute(1, 0, 2, 3).float() for t in done)
        except torch.OutOfMemoryError:
            mid = self._split_or_give_up(range(len(l)))
        state, a = self._push(state, l[:mid], False)
        state, b = self._push(state, l[mid:], last)
        parts = [p for p in (a, b) if p is not None]
        if len(parts) < 2:
            return state, parts[0] if parts else None
        return state, (torch.cat([a[0], b[0]]), torch.cat([a[1], b[1]]))

    def _split_or_give_up(self, frames: range) -> int:
        _free_device_memory(self.models.device)
        if len(frames) <= 1:
            raise OutOfMemory(f"out of {self.models.device} memory for a single frame; "
                              "lower mindim, ref_mindim or max_refs, or use another device")
        return (frames.start + frames.stop) // 2

    def _restored_frames(self, frames: range, req: Request, raw) -> tuple[torch.Tensor, torch.Tensor]:
        parts = []
        for rc in self.restore_grid.cells_covering(frames):
            l_in, l_out = self._restored_cell(rc, req, raw)
            lo, hi = max(frames.start, rc.start) - rc.start, min(frames.stop, rc.stop) - rc.start
            parts.append((l_in[lo:hi], l_out[lo:hi]))
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def _ref_encoding(self, scene: int) -> RefEncoding | None:
        key = self.ref_sets[scene]
        if not key:
            return None
        enc = self.encoded.get(key)
        if enc is None:
            m = self.models
            refs = torch.from_numpy(self.ref_canvases[key]).to(m.device, m.dtype)
            enc = m.colorize.encode_refs(refs.unsqueeze(0))
            self.runs["refs"] += 1
            self.encoded.put(key, enc)
        return enc

    def _features(self, fc: Cell, req: Request, raw) -> FrameFeatures:
        feats = req.features.get(fc.start) or self.features.get(fc.start)
        if feats is None:
            m = self.models
            _, l_out = self._restored_frames(fc.frames, req, raw)
            x = l_out.to(m.dtype).permute(1, 0, 2, 3).unsqueeze(0)
            feats = self._encode(x, self._ref_encoding(fc.scene))
            self.runs["encode"] += 1
            self.features.put(fc.start, feats)
        return feats

    def _encode(self, x: torch.Tensor, refs: RefEncoding | None) -> FrameFeatures:
        """Per-frame encoders over x [1, 1, T, h, w]; halves T when out of memory (exact)."""
        try:
            return self.models.colorize.encode_frames(x, refs)
        except torch.OutOfMemoryError:
            mid = self._split_or_give_up(range(x.shape[2]))
        a, b = self._encode(x[:, :, :mid], refs), self._encode(x[:, :, mid:], refs)
        return FrameFeatures(torch.cat([a.skip, b.skip], 2), torch.cat([a.deep, b.deep], 2))

    def _decode_core(self, cell: Cell, feats: dict) -> torch.Tensor:
        """ab [T, 2, h, w] of `cell`'s frames from CONTEXT frames each side.

        Out of memory, the cell is halved, each half with its own context (the self
        attention then spans fewer frames: close to, not equal to, the unsplit result).
        """
        context = cell.context(CONTEXT)
        starts = [self.grid.cell_of(i).start for i in context]
        skip = torch.cat([feats[s].skip[:, :, i - s:i - s + 1] for s, i in zip(starts, context)], 2)
        deep = torch.cat([feats[s].deep[:, :, i - s:i - s + 1] for s, i in zip(starts, context)], 2)
        same_as = [context.index(i) for i in context]       # edge replication
        try:
            out = self.models.colorize.decode(FrameFeatures(skip, deep), same_as)
            return out[0, :, CONTEXT:CONTEXT + len(cell.frames)].permute(1, 0, 2, 3).float()
        except torch.OutOfMemoryError:
            mid = self._split_or_give_up(cell.frames)
        del skip, deep
        return torch.cat([self._decode_core(dataclasses.replace(cell, stop=mid), feats),
                          self._decode_core(dataclasses.replace(cell, start=mid), feats)])

    def _decode(self, req: Request, raw, full) -> Decoded:
        cell = req.cell
        l_in, l_out = self._restored_frames(cell.frames, req, raw)
        ab = None
        if self.colorize and cell.scene in self.grey_scenes:
            ab = torch.full((len(cell.frames), 2, *l_out.shape[-2:]), NEUTRAL_AB,
                            device=l_out.device)
        elif self.colorize:
            feats = {fc.start: self._features(fc, req, raw) for fc in self._feature_cells(cell)}
            ab = self._decode_core(cell, feats)
            self.runs["decode"] += 1
        frames = self._compose(np.stack(full), l_in, l_out, ab)
        return Decoded(cell, frames, self.ref_sets[cell.scene] if self.colorize else ())

    def _compose(self, full: np.ndarray, l_in, l_out, ab) -> np.ndarray:
        """All of a cell's frames at full size in one batch on the device."""
        dev = self.models.device
        x = torch.from_numpy(full)
        if dev.type == "cuda":
            x = x.pin_memory()
        x = x.to(dev, non_blocking=True)
        if x.dim() == 3:
            x = x.unsqueeze(1)
        out = compose(x, l_in, l_out, ab, self.rgb_input).float()
        if dev.type != "cuda":
            return out.numpy()
        host = torch.empty(out.shape, dtype=out.dtype, pin_memory=True)
        host.copy_(out)
        return host.numpy()
