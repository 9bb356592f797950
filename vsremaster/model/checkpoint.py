"""Reading and writing weights for NetworkR/NetworkC, without ever unpickling code.

Two formats: the authors' `remasternet.pth.tar` (a torch.save dict with `modelR` and
`modelC` state_dicts, read with `weights_only=True`) and the project's own safetensors
file (keys prefixed `modelR.` / `modelC.`, metadata with the model's name).
"""
from __future__ import annotations

from pathlib import Path

import torch

from .colorization import NetworkC
from .restoration import NetworkR


class CheckpointError(ValueError):
    """A weights file that cannot be used; the message says why."""


def save_checkpoint(path, state_r: dict, state_c: dict, name: str = "", **meta: str) -> Path:
    """Write both state_dicts to a safetensors file (the project's format)."""
    from safetensors.torch import save_file
    tensors = {f"modelR.{k}": v.contiguous() for k, v in state_r.items()}
    tensors.update({f"modelC.{k}": v.contiguous() for k, v in state_c.items()})
    save_file(tensors, str(path), metadata={"format": "vsremaster", "name": name, **meta})
    return Path(path)


def read_state_dicts(path) -> tuple[dict, dict, dict]:
    """Return (modelR state_dict, modelC state_dict, metadata) of a weights file."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(8)
    if head[:2] == b"PK" or head[:1] == b"\x80":
        blob = torch.load(path, map_location="cpu", weights_only=True)
        return blob["modelR"], blob["modelC"], {"name": path.name}
    from safetensors.torch import load_file
    from safetensors import safe_open
    with safe_open(str(path), "pt") as f:
        meta = dict(f.metadata() or {})
    tensors = load_file(str(path))
    split = ({}, {})
    for key, value in tensors.items():
        prefix, _, rest = key.partition(".")
        split[prefix == "modelC"][rest] = value
    meta.setdefault("name", path.stem)
    return split[0], split[1], meta


def width_of(state_r: dict) -> float:
    """The channel-width multiplier a modelR state_dict was built with."""
    return state_r["layers.1.conv3d.weight"].shape[0] / 64


def load_checkpoint(path, device="cpu") -> tuple[NetworkR, NetworkC]:
    """Build both networks from a weights file, in eval mode on `device`."""
    state_r, state_c, meta = read_state_dicts(path)
    width = width_of(state_r)
    model_r, model_c = NetworkR(width), NetworkC(width)
    model_r.load_state_dict(state_r)
    model_c.load_state_dict(state_c)
    for m in (model_r, model_c):
        m.name = meta.get("name", "")
    return model_r.eval().to(device), model_c.eval().to(device)
