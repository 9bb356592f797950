"""Reading and writing weights for NetworkR/NetworkC, without ever unpickling code.

Two formats: the authors' `remasternet.pth.tar` (a torch.save dict with `modelR` and
`modelC` state_dicts, read with `weights_only=True`) and the project's own safetensors
file (keys prefixed `modelR.` / `modelC.`, metadata with the model's name).

Every way a file can be unusable ends in a `CheckpointError` whose message names the
file and the problem. MD5 is checked only on request (`expected_md5=`): the search and
the tests use files other than the authors' release, and `fetch` verifies on download.
"""
from __future__ import annotations

import hashlib
import json
import pickle
import re
import struct
import zipfile
from pathlib import Path

import torch
from torch import nn

from .colorization import NetworkC
from .restoration import NetworkR

# torch.save's legacy (pre-zip) format starts with this pickled magic number; the
# authors' 2019 release predates the zip format.
_LEGACY_MAGIC = b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19"
_ZIP_MAGIC = b"PK\x03\x04"
_SHOWN = 5  # how many offending keys an error message lists

FORMATS = {
    "torch-zip": "torch.save (zip), the authors' layout",
    "torch-legacy": "torch.save (legacy), the authors' layout",
    "safetensors": "safetensors, the project's format",
}


class CheckpointError(ValueError):
    """A weights file that cannot be used; the message says why."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The weights file does not exist."""


def save_checkpoint(path, state_r: dict, state_c: dict, name: str = "", **meta: str) -> Path:
    """Write both state_dicts to a safetensors file (the project's format)."""
    from safetensors.torch import save_file
    tensors = {f"modelR.{k}": v.contiguous() for k, v in state_r.items()}
    tensors.update({f"modelC.{k}": v.contiguous() for k, v in state_c.items()})
    save_file(tensors, str(path), metadata={"format": "vsremaster", "name": name, **meta})
    return Path(path)


def md5sum(path) -> str:
    """Hex MD5 digest of a file, read in chunks (the authors' file is 245 MB)."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_md5(path, expected: str) -> str:
    """Return the file's MD5, or raise CheckpointError when it differs from `expected`."""
    got = md5sum(path)
    if got.lower() != expected.strip().lower():
        raise CheckpointError(
            f"{path}: MD5 mismatch: expected {expected.strip().lower()}, got {got}; the file "
            "is damaged, incomplete or a different release (download it again)")
    return got


