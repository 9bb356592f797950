"""NetworkC: the source-reference attention colorization network (the released `modelC`).

The forward pass is split where the computation stops being per-frame:
`encode_refs` (once per reference set), `encode_frames` (each frame on its own: spatial
convolutions and source-reference attention) and `decode` (self attention and 3x3x3
convolutions that mix every frame processed together).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import Attention, ConvBlock, UpBlock, UpConcatBlock, scaled, spatial, temporal
from .confidence import reference_moments, source_lightness
from .restoration import L_MEAN

REF_MEAN = 0.48


@dataclass
class RefEncoding:
    """Keys and values of one reference set for both source-reference attentions, and
    the colour moments under the first one's keys (`c1`, float32; model.confidence)."""

    k1: torch.Tensor
    v1: torch.Tensor
    k2: torch.Tensor
    v2: torch.Tensor
    c1: torch.Tensor | None = None

    def to(self, *args, **kwargs) -> "RefEncoding":
        return RefEncoding(*(t.to(*args, **kwargs) for t in (self.k1, self.v1, self.k2, self.v2)),
                           None if self.c1 is None else self.c1.to(self.k1.device))


@dataclass
class FrameFeatures:
    """Per-frame encoder outputs: `skip` [B, 512, T, H/8, W/8], `deep` [B, 512, T, H/16, W/16]."""

    skip: torch.Tensor
    deep: torch.Tensor


def _encoder(cin: int, c, first_padding) -> list[nn.Module]:
    return [
        ConvBlock(cin, c(64), stride=(1, 2, 2), padding=first_padding),
        ConvBlock(c(64), c(128)),
        ConvBlock(c(128), c(128)),
        ConvBlock(c(128), c(256), stride=(1, 2, 2)),
        ConvBlock(c(256), c(256)),
        ConvBlock(c(256), c(256)),
        ConvBlock(c(256), c(512), stride=(1, 2, 2)),
        ConvBlock(c(512), c(512)),
        ConvBlock(c(512), c(512)),
    ]


def _first_of_each(keys: list) -> list[int]:
    first: dict = {}
    return [first.setdefault(key, t) for t, key in enumerate(keys)]


def after_temporal_conv(same_as: list[int]) -> list[int]:
    """Which frames stay equal after a 3-frame temporal convolution (zero padded)."""
    n = len(same_as)
    return _first_of_each([(same_as[t - 1] if t else -1, same_as[t],
                            same_as[t + 1] if t + 1 < n else -1) for t in range(n)])


def _self_attend(attn: Attention, x: torch.Tensor, same_as: list[int] | None) -> torch.Tensor:
    """attn(x, x), computing the answers of frames equal to earlier ones only once."""
    distinct = sorted(set(same_as)) if same_as else None
    if not distinct or len(distinct) == x.shape[2]:
        return attn(x, x)
    out = attn.attend(x[:, :, distinct], *attn.keys_values(x))
    where = {t: i for i, t in enumerate(distinct)}
    return out[:, :, [where[t] for t in same_as]]


