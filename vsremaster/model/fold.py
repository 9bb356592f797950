"""Folding eval-mode BatchNorm into the convolution before it, for inference."""
from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every block's `bn` into its `conv3d` and replace it with Identity (in place).

    Conv then BN in eval mode is one affine map per output channel, so the folded block
    computes the same function with one pass less over the activations. The state_dict
    no longer matches the checkpoint layout: fold only copies that are never saved.
    """
    for block in model.modules():
        conv, bn = getattr(block, "conv3d", None), getattr(block, "bn", None)
        if not isinstance(conv, nn.Conv3d) or not isinstance(bn, nn.BatchNorm3d):
            continue
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        conv.weight.mul_(scale.view(-1, 1, 1, 1, 1))
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)
        block.bn = nn.Identity()
    return model
