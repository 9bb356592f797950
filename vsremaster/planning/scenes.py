"""Where scenes start: from `_SceneChangePrev`/`_SceneChangeNext` props, or detected.

Scenes are found on a small grey copy of the clip (a 16x16 bilinear thumbnail of the
luma per frame), which also gives each scene's descriptor (mean thumbnail and mean
16-bin histogram, used to rank references). Detection marks a cut where the mean
absolute difference of consecutive thumbnails (`PlaneStatsDiff`) exceeds the threshold,
as VapourSynth's misc.SCDetect does.

`SceneIndex` (what the filter uses) finds scenes lazily and locally; creating it reads
no frame:
- Blocks. Every multiple of `block` frames (BLOCK = 1000 by default) is a scene start,
  so the scene holding frame n lies inside n's block [k*block, (k+1)*block) and finding
  it reads only that block's frames, once. Measured on the shared 2-core CPU machine, a
  1080p frame costs 1.0-2.1 ms of CPU to thumbnail (4x that at 4K): 2000 frames would
  take 2-4 s of CPU, up to half of a seek's 8 s budget, before the model starts; 1000
  take 1-2 s. The price is a forced cut every 1000 frames (42 s at 24 fps), where a
  long shot's restoration stream restarts and its references are chosen again.
  Within a block the bounds are exactly those of a scan of the whole clip (the tests'
  oracle, `tests/oracles.py`), plus the block starts; a block's cuts and per-scene
  descriptors are cached (bounded in bytes; no per-frame data outlives its scan), and an
  evicted block is scanned again the same way.
- Props or detection. Props are used when frame 0 carries `_SceneChangePrev` or
  `_SceneChangeNext` (scene-change filters set them on every frame), decided at the
  first call; given `sc_threshold`, detection is used and frame 0 is not read for this.
- Threads. `bounds` may be called from several VapourSynth threads at once and from
  inside a filter's frame request (std.FrameEval's callback): a block is scanned once,
  under a lock of its own (other threads asking for that block wait for it; blocks
  already known, or other blocks, never wait behind a scan). The scan asks VapourSynth
  for frames with *synchronous* `get_frame` calls, never `clip.frames()`: a synchronous
  request from a pool thread gives that thread's slot back to the pool while it waits
  (VapourSynth's reserved-thread handling), whereas `frames()` (asynchronous requests
  and a wait on futures) keeps the slot and deadlocks when the pool has no other thread
  free (seen with vspipe and `core.num_threads = 1`). Each synchronous request is for
  one frame of a std.ModifyFrame over GROUP frames of the block, so VapourSynth still
  computes GROUP thumbnails at a time in parallel.
- Props are checked: a scene-change prop of the wrong type (a string, NaN, an array)
  ends the scan with a ScanError naming the frame, as does a frame that fails to render.
"""
from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass

import numpy as np
import vapoursynth as vs

from ..frames.formats import PropError, scene_change
from ..lru import LRU

DEFAULT_SC_THRESHOLD = 0.1
THUMB = 16           # thumbnail edge used to describe scenes and references
HIST_BINS = 16
#: Frames per block: every multiple of it is a scene start (see the module docstring).
BLOCK = 1000
#: Thumbnails VapourSynth computes at once (one synchronous request) during a scan.
GROUP = 64
#: Bytes of block summaries a SceneIndex keeps (about 2.2 kB per scene).
CACHE_BYTES = 64 << 20
_PROPS = ("_SceneChangePrev", "_SceneChangeNext")