def detect_format(path) -> str:
    """One of FORMATS' keys, or CheckpointError saying what the file is instead."""
    path = _existing_file(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(64)
    if size == 0:
        raise CheckpointError(f"{path}: not a checkpoint: the file is empty")
    if head.startswith(_ZIP_MAGIC):
        return "torch-zip"
    if head.startswith(_LEGACY_MAGIC):
        return "torch-legacy"
    if _looks_like_safetensors(head):
        return "safetensors"
    raise CheckpointError(f"{path}: not a checkpoint: {_describe(head)}; expected the "
                          "authors' remasternet.pth.tar or a vsremaster .safetensors file")


def _existing_file(path) -> Path:
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, not a weights file")
    if not path.exists():
        raise CheckpointNotFoundError(f"{path}: weights file not found (no such file)")
    return path


def _looks_like_safetensors(head: bytes) -> bool:
    # 8-byte little-endian header length, then a JSON object.
    if len(head) < 10 or head[8:9] != b"{":
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 2 <= n < (1 << 31)


def _describe(head: bytes) -> str:
    if head.startswith(b"\x80"):
        return ("it is a plain Python pickle, not a torch.save checkpoint; it was not "
                "unpickled, since unpickling can run arbitrary code")
    text = _as_text(head)
    if text is None:
        return "unrecognised binary content"
    if text.lstrip().lower().startswith(("<!doctype", "<html")):
        return "it is an HTML page (a failed download?)"
    return f"it looks like a text file (starts with {text[:24]!r})"


def _as_text(head: bytes) -> str | None:
    # The 64-byte sample may end inside a multi-byte character.
    for cut in range(4):
        try:
            text = head[:len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return text if all(c.isprintable() or c in "\t\r\n" for c in text) else None
    return None


def read_state_dicts(path) -> tuple[dict, dict, dict]:
    """Return (modelR state_dict, modelC state_dict, metadata) of a weights file.

    Metadata holds at least `name` (the stored name, else the file name) and `file_format`
    (a key of FORMATS).
    """
    path = Path(path)
    fmt = detect_format(path)
    if fmt == "safetensors":
        state_r, state_c, meta = _read_safetensors(path)
        meta["name"] = meta.get("name") or path.stem
    else:
        state_r, state_c = _read_torch(path, fmt)
        meta = {"name": path.name}
    meta["file_format"] = fmt
    return state_r, state_c, meta


def _read_torch(path: Path, fmt: str) -> tuple[dict, dict]:
    # A truncated zip has lost its central directory (it sits at the end).
    if fmt == "torch-zip" and not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: truncated or corrupt file: the zip archive has no "
                              "central directory (incomplete download?)")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"{path}: {_unpickling_problem(e)}") from None
    except (RuntimeError, EOFError, OSError) as e:
        reason = str(e).splitlines()[0][:160]
        problem = ("not a torch.save checkpoint" if "data.pkl" in reason or
                   "subdirectory" in reason else "truncated or corrupt file")
        raise CheckpointError(f"{path}: {problem} ({reason})") from None
    if not isinstance(blob, dict):
        raise CheckpointError(f"{path}: not a DeepRemaster checkpoint: it holds a "
                              f"{type(blob).__name__}, expected a dict with 'modelR' and "
                              "'modelC'")
    missing = [k for k in ("modelR", "modelC") if k not in blob]
    if missing:
        found = ", ".join(repr(k) for k in list(blob)[:_SHOWN]) or "none"
        raise CheckpointError(f"{path}: not a DeepRemaster checkpoint: the dict lacks "
                              f"{' and '.join(map(repr, missing))} (top-level keys: {found})")
    for key in ("modelR", "modelC"):
        if not isinstance(blob[key], dict) or not all(
                isinstance(v, torch.Tensor) for v in blob[key].values()):
            raise CheckpointError(f"{path}: {key!r} is not a state_dict of tensors")
    return blob["modelR"], blob["modelC"]


def _unpickling_problem(e: Exception) -> str:
    found = re.search(r"GLOBAL ([\w.]+)", str(e))
    if found or "Weights only load failed" in str(e):
        what = f" ({found.group(1)})" if found else ""
        return (f"refused to load: the file holds Python objects other than tensors{what}; "
                "loading them could run arbitrary code, so it was not unpickled")
    return f"truncated or corrupt file ({str(e).splitlines()[0][:160]})"


def _read_safetensors(path: Path) -> tuple[dict, dict, dict]:
    from safetensors import SafetensorError, safe_open
    _check_safetensors_size(path)
    try:
        with safe_open(str(path), "pt") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except SafetensorError as e:
        raise CheckpointError(f"{path}: corrupt safetensors file ({e})") from None
    split: dict[str, dict] = {"modelR": {}, "modelC": {}}
    stray = []
    for key, value in tensors.items():
        prefix, _, rest = key.partition(".")
        if prefix in split and rest:
            split[prefix][rest] = value
        else:
            stray.append(key)
    if stray:
        raise CheckpointError(f"{path}: not a vsremaster weights file: {len(stray)} keys lack "
                              f"the 'modelR.'/'modelC.' prefix, e.g. {_few(stray)}")
    empty = [k for k, v in split.items() if not v]
    if empty:
        raise CheckpointError(f"{path}: not a DeepRemaster checkpoint: no "
                              f"{' or '.join(map(repr, empty))} tensors in the file")
    return split["modelR"], split["modelC"], meta


