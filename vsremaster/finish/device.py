"""Finishing frames on the device: compose at full size, convert, and download once.

For each output frame: the source frame's planes go up in their own sample type, the
cell's model-size results are upscaled and composed with it (finish.compose), the
result is converted to the output format (Y'CbCr matrix, range, bit depth) and only
those samples come back, into a pinned buffer that the thread reuses. On CUDA each
VapourSynth thread works on a stream of its own, so uploads, composition and downloads
of different frames overlap each other and the networks (which run on the models'
stream under the model lock).
"""
from __future__ import annotations

import threading
from contextlib import nullcontext

import numpy as np
import torch
import vapoursynth as vs

from ..color.ycbcr import dequantize, quantize
from ..engine.host import release_openmp_threads
from ..engine.runner import CellResult
from .compose import compose
from .output import colour_of, output_props

_TORCH_TYPES = {(vs.INTEGER, 1): torch.uint8, (vs.INTEGER, 2): torch.int16,
                (vs.FLOAT, 2): torch.float16, (vs.FLOAT, 4): torch.float32}


def _torch_type(fmt: vs.VideoFormat) -> torch.dtype:
    return _TORCH_TYPES[(fmt.sample_type, fmt.bytes_per_sample)]


class DeviceComposer:
    """Turns (source frame, finished cell, index) into an output frame's planes."""

    def __init__(self, device: torch.device, source: vs.VideoFormat, out: vs.VideoFormat,
                 tone: str = "keep", saturation: float = 1.0):
        self.device, self.source, self.out, self.tone = device, source, out, tone
        self.saturation = saturation
        self.rgb_input = source.color_family == vs.RGB
        self._local = threading.local()

    def __call__(self, src: vs.VideoFrame, done: CellResult, j: int, dst: vs.VideoFrame) -> dict:
        """Write the composed frame into `dst`; returns the colour props it has."""
        family = self.source.color_family
        matrix, full = colour_of(src.props, family)
        local = self._buffers(src, dst)
        cuda = self.device.type == "cuda"
        stream = local.stream if cuda else None
        with torch.cuda.stream(stream) if cuda else nullcontext():
            if cuda and done.ready is not None:
                stream.wait_event(done.ready)
            planes = self._upload(src, local)
            out = self._compose(planes, done, j, matrix, full)
            host = local.down
            host.copy_(out, non_blocking=cuda)
            if cuda:
                stream.synchronize()
        for p in range(dst.format.num_planes):
            np.copyto(np.asarray(dst[p]), host[p].numpy().view(np.asarray(dst[p]).dtype))
        if not cuda:
            release_openmp_threads()        # the thread's next job may be a cell's networks
        composed = done.finished.ab is not None or self.rgb_input
        full = full or self.out.sample_type == vs.FLOAT          # float samples: full range
        return output_props(self.out, matrix, full, composed) if composed else {}

    def _buffers(self, src: vs.VideoFrame, dst: vs.VideoFrame):
        """Per-thread staging buffers (pinned on CUDA) and stream, made once."""
        local = self._local
        if getattr(local, "up", None) is None:
            cuda = self.device.type == "cuda"
            n_in = 3 if self.rgb_input else 1
            shape = (src.height, src.width)
            local.up = torch.empty((n_in, *shape), dtype=_torch_type(self.source),
                                   pin_memory=cuda)
            local.down = torch.empty((dst.format.num_planes, *shape),
                                     dtype=_torch_type(dst.format), pin_memory=cuda)
            local.stream = torch.cuda.Stream(self.device) if cuda else None
        return local

    def _upload(self, src: vs.VideoFrame, local) -> torch.Tensor:
        up = local.up
        for p in range(len(up)):
            np.copyto(up[p].numpy(), np.asarray(src[p]).view(up[p].numpy().dtype))
        return up.to(self.device, non_blocking=True)

    def _to_unit(self, x: torch.Tensor, full: bool) -> torch.Tensor:
        """Source samples -> float32 in [0, 1] (NaN 0, +inf 1, -inf 0 for float input)."""
        fmt = self.source
        if fmt.sample_type == vs.FLOAT:
            return torch.nan_to_num(x.float(), nan=0.0, posinf=1.0, neginf=0.0)
        if fmt.bytes_per_sample == 2:
            x = x.to(torch.int32) & 0xFFFF          # int16 storage of uint16 samples
        return dequantize(x, fmt.bits_per_sample, full)

    def _compose(self, planes: torch.Tensor, done: CellResult, j: int, matrix: int,
                 full: bool) -> torch.Tensor:
        fin = done.finished
        unit = self._to_unit(planes, full)
        rgb_out = self.out.color_family == vs.RGB
        x = compose(unit, None if fin.delta is None else fin.delta[j],
                    None if fin.ab is None else fin.ab[j], None if rgb_out else matrix,
                    self.tone, rgb=unit if self.rgb_input else None,
                    saturation=self.saturation)
        if x.shape[-3] == 1 or rgb_out:
            return self._samples(x, full, False)
        return torch.cat([self._samples(x[:1], full, False),
                          self._samples(x[1:], full, True)])

    def _samples(self, x: torch.Tensor, full: bool, chroma: bool) -> torch.Tensor:
        out = self.out
        if out.sample_type == vs.FLOAT:
            return x.to(_torch_type(out))
        q = quantize(x, out.bits_per_sample, full, chroma)
        return q.to(torch.uint8) if out.bytes_per_sample == 1 else q.to(torch.int16)