def describe(luma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Thumbnail-sized luma [THUMB, THUMB] in [0, 1] -> (thumbnail, normalised histogram)."""
    hist, _ = np.histogram(np.clip(luma, 0, 1), bins=HIST_BINS, range=(0, 1))
    return luma.astype(np.float64), hist / max(hist.sum(), 1)


class ScanError(vs.Error):
    """A source frame failed to render, or carried unusable scene-change props, during a scan."""

    def __init__(self, frame: int, message: str):
        super().__init__(f"frame {frame}: {message}")
        self.frame = frame


@dataclass(frozen=True)
class _Block:
    """What a scanned block leaves behind: its scene starts and their descriptors."""

    starts: tuple[int, ...]         # ascending; the first is the block's first frame
    stop: int                       # the block's end (exclusive)
    thumbs: np.ndarray              # [scenes, THUMB, THUMB] float64, read-only
    hists: np.ndarray               # [scenes, HIST_BINS] float64, read-only

    @property
    def nbytes(self) -> int:
        return self.thumbs.nbytes + self.hists.nbytes + 64 * len(self.starts) + 256


class SceneIndex:
    """Scene bounds found lazily: a request for frame n scans only around n (its block)."""

    def __init__(self, luma: vs.VideoNode, sc_threshold: float | None, block: int = BLOCK,
                 cache_bytes: int = CACHE_BYTES):
        """`luma`: a GRAYS clip of the source (any size). Reads no frame."""
        if isinstance(block, bool) or not isinstance(block, int) or block < 1:
            raise ValueError(f"block must be a positive integer, not {block!r}")
        self.num_frames = luma.num_frames
        self.block = block
        self.threshold = DEFAULT_SC_THRESHOLD if sc_threshold is None else float(sc_threshold)
        self.cache_bytes = cache_bytes
        self._thumbs = vs.core.resize.Bilinear(luma, THUMB, THUMB)
        self._from_props: bool | None = None if sc_threshold is None else False
        self._decide_lock = threading.Lock()
        self._blocks = LRU(-(-self.num_frames // block), cache_bytes, lambda b: b.nbytes)
        self._scanning: dict[int, threading.Lock] = {}
        self._lock = threading.Lock()                   # guards _scanning and the counts
        #: blocks scanned and frames thumbnailed so far (benchmarks read them)
        self.blocks_scanned = 0
        self.frames_scanned = 0

    # -- public ------------------------------------------------------------------
    @property
    def from_props(self) -> bool:
        """Whether scene starts come from props (reads frame 0 the first time)."""
        if self._from_props is None:
            with self._decide_lock:
                if self._from_props is None:
                    props = self._frame(self._thumbs, 0, 0).props
                    self._from_props = any(p in props for p in _PROPS)
        return self._from_props

    def bounds(self, n: int) -> tuple[int, int]:
        """[start, stop) of the scene holding frame n. Thread-safe; scans n's block once."""
        if not 0 <= n < self.num_frames:
            raise IndexError(f"frame {n} is outside the clip (0-{self.num_frames - 1})")
        blk = self._block(n // self.block)
        i = bisect.bisect_right(blk.starts, n) - 1
        return blk.starts[i], blk.starts[i + 1] if i + 1 < len(blk.starts) else blk.stop

    def all_bounds(self) -> list[tuple[int, int]]:
        """[start, stop) of every scene (scans the whole clip: for tools and tests)."""
        out, n = [], 0
        while n < self.num_frames:
            out.append(self.bounds(n))
            n = out[-1][1]
        return out

    def descriptor(self, start: int) -> tuple[np.ndarray, np.ndarray]:
        """(mean thumbnail, mean histogram) of the scene starting at `start` (read-only)."""
        if not 0 <= start < self.num_frames:
            raise IndexError(f"frame {start} is outside the clip (0-{self.num_frames - 1})")
        blk = self._block(start // self.block)
        i = bisect.bisect_left(blk.starts, start)
        if i == len(blk.starts) or blk.starts[i] != start:
            raise ValueError(f"frame {start} is not a scene start")
        return blk.thumbs[i], blk.hists[i]

    # -- blocks ------------------------------------------------------------------
    def _block(self, k: int) -> _Block:
        blk = self._blocks.get(k)
        if blk is not None:
            return blk
        with self._lock:
            lock = self._scanning.setdefault(k, threading.Lock())
        with lock:                  # one scan per block; other blocks go on meanwhile
            blk = self._blocks.get(k)
            if blk is None:
                blk = self._scan(k)
                self._blocks.put(k, blk)
                with self._lock:
                    self.blocks_scanned += 1
                    self.frames_scanned += blk.stop - blk.starts[0]
            with self._lock:
                self._scanning.pop(k, None)
        return blk

    def _scan(self, k: int) -> _Block:
        """Thumbnail block k once, in parallel, and summarise it: its cuts, and each scene's
        mean thumbnail and histogram."""
        from_props = self.from_props
        a = k * self.block
        b = min(a + self.block, self.num_frames)
        size = b - a
        clip = self._thumbs[a:b]
        # each frame's diff with the frame before it (the block's first diff is unused:
        # a block start is a scene start anyway)
        stats = vs.core.std.PlaneStats(clip, clip[0] + clip[:-1]) if size > 1 \
            else vs.core.std.PlaneStats(clip, clip)
        lumas = np.empty((size, THUMB, THUMB), np.float32)
        diffs = np.zeros(size)
        marks = np.zeros((size, 2), bool)
        group = min(GROUP, size)

        def keep(n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
            # f[i] is stats frame n * group + i; the last group may run past the end
            f = f if isinstance(f, list) else [f]       # one clip: a frame, not a list
            for i, fr in enumerate(f):
                m = n * group + i
                if m < size:
                    props = fr.props
                    try:
                        marks[m] = [scene_change(props, p) for p in _PROPS]
                    except PropError as e:
                        errors.append((a + m, str(e)))
                    diffs[m] = float(props["PlaneStatsDiff"])
                    lumas[m] = np.asarray(fr[0])
            return f[0]

        errors: list = []
        rows = [stats[i::group] for i in range(group)]
        node = vs.core.std.ModifyFrame(rows[0], rows, keep)
        for j in range(rows[0].num_frames):
            try:
                node.get_frame(j)
            except vs.Error as e:
                # stats frame m reads thumbnails m and m - 1
                self._raise_failed(a + max(j * group - 1, 0), a + min((j + 1) * group, size), e)
            if errors:
                raise ScanError(*min(errors))
        if from_props:
            cuts = [m for m in range(1, size) if marks[m, 0] or marks[m - 1, 1]]
        else:
            cuts = [m for m in range(1, size) if diffs[m] > self.threshold]
        descs = [describe(lumas[m]) for m in range(size)]
        edges = [0] + cuts + [size]
        thumbs = np.stack([np.mean([d[0] for d in descs[s:e]], axis=0)
                           for s, e in zip(edges, edges[1:])])
        hists = np.stack([np.mean([d[1] for d in descs[s:e]], axis=0)
                          for s, e in zip(edges, edges[1:])])
        thumbs.flags.writeable = hists.flags.writeable = False
        return _Block(tuple(a + s for s in edges[:-1]), b, thumbs, hists)

    def _raise_failed(self, lo: int, hi: int, error: vs.Error):
        """Name the first source frame in [lo, hi) that fails to render."""
        for n in range(lo, hi):
            self._frame(self._thumbs, n, n)
        raise error         # every frame renders on its own: not a frame's fault

    @staticmethod
    def _frame(clip: vs.VideoNode, i: int, n: int) -> vs.VideoFrame:
        try:
            return clip.get_frame(i)
        except vs.Error as e:
            raise ScanError(n, "could not be read while scanning for scenes "
                               f"({last_line(e)})") from None


def last_line(error: BaseException | str) -> str:
    """The message of an error VapourSynth passed up from a frame request, without the
    traceback it puts before a Python filter's error (also: a failed segment's, for
    `render`); "" for an empty message."""
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    text = lines[-1] if lines else ""
    return text.split("vapoursynth.Error: ", 1)[-1].strip()
