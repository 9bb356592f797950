"""Reading and writing weights for NetworkR/NetworkC, without ever unpickling code.

Two formats: the authors' `remasternet.pth.tar` (a torch.save dict with `modelR` and
`modelC` state_dicts, read with `weights_only=True`) and the project's own safetensors
file (keys prefixed `modelR.` / `modelC.`, metadata with the model's name).

Every way a file can be unusable ends in a `CheckpointError` whose message names the
file and the problem. What a file declares is checked before it is believed: the path
must be a regular file no larger than the widest network's weights can be; a
safetensors header is parsed under size and depth limits, and its shapes, dtypes and
offsets are checked against the architecture before any tensor is read; a torch zip's
directory is checked before torch reads it (the legacy format has no directory: only
its file size bounds it). Loaded weights must be floating point where the networks are,
finite, and of the architecture's shapes.

MD5 is checked only on request (`expected_md5=`): the tests use files other than the
authors' release, and `fetch` verifies on download. Where weights are found is not
this module's business (`vsremaster.weights`).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import re
import struct
import zipfile
from pathlib import Path

import numpy as np
import torch

from ..files import FileMissing, FileRefused, check_regular_file, open_regular, size_words
from ..limits import is_out_of_memory
from .colorization import NetworkC
from .layout import (LayoutError, check_layout, check_values, expected_layout, largest_numel,
                     layout_of, parse_width, width_from_first_layer)
from .restoration import NetworkR

# torch.save's legacy (pre-zip) format starts with this pickled magic number; the
# authors' 2019 release predates the zip format.
_LEGACY_MAGIC = b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19"
_ZIP_MAGIC = b"PK\x03\x04"
_SHOWN = 5  # how many offending keys an error message lists
#: A safetensors header of the released architecture is about 35 kB.
MAX_HEADER_BYTES = 4 << 20
#: {"key": {"shape": [...]}} is 3 deep; anything deeper is not a weights header.
MAX_HEADER_DEPTH = 3
#: torch.save's zip: one entry per storage (about 350 here) plus a few records.
MAX_ZIP_ENTRIES = 4096
#: The pickle inside a torch.save zip (data.pkl) of the authors' file is about 40 kB.
MAX_PICKLE_BYTES = 16 << 20
_SIZE_WHY = " for weights (the widest network's, in float64, are smaller)"
# safetensors dtype -> (bytes per element, kind)
_ST_DTYPES = {"F64": (8, "floating"), "F32": (4, "floating"), "F16": (2, "floating"),
              "BF16": (2, "floating"), "I64": (8, "integer"), "I32": (4, "integer"),
              "I16": (2, "integer"), "I8": (1, "integer"), "U8": (1, "integer"),
              "U16": (2, "integer"), "U32": (4, "integer"), "U64": (8, "integer"),
              "BOOL": (1, "bool")}

FORMATS = {
    "torch-zip": "torch.save (zip), the authors' layout",
    "torch-legacy": "torch.save (legacy), the authors' layout",
    "safetensors": "safetensors, the project's format",
}


def max_file_bytes() -> int:
    """The largest weights file accepted: the widest network in float64, plus 16 MiB."""
    return largest_numel() * 8 + (16 << 20)


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
    with open_regular(path) as f:
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
    with _open(path) as f:
        size = os.fstat(f.fileno()).st_size
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
    """`path`, once it is known to be a regular file no larger than any weights can be."""
    path = Path(path)
    try:
        check_regular_file(path, max_file_bytes())
    except FileMissing:
        raise CheckpointNotFoundError(f"{path}: weights file not found (no such file)") from None
    except FileRefused as e:
        raise CheckpointError(f"{e}{_SIZE_WHY if e.reason.endswith('allowed') else ''}") from None
    return path


def _open(path: Path):
    try:
        return open_regular(path, max_file_bytes())
    except FileRefused as e:
        raise CheckpointError(str(e)) from None


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
    (a key of FORMATS). Both state_dicts fit the architecture at the file's width (keys,
    shapes, floating point where the networks are) and hold only finite values.
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
    try:
        layout = expected_layout(_width(state_r, meta, path))
        for label, state in (("modelR", state_r), ("modelC", state_c)):
            check_layout(layout[label], layout_of(state), f"{path}: {label}")
            check_values(state, f"{path}: {label}")
    except LayoutError as e:
        raise CheckpointError(str(e)) from None
    return state_r, state_c, meta


def _read_torch(path: Path, fmt: str) -> tuple[dict, dict]:
    with _open(path) as f:
        if fmt == "torch-zip":
            _check_zip(path, f)
            f.seek(0)
        try:
            blob = torch.load(f, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            raise CheckpointError(f"{path}: {_unpickling_problem(e)}") from None
        except (RuntimeError, EOFError, OSError) as e:
            reason = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
            problem = ("not a torch.save checkpoint" if "data.pkl" in reason or
                       "subdirectory" in reason else "truncated or corrupt file")
            raise CheckpointError(f"{path}: {problem} ({reason})") from None
        except Exception as e:   # whatever else a crafted pickle provokes
            if is_out_of_memory(e):
                raise CheckpointError(f"{path}: not enough memory to load it") from None
            reason = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
            raise CheckpointError(f"{path}: corrupt file ({reason})") from None
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
                isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in blob[key].items()):
            raise CheckpointError(f"{path}: {key!r} is not a state_dict of tensors")
    return blob["modelR"], blob["modelC"]


def _check_zip(path: Path, f) -> None:
    """Refuse a torch.save zip whose directory or entries could not be weights, before
    zipfile or torch read them (a huge directory or a decompression bomb)."""
    size = os.fstat(f.fileno()).st_size
    tail_len = min(size, 22 + 0xFFFF)
    f.seek(size - tail_len)
    tail = f.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        # a truncated zip has lost its central directory (it sits at the end)
        raise CheckpointError(f"{path}: truncated or corrupt file: the zip archive has no "
                              "central directory (incomplete download?)")
    entries, directory = struct.unpack("<HI", tail[at + 10:at + 16])
    if entries == 0xFFFF or directory == 0xFFFFFFFF:
        entries, directory = _zip64_counts(path, f, size - tail_len + at)
    if entries > MAX_ZIP_ENTRIES or directory > MAX_ZIP_ENTRIES * 1024:
        raise CheckpointError(f"{path}: not a DeepRemaster checkpoint: its zip directory "
                              f"lists {entries} entries in {size_words(directory)} (a torch.save "
                              f"checkpoint of these networks has a few hundred)")
    f.seek(0)
    try:
        infos = zipfile.ZipFile(f).infolist()
    except (zipfile.BadZipFile, OSError, ValueError, struct.error) as e:
        raise CheckpointError(f"{path}: truncated or corrupt file ({e})") from None
    unpacked = sum(i.file_size for i in infos)
    if unpacked > max_file_bytes():
        raise CheckpointError(f"{path}: not a DeepRemaster checkpoint: its entries unpack to "
                              f"{size_words(unpacked)}, more than the "
                              f"{size_words(max_file_bytes())} any weights of these networks "
                              "need")
    pickles = [i for i in infos if i.filename.endswith("data.pkl")]
    if any(i.file_size > MAX_PICKLE_BYTES for i in pickles):
        raise CheckpointError(f"{path}: not a DeepRemaster checkpoint: its data.pkl is "
                              f"{size_words(max(i.file_size for i in pickles))} (at most "
                              f"{size_words(MAX_PICKLE_BYTES)})")


def _zip64_counts(path: Path, f, eocd: int) -> tuple[int, int]:
    """(entries, directory bytes) from the zip64 end record the locator before `eocd` names."""
    try:
        f.seek(eocd - 20)
        locator = f.read(20)
        if locator[:4] != b"PK\x06\x07":
            raise ValueError
        (record,) = struct.unpack("<Q", locator[8:16])
        f.seek(record)
        end = f.read(56)
        if end[:4] != b"PK\x06\x06":
            raise ValueError
        return struct.unpack("<QQ", end[32:48])
    except (ValueError, OSError, struct.error):
        raise CheckpointError(f"{path}: truncated or corrupt file: unreadable zip64 "
                              "directory") from None


def _unpickling_problem(e: Exception) -> str:
    found = re.search(r"GLOBAL ([\w.]+)", str(e))
    if found or "Weights only load failed" in str(e):
        what = f" ({found.group(1)})" if found else ""
        return (f"refused to load: the file holds Python objects other than tensors{what}; "
                "loading them could run arbitrary code, so it was not unpickled")
    return f"truncated or corrupt file ({str(e).splitlines()[0][:160]})"


def _read_safetensors(path: Path) -> tuple[dict, dict, dict]:
    from safetensors import SafetensorError, safe_open
    entries, meta = _safetensors_header(path)
    split = _split_keys(path, entries)
    try:
        layout = expected_layout(_width_from_header(split["modelR"], meta, path))
        for label, found in split.items():
            check_layout(layout[label], {k: (tuple(e["shape"]), _ST_DTYPES[e["dtype"]][1])
                                         for k, e in found.items()}, f"{path}: {label}")
    except LayoutError as e:
        raise CheckpointError(str(e)) from None
    # only now, with every tensor's size known to be the architecture's, read them
    try:
        with safe_open(str(path), "pt") as f:
            state = {label: {k: f.get_tensor(f"{label}.{k}") for k in found}
                     for label, found in split.items()}
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path}: corrupt safetensors file ({e})") from None
    return state["modelR"], state["modelC"], meta


def _safetensors_header(path: Path) -> tuple[dict, dict]:
    """(tensor entries, metadata) of a safetensors file, checked without reading tensors:
    bounded size and depth, known dtypes, sizes that match shapes, offsets that tile the
    data exactly (truncation, trailing bytes, overlaps and gaps are all refused).

    Why not `safe_open(...).get_slice(k).get_shape()`: safetensors 0.8 reads headers of up
    to 100 MB, 128 deep, and of tests/test_hostile.py's crafted headers names the problem
    of none ("invalid offset for tensor", "file not fully covered" for a cut file and for
    trailing bytes alike, serde's "expected usize at column 69")."""
    with _open(path) as f:
        size = os.fstat(f.fileno()).st_size
        (n,) = struct.unpack("<Q", f.read(8))
        if n > MAX_HEADER_BYTES:
            raise CheckpointError(f"{path}: corrupt safetensors file: its header claims "
                                  f"{size_words(n)}; a weights header is at most "
                                  f"{size_words(MAX_HEADER_BYTES)}")
        raw = f.read(n)
    if len(raw) < n:
        raise CheckpointError(f"{path}: truncated file: the safetensors header promises "
                              f"{n} bytes, the file has {size - 8} after the length field")
    corrupt = f"{path}: corrupt safetensors file"
    if _json_depth(raw) > MAX_HEADER_DEPTH:
        raise CheckpointError(f"{corrupt}: its header nests deeper than a weights header "
                              f"({MAX_HEADER_DEPTH} levels)")
    try:
        header = json.loads(raw)
    except RecursionError:
        raise CheckpointError(f"{corrupt}: its header nests too deep") from None
    except ValueError:
        raise CheckpointError(f"{corrupt} (unreadable header)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{corrupt}: its header is not a JSON object")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise CheckpointError(f"{corrupt}: its metadata is not a map of strings")
    spans = []
    for key, entry in header.items():
        why = _entry_problem(entry)
        if why:
            raise CheckpointError(f"{corrupt}: tensor {key[:80]!r} {why}")
        spans.append((*entry["data_offsets"], key))
    end = 0
    for start, stop, key in sorted(spans):
        if start != end:
            raise CheckpointError(f"{corrupt}: tensor {key[:80]!r} starts at byte {start} of "
                                  f"the data, expected {end} (overlapping tensors or a gap)")
        end = stop
    if 8 + n + end > size:
        raise CheckpointError(f"{path}: truncated file: {size} bytes, the safetensors header "
                              f"needs {8 + n + end}")
    if 8 + n + end < size:
        raise CheckpointError(f"{corrupt}: {size - 8 - n - end} bytes after the last tensor")
    return header, meta


def _entry_problem(entry) -> str | None:
    """Why a header entry is not {dtype, shape, data_offsets} of a known, sized tensor."""
    if not isinstance(entry, dict):
        return "is not described by an object"
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in _ST_DTYPES:
        return f"has dtype {str(dtype)[:20]!r}; allowed: {', '.join(_ST_DTYPES)}"
    if not isinstance(shape, list) or not all(_natural(d) for d in shape):
        return "has a shape that is not a list of sizes"
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_natural, offsets))
            and offsets[0] <= offsets[1]):
        return f"has nonsense data_offsets {str(offsets)[:60]}"
    need = math.prod(shape) * _ST_DTYPES[dtype][0]
    if offsets[1] - offsets[0] != need:
        return (f"has data_offsets spanning {offsets[1] - offsets[0]} bytes for a "
                f"{dtype} tensor of shape {shape} ({need} bytes)")
    return None


