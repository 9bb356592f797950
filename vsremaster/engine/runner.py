"""Runs the networks over the chunk grid: each piece of work once, in fixed shapes.

Three kinds of work, each cached per grid cell (bounded LRU):
- restoration of an R-cell, from its frames plus RESTORE_RADIUS frames each side
  (clipped to the scene): identical to one pass of NetworkR over the whole scene;
- per-frame encoder features of a cell (spatial encoders and source-reference
  attention), shared by the cell and the chunks of both neighbours;
- decoding of a cell: the cell with CONTEXT frames each side (edge-replicated at scene
  bounds) through self attention and the 3x3x3 decoder; the cell's frames are kept.
Reference sets are encoded once per set. The same cell is always computed from the
same inputs in the same shapes, so a frame's bytes never depend on request order.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch

from ..color import rgb_to_model
from ..color.compose import compose
from ..model import FrameFeatures, RESTORE_RADIUS, RefEncoding
from ..planning.windows import Cell, Grid
from .cache import LRU
from .models import Models

#: Frames of context each side of a decoded chunk (the model's 15-frame window).
CONTEXT = 7


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


@dataclass
class Request:
    """What computing frame n's cell needs: cached pieces it holds on to, and raw frames."""

    cell: Cell
    decoded: Decoded | None = None
    restored: dict = field(default_factory=dict)
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
                 restore: bool, colorize: bool, rgb_input: bool, cache_cells: int = 4):
        self.models = models
        self.grid, self.restore_grid = grid, restore_grid
        self.ref_sets, self.ref_canvases = ref_sets, ref_canvases
        self.restore, self.colorize, self.rgb_input = restore, colorize, rgb_input
        self.restored = LRU(cache_cells)
        self.features = LRU(cache_cells + 2)
        # finished frames are full size: keep few (a linear render needs the current one)
        self.decoded = LRU(3)
        self.encoded = LRU(4)
        #: how many times each kind of work ran (benchmarks and tests read it)
        self.runs = {"restore": 0, "encode": 0, "decode": 0, "refs": 0}

    # -- planning (cheap, called when a frame is requested) -------------------------
    def _feature_cells(self, cell: Cell) -> list[Cell]:
        return self.grid.cells_covering(cell.context(CONTEXT)) if self.colorize else []

    def request(self, n: int) -> Request:
        """Plan frame n: pin what is cached, list the raw frames still needed.

        Takes no model lock: a frame whose chunk is finished is served while other
        chunks compute. What it pins stays alive with the request, whatever the caches drop.
        """
        cell = self.grid.cell_of(n)
        req = Request(cell, decoded=self.decoded.get(cell.start))
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
            if got is None:
                raw.update(rc.clipped(RESTORE_RADIUS) if self.restore else rc.frames)
            else:
                req.restored[rc.start] = got
        req.raw = sorted(raw)
        return req

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
            done = self.decoded.get(req.cell.start)
            if done is None:
                done = self._decode(req, raw, full)
                self.decoded.put(req.cell.start, done)
            return done

    def _to_l(self, frames: list[np.ndarray]) -> torch.Tensor:
        """Raw small frames ([h, w] luma or [3, h, w] RGB) -> model L [T, 1, h, w]."""
        m = self.models
        x = torch.from_numpy(np.stack(frames)).to(m.device, non_blocking=True)
        if self.rgb_input:
            return rgb_to_model(x.float())[0]
        return x.float().unsqueeze(1).clamp(0, 1)

    def _restored_cell(self, rc: Cell, req: Request, raw) -> tuple[torch.Tensor, torch.Tensor]:
        got = req.restored.get(rc.start) or self.restored.get(rc.start)
        if got is not None:
            return got
        if self.restore:
            window = rc.clipped(RESTORE_RADIUS)
            l_in = self._to_l([raw[i] for i in window])
            core = slice(rc.start - window.start, rc.stop - window.start)
            got = (l_in[core], self._restore_core(l_in, window, rc.frames))
            self.runs["restore"] += 1
        else:
            l_in = self._to_l([raw[i] for i in rc.frames])
            got = (l_in, l_in)
        self.restored.put(rc.start, got)
        return got

    def _restore_core(self, l_in: torch.Tensor, window: range, core: range) -> torch.Tensor:
        """NetworkR output for `core`, from `l_in` [T, 1, h, w] covering `window`.

        Out of device memory, the core is halved, each half with its own context: the
        same values, since each frame only sees RESTORE_RADIUS frames each side.
        """
        sub = range(max(core.start - RESTORE_RADIUS, window.start),
                    min(core.stop + RESTORE_RADIUS, window.stop))
        x = l_in[sub.start - window.start:sub.stop - window.start]
        m = self.models
        try:
            out = m.restore(x.to(m.dtype).permute(1, 0, 2, 3).unsqueeze(0))
            return out[0].permute(1, 0, 2, 3).float()[core.start - sub.start:core.stop - sub.start]
        except torch.OutOfMemoryError:
            mid = self._split_or_give_up(core)
        return torch.cat([self._restore_core(l_in, window, range(core.start, mid)),
                          self._restore_core(l_in, window, range(mid, core.stop))])

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
        if self.colorize:
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
