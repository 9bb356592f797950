"""NetworkR: the temporal restoration network (the released `modelR`)."""
from __future__ import annotations

import torch
from torch import nn

from .blocks import TEMPORAL, ConvBlock, UpBlock, scaled, temporal

L_MEAN = 0.4462414
#: Frames of temporal context each output frame depends on, per side (13 3x3x3 layers).
RESTORE_RADIUS = 13


class NetworkR(nn.Module):
    """Restores deteriorated luminance [B, 1, T, H, W] in [0, 1] (H, W multiples of 16).

    `width` scales every channel count (1.0: the released architecture; smaller values
    give the "lite" models the project trains on a CPU). The whole network is convolutional in time with a receptive field of
    `RESTORE_RADIUS` frames per side, so a scene can be processed in overlapping pieces.
    """

    def __init__(self, width: float = 1.0):
        super().__init__()
        c = scaled(width)
        self.layers = nn.Sequential(
            nn.ReplicationPad3d(1),
            ConvBlock(1, c(64), TEMPORAL, stride=(1, 2, 2), padding=0),
            temporal(c(64), c(128)),
            temporal(c(128), c(128)),
            temporal(c(128), c(256), stride=(1, 2, 2)),
            temporal(c(256), c(256)),
            temporal(c(256), c(256)),
            temporal(c(256), c(256)),
            temporal(c(256), c(256)),
            UpBlock(c(256), c(128)),
            temporal(c(128), c(64)),
            temporal(c(64), c(64)),
            UpBlock(c(64), c(16)),
            nn.Conv3d(c(16), 1, TEMPORAL, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x + torch.tanh(self.layers(x - L_MEAN)), 0, 1)