def _natural(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def _json_depth(raw: bytes) -> int:
    """How deep brackets nest in JSON text (strings skipped), without parsing it."""
    code = np.frombuffer(_JSON_STRING.sub(b'""', raw), np.uint8)
    step = (np.isin(code, (ord("{"), ord("["))).astype(np.int64)
            - np.isin(code, (ord("}"), ord("]"))))
    return int(np.cumsum(step).max()) if step.size else 0


def _split_keys(path: Path, entries: dict) -> dict[str, dict]:
    split: dict[str, dict] = {"modelR": {}, "modelC": {}}
    stray = []
    for key, value in entries.items():
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
    return split


def _width_from_header(entries_r: dict, meta: dict, path: Path) -> float:
    first = entries_r.get("layers.1.conv3d.weight", {}).get("shape")
    return _pick_width(meta, width_from_first_layer(first), path)


def _width(state_r: dict, meta: dict, path: Path | str = "") -> float:
    """The width to build: stored metadata wins (the first layer's channel count cannot
    undo scaled()'s rounding for every width); LayoutError when it is no sensible width."""
    weight = state_r.get("layers.1.conv3d.weight")
    inferred = width_from_first_layer(weight.shape) if isinstance(weight, torch.Tensor) else None
    return _pick_width(meta, inferred, path)


def _pick_width(meta: dict, inferred: float | None, path) -> float:
    stored = meta.get("width")
    try:
        return parse_width(stored if stored else 1.0 if inferred is None else inferred)
    except LayoutError as e:
        where = "its metadata" if stored else "its first layer"
        raise LayoutError(f"{path}: {where} gives a {e}") from None


def _few(keys: list[str]) -> str:
    more = f" (+{len(keys) - _SHOWN} more)" if len(keys) > _SHOWN else ""
    return ", ".join(repr(k[:80]) for k in keys[:_SHOWN]) + more


def load_checkpoint(path, device="cpu", expected_md5: str | None = None
                    ) -> tuple[NetworkR, NetworkC]:
    """Build both networks from a weights file, in eval mode on `device`.

    `expected_md5` insists on one exact file (e.g. the authors' release). Both models get
    `.name` (the stored name, else the file name), `.width` and `.meta` (the file's
    metadata, see `read_state_dicts`). To search the usual places for a file, use
    `vsremaster.weights.load_weights`.
    """
    if path is None:
        raise TypeError("load_checkpoint needs a weights file; "
                        "vsremaster.weights.load_weights searches for one")
    path = Path(path)
    if expected_md5:
        verify_md5(_existing_file(path), expected_md5)
    state_r, state_c, meta = read_state_dicts(path)
    width = _width(state_r, meta, path)
    models = []
    for label, cls, state in (("modelR", NetworkR, state_r), ("modelC", NetworkC, state_c)):
        model = cls(width)
        model.load_state_dict(state)
        model.name, model.width, model.meta = meta["name"], width, meta
        models.append(model.eval().to(device))
    return models[0], models[1]