def _check_safetensors_size(path: Path) -> None:
    # Truncation cuts the tensor data (or the header) short; safetensors' own message
    # for that is cryptic, so compare the sizes the header promises with the file.
    size = path.stat().st_size
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        raw = f.read(n)
    if len(raw) < n:
        raise CheckpointError(f"{path}: truncated file: the safetensors header promises "
                              f"{n} bytes, the file has {size - 8} after the length field")
    try:
        header = json.loads(raw)
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"),
                  default=0)
    except (ValueError, KeyError, TypeError, IndexError):
        raise CheckpointError(f"{path}: corrupt safetensors file (unreadable header)") from None
    if 8 + n + end > size:
        raise CheckpointError(f"{path}: truncated file: {size} bytes, the safetensors header "
                              f"needs {8 + n + end}")


def width_of(state_r: dict) -> float:
    """The channel-width multiplier a modelR state_dict was built with."""
    return state_r["layers.1.conv3d.weight"].shape[0] / 64


def _width(state_r: dict, meta: dict) -> float:
    # Stored metadata wins: width_of cannot undo scaled()'s rounding for every width.
    if meta.get("width"):
        try:
            return float(meta["width"])
        except ValueError:
            pass
    weight = state_r.get("layers.1.conv3d.weight")
    return width_of(state_r) if weight is not None and weight.dim() == 5 else 1.0


def check_state_dict(model: nn.Module, state: dict, label: str = "") -> None:
    """Raise CheckpointError naming missing/unexpected keys or wrong shapes."""
    expected = model.state_dict()
    where = f"{label}: " if label else ""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    problems = []
    if missing:
        problems.append(f"{_n(missing, 'key')} missing: {_few(missing)}")
    if unexpected:
        problems.append(f"{_n(unexpected, 'unexpected key')}: {_few(unexpected)}")
    if problems:
        raise CheckpointError(where + "; ".join(problems))
    wrong = [(k, tuple(expected[k].shape), tuple(state[k].shape)) for k in expected
             if expected[k].shape != state[k].shape]
    if wrong:
        shown = "; ".join(f"{k!r}: expected {e}, found {f}" for k, e, f in wrong[:_SHOWN])
        raise CheckpointError(f"{where}{_n(wrong, 'tensor')} with the wrong shape: {shown}")


def _n(items: list, noun: str) -> str:
    return f"{len(items)} {noun}{'s' if len(items) != 1 else ''}"


def _few(keys: list[str]) -> str:
    more = f" (+{len(keys) - _SHOWN} more)" if len(keys) > _SHOWN else ""
    return ", ".join(repr(k) for k in keys[:_SHOWN]) + more


def load_checkpoint(path=None, device="cpu", expected_md5: str | None = None
                    ) -> tuple[NetworkR, NetworkC]:
    """Build both networks from a weights file, in eval mode on `device`.

    `path=None` searches the usual places (`vsremaster.weights.find_weights`).
    `expected_md5` (e.g. `vsremaster.weights.AUTHORS_MD5`) insists on one exact file.
    Both models get `.name` (the stored name, else the file name), `.width` and `.meta`
    (the file's metadata, see `read_state_dicts`).
    """
    if path is None:
        from ..weights import find_weights
        path = find_weights()
    path = Path(path)
    if expected_md5:
        verify_md5(_existing_file(path), expected_md5)
    state_r, state_c, meta = read_state_dicts(path)
    width = _width(state_r, meta)
    models = []
    for label, cls, state in (("modelR", NetworkR, state_r), ("modelC", NetworkC, state_c)):
        model = cls(width)
        check_state_dict(model, state, f"{path}: {label}")
        model.load_state_dict(state)
        model.name, model.width, model.meta = meta["name"], width, meta
        models.append(model.eval().to(device))
    return models[0], models[1]