class NetworkC(nn.Module):
    """Colorizes restored luminance [B, 1, T, H, W] from references [B, N, 3, Hr, Wr].

    Returns ab [B, 2, T, H, W] in [0, 1]. H, W (and Hr, Wr) multiples of 16.
    `width` scales every channel count (1.0: the released architecture).
    """

    def __init__(self, width: float = 1.0):
        super().__init__()
        c = scaled(width)
        w = c(512)
        self.down1 = nn.Sequential(nn.ReplicationPad3d((1, 1, 1, 1, 0, 0)),
                                   *_encoder(1, c, first_padding=0))
        self.flat = nn.Sequential(ConvBlock(w, w), ConvBlock(w, w))
        self.down2 = nn.Sequential(ConvBlock(w, w, stride=(1, 2, 2)), ConvBlock(w, w))
        self.stattn1 = Attention(w, w)
        self.stattn2 = Attention(w, w)
        self.selfattn1 = Attention(w, w)
        self.conv1 = ConvBlock(w, w)
        self.up1 = UpConcatBlock(w, w, w)
        self.selfattn2 = Attention(w, w)
        self.conv2 = temporal(w, c(256))
        self.up2 = nn.Sequential(UpBlock(c(256), c(128)), temporal(c(128), c(64)))
        self.up3 = nn.Sequential(UpBlock(c(64), c(32)), temporal(c(32), c(16)))
        self.up4 = nn.Sequential(UpBlock(c(16), c(8)), nn.Conv3d(c(8), 2, 3, padding=1))
        self.reffeatnet1 = nn.Sequential(*_encoder(3, c, first_padding=(0, 1, 1)))
        self.reffeatnet2 = nn.Sequential(ConvBlock(w, w, stride=(1, 2, 2)),
                                         ConvBlock(w, w), ConvBlock(w, w))

    def encode_refs(self, refs: torch.Tensor) -> RefEncoding:
        """Encode references [B, N, 3, Hr, Wr] in [0, 1] once for any number of chunks."""
        feat1 = self.reffeatnet1(refs.transpose(1, 2) - REF_MEAN)
        feat2 = self.reffeatnet2(feat1)
        return RefEncoding(*self.stattn1.keys_values(feat1), *self.stattn2.keys_values(feat2),
                           reference_moments(refs, refs.shape[-1] // feat1.shape[-1]))

    def encode_frames(self, x: torch.Tensor, refs: RefEncoding | None = None) -> FrameFeatures:
        """The per-frame part: each output frame depends on its own input frame only."""
        x1 = self.down1(x - L_MEAN)
        if refs is not None:
            x1 = self.stattn1.attend(x1, refs.k1, refs.v1)
        skip = self.flat(x1)
        deep = self.down2(x1)
        if refs is not None:
            deep = self.stattn2.attend(deep, refs.k2, refs.v2)
        return FrameFeatures(skip=skip, deep=self.conv1(deep))

    def encode_frame_batch(self, x: torch.Tensor, refs: RefEncoding | None = None,
                           confidence: bool = False) -> tuple[torch.Tensor, ...]:
        """`encode_frames` for frames x [N, 1, H, W] -> (skip [N, 512, H/8, W/8], deep),
        with `confidence` also the match confidence [N, 1, H/8, W/8] of `stattn1`
        (model.confidence; float32; 0 without references). skip and deep are the same
        either way.

        Frames are the batch of 2-D operations and each frame attends the references in
        a call of its own, so a frame's features do not depend on the other frames.
        """
        x1 = F.pad(x - L_MEAN, (1, 1, 1, 1), mode="replicate")
        for block in self.down1[1:]:
            x1 = spatial(block, x1)
        conf = None
        if confidence:
            conf = torch.zeros(x1.shape[0], 1, *x1.shape[2:], device=x1.device)
        if refs is not None:
            lightness = source_lightness(x, x.shape[-1] // x1.shape[-1]) if confidence else None
            frames = [self.stattn1.attend_frame(f, refs.k1, refs.v1, (refs.c1, lightness[t:t + 1])
                                                if confidence else None)
                      for t, f in enumerate(x1.split(1))]
            if confidence:
                frames, confs = zip(*frames)
                conf = torch.cat(confs)
            x1 = torch.cat(frames)
        skip = spatial(self.flat[1], spatial(self.flat[0], x1))
        deep = spatial(self.down2[1], spatial(self.down2[0], x1))
        if refs is not None:
            deep = torch.cat([self.stattn2.attend_frame(f, refs.k2, refs.v2) for f in deep.split(1)])
        return (skip, spatial(self.conv1, deep)) + ((conf,) if confidence else ())

    def decode(self, feats: FrameFeatures, same_as: list[int] | None = None) -> torch.Tensor:
        """The cross-frame part: self attention and 3x3x3 convolutions over all frames.

        `same_as[t]` may name an earlier frame whose features equal frame t's (edge
        replication): identical queries give identical answers, so each self attention
        then asks only the distinct ones. The result is the same.
        """
        out = _self_attend(self.selfattn1, feats.deep, same_as)
        out = self.up1(out, feats.skip)
        out = _self_attend(self.selfattn2, out, same_as and after_temporal_conv(same_as))
        out = self.conv2(out)
        out = self.up4(self.up3(self.up2(out)))
        return torch.sigmoid(out)

    def forward(self, x: torch.Tensor, refs: torch.Tensor | RefEncoding | None = None) -> torch.Tensor:
        if isinstance(refs, torch.Tensor):
            refs = self.encode_refs(refs)
        return self.decode(self.encode_frames(x, refs))
