"""Seeded weights for tests: made here, so the tests need nothing beside the checkout.

Each tensor comes from its own generator, seeded by a hash of its state_dict key, so a
key always gets the same values (any machine, any registration order, any subset of
keys). The values are chosen so both networks compute something non-trivial: conv
kernels with variance 1/fan_in keep ELU activations of order one through the layers,
BatchNorm has a positive running variance, and every attention layer a non-zero gamma,
so the outputs change with the input and the colours change with the references.
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch


def _rng(key: str) -> np.random.Generator:
    digest = hashlib.sha256(f"vsremaster-tests:{key}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def values(key: str, shape: tuple[int, ...]) -> np.ndarray:
    """The float64 values of state_dict entry `key` with `shape`."""
    rng = _rng(key)
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "running_var":
        return rng.uniform(0.6, 1.4, shape)
    if leaf == "running_mean":
        return rng.normal(0.0, 0.05, shape)
    if leaf == "gamma":                     # attention mix: non-zero, either sign
        return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.4, 0.8, shape)
    if len(shape) >= 2:                     # conv kernels [out, in, ...]
        fan_in = int(np.prod(shape[1:]))
        return rng.normal(0.0, 1.0 / np.sqrt(fan_in), shape)
    if leaf == "weight":                    # BatchNorm scale
        return rng.uniform(0.8, 1.2, shape)
    return rng.normal(0.0, 0.05, shape)     # biases, BatchNorm shift


def state_dict(template: dict) -> dict:
    """A state_dict with `template`'s keys, shapes and dtypes, filled with seeded values."""
    out = {}
    for key, ref in template.items():
        if not ref.dtype.is_floating_point:          # num_batches_tracked
            out[key] = torch.zeros_like(ref)
        else:
            out[key] = torch.from_numpy(values(key, tuple(ref.shape))).to(ref.dtype)
    return out


def state_dicts(width: float = 1.0) -> tuple[dict, dict]:
    """Seeded (NetworkR, NetworkC) state_dicts of channel width `width`."""
    from vsremaster.model import NetworkC, NetworkR
    return state_dict(NetworkR(width).state_dict()), state_dict(NetworkC(width).state_dict())
