"""Hostile inputs: no hang, no memory blow-up, no raw traceback, no silent garbage.

Every input here is made by the test and is small: a header that claims a huge image or
tensor stands in for the huge file, a sparse file for a big one, os.mkfifo for a pipe.
Each case must end in a clear error (or a documented fallback) within seconds.
"""
from __future__ import annotations

import json
import math
import os
import struct
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import vapoursynth as vs

import vsremaster
from conftest import golden_state_dicts
from vsremaster.files import FileMissing, FileRefused, check_regular_file, open_regular
from vsremaster.limits import is_out_of_memory
from vsremaster.model.checkpoint import (MAX_HEADER_BYTES, CheckpointError, load_checkpoint,
                                         max_file_bytes, read_state_dicts, save_checkpoint)

core = vs.core
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")


def finishes(call, seconds: float = 20):
    """call() in a thread; fail (rather than hang the suite) if it has not returned in time."""
    result = {}

    def run():
        try:
            result["value"] = call()
        except BaseException as e:       # noqa: BLE001 - handed to the test below
            result["error"] = e
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s (a hang)"
    if "error" in result:
        raise result["error"]
    return result.get("value")


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def release(path: Path) -> None:
    """Open a FIFO for writing once, so a reader stuck on it (a failed test) wakes up."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


# -- opening files -----------------------------------------------------------------------

@needs_fifo
def test_fifo_is_refused_unopened(tmp_path):
    pipe = fifo(tmp_path / "pipe")
    try:
        with pytest.raises(FileRefused, match=r"is a FIFO \(named pipe\), not a regular file"):
            finishes(lambda: open_regular(pipe))
    finally:
        release(pipe)


def test_devices_directories_and_missing_files_are_refused(tmp_path):
    with pytest.raises(FileRefused, match="is a character device"):
        check_regular_file("/dev/zero")
    with pytest.raises(FileRefused, match="is a directory"):
        open_regular(tmp_path)
    with pytest.raises(FileMissing, match="no such file"):
        open_regular(tmp_path / "nothing")


def test_size_limit_reads_nothing(tmp_path):
    sparse = tmp_path / "sparse.bin"
    with open(sparse, "wb") as f:
        f.truncate(20 * 10**9)                   # 20 GB that take no disk space
    with pytest.raises(FileRefused, match=r"is 20.0 GB, more than the 1.0 MB allowed"):
        finishes(lambda: open_regular(sparse, max_bytes=10**6))
    (tmp_path / "link").symlink_to(sparse)
    with pytest.raises(FileRefused, match="20.0 GB"):
        check_regular_file(tmp_path / "link", max_bytes=10**6)
    assert check_regular_file(sparse) == 20 * 10**9     # no limit, no refusal


# -- recognising allocation failures ------------------------------------------------------

def test_is_out_of_memory_recognises_host_and_device_failures():
    assert is_out_of_memory(MemoryError())
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate"))
    with pytest.raises(RuntimeError) as real:    # torch's own CPU allocator, for real
        torch.empty(1 << 62, dtype=torch.uint8)
    assert is_out_of_memory(real.value), real.value
    with pytest.raises(MemoryError) as numpy_oom:
        np.empty(1 << 62, np.uint8)
    assert is_out_of_memory(numpy_oom.value)
    assert is_out_of_memory(RuntimeError("DefaultCPUAllocator: not enough memory: you tried "
                                         "to allocate 80000000000 bytes."))
    assert is_out_of_memory(RuntimeError("CUDA error: out of memory"))
    wrapped = ValueError("frame 3 failed")
    wrapped.__cause__ = MemoryError()
    assert is_out_of_memory(wrapped)
    for other in (RuntimeError("Given groups=1, weight of size [64, 1, 3, 3, 3], expected "
                               "input to have 1 channels"), ValueError("bad frame"),
                  vs.Error("Resize error: bad _Range value: 5"), KeyError("x")):
        assert not is_out_of_memory(other), other


# -- weights: crafted safetensors headers ---------------------------------------------------

@pytest.fixture(scope="module")
def lite_dicts() -> tuple[dict, dict]:
    return golden_state_dicts(0.25)


@pytest.fixture
def lite(lite_dicts) -> tuple[dict, dict]:
    return tuple(dict(d) for d in lite_dicts)


def header_of(path: Path) -> tuple[dict, bytes]:
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


def write_raw(path: Path, header, data: bytes = b"") -> Path:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def refused(path, *fragments) -> str:
    with pytest.raises(CheckpointError) as info:
        finishes(lambda: load_checkpoint(path))
    message = str(info.value)
    assert message.startswith(str(path)), message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


@pytest.fixture
def lite_file(lite, tmp_path) -> Path:
    return save_checkpoint(tmp_path / "lite.safetensors", *lite, name="lite", width="0.25")


def test_header_claiming_a_huge_tensor_reads_nothing(lite_file, tmp_path):
    header, data = header_of(lite_file)
    key = max((k for k in header if k != "__metadata__"),
              key=lambda k: header[k]["data_offsets"][1])     # the last tensor in the data
    start = header[key]["data_offsets"][0]
    # shape and offsets agree, and promise 2^40 floats: refused from the header alone
    header[key] = {"dtype": "F32", "shape": [1 << 20, 1 << 20],
                   "data_offsets": [start, start + (4 << 40)]}
    refused(write_raw(tmp_path / "huge.safetensors", header, data), "truncated")
    # offsets that do not match the shape
    header[key]["data_offsets"] = [start, start + 4]
    refused(write_raw(tmp_path / "lying.safetensors", header, data), key,
            "data_offsets spanning 4 bytes", "4398046511104 bytes")


def test_header_shapes_are_checked_against_the_architecture_before_reading(lite_file, tmp_path):
    header, data = header_of(lite_file)
    key = "modelC.conv2.conv3d.weight"
    shape = header[key]["shape"]
    # the same bytes described as another shape: only the header can tell
    header[key]["shape"] = [shape[0] * 2, shape[1] // 2] + shape[2:]
    refused(write_raw(tmp_path / "reshaped.safetensors", header, data),
            "modelC: 1 tensor with the wrong shape", "'conv2.conv3d.weight'",
            f"expected {tuple(shape)}")


@pytest.mark.parametrize("width,why", [("nan", "'nan'"), ("1e9", "'1e9'"), ("-0.25", "'-0.25'"),
                                       ("inf", "'inf'"), ("wide", "'wide'"), ("0", "'0'")])
def test_nonsense_width_in_metadata(lite, tmp_path, width, why):
    path = save_checkpoint(tmp_path / "w.safetensors", *lite, width=width)
    refused(path, "network width", why, "not a number in (0, 1]")


def test_header_nested_too_deep(tmp_path):
    deep = b'{"modelR.x": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    refused(write_raw(tmp_path / "deep.safetensors", deep), "nests deeper")
    # inside strings, brackets are text, not nesting
    legit = {"__metadata__": {"note": "[[[[{{{{"}}
    refused(write_raw(tmp_path / "text.safetensors", legit), "no 'modelR' or 'modelC' tensors")


def test_header_size_claims_are_bounded(tmp_path):
    path = tmp_path / "claims.safetensors"
    path.write_bytes(struct.pack("<Q", 1 << 30) + b'{"a": 1}')
    refused(path, "header claims 1.1 GB", "at most")
    assert MAX_HEADER_BYTES < 1 << 30


@pytest.mark.parametrize("offsets", [[10, 5], [-1, 4], ["a", 4], [0], [0, 1.5], None,
                                     [0, 10**30]])
def test_nonsense_data_offsets(tmp_path, offsets):
    header = {"modelR.a": {"dtype": "F32", "shape": [1], "data_offsets": offsets}}
    refused(write_raw(tmp_path / "o.safetensors", header, b"\0" * 4), "'modelR.a'",
            "nonsense data_offsets" if offsets != [0, 10**30] else "spanning")


def test_overlapping_tensors_and_gaps(tmp_path):
    both = {"modelR.a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
            "modelC.b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}
    refused(write_raw(tmp_path / "overlap.safetensors", both, b"\0" * 12), "overlapping")
    both["modelC.b"]["data_offsets"] = [12, 20]
    refused(write_raw(tmp_path / "gap.safetensors", both, b"\0" * 20), "or a gap")
    both["modelC.b"]["data_offsets"] = [8, 16]
    refused(write_raw(tmp_path / "trailing.safetensors", both, b"\0" * 20),
            "4 bytes after the last tensor")


@pytest.mark.parametrize("entry,why", [
    ({"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}, "dtype 'F8_E4M3'"),
    ({"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}, "shape that is not"),
    ({"dtype": "F32", "shape": "big", "data_offsets": [0, 4]}, "shape that is not"),
    ([1, 2, 3], "not described by an object"),
])
def test_malformed_entries(tmp_path, entry, why):
    refused(write_raw(tmp_path / "e.safetensors", {"modelR.a": entry}, b"\0" * 4), why)


def test_metadata_that_is_not_strings(tmp_path):
    header = {"__metadata__": {"width": [0.25]},
              "modelR.a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}
    refused(write_raw(tmp_path / "m.safetensors", header, b"\0" * 4), "not a map of strings")


# -- weights: values and types ---------------------------------------------------------------

def _authors(path: Path, state_r, state_c, legacy: bool = False) -> Path:
    torch.save({"modelR": state_r, "modelC": state_c}, path,
               _use_new_zipfile_serialization=not legacy)
    return path


WRITERS = {"safetensors": lambda p, r, c: save_checkpoint(p, r, c),
           "torch-zip": _authors,
           "torch-legacy": lambda p, r, c: _authors(p, r, c, legacy=True)}


@pytest.mark.parametrize("fmt", WRITERS)
def test_integer_weights_are_refused_not_cast(lite, tmp_path, fmt):
    state_r, state_c = lite
    state_c["conv2.conv3d.weight"] = (state_c["conv2.conv3d.weight"] * 100).to(torch.int32)
    refused(WRITERS[fmt](tmp_path / "int.bin", state_r, state_c), "modelC",
            "'conv2.conv3d.weight': integer, expected floating", "not converted")


@pytest.mark.parametrize("fmt", WRITERS)
def test_all_nan_weights_are_refused(lite, tmp_path, fmt):
    state_r, state_c = lite
    state_r = {k: torch.full_like(v, math.nan) if v.is_floating_point() else v
               for k, v in state_r.items()}
    refused(WRITERS[fmt](tmp_path / "nan.bin", state_r, state_c), "modelR",
            "holding NaN or infinite values", "(+")


def test_one_infinite_value_is_refused(lite, tmp_path):
    state_r, state_c = lite
    weight = state_c["up4.1.weight"].clone()
    weight.view(-1)[3] = math.inf
    state_c["up4.1.weight"] = weight
    refused(save_checkpoint(tmp_path / "inf.safetensors", state_r, state_c),
            "modelC: 1 tensor holding NaN or infinite values: 'up4.1.weight'")


def test_negative_batchnorm_variance_is_refused(lite, tmp_path):
    state_r, state_c = lite
    state_r["layers.3.bn.running_var"] = -state_r["layers.3.bn.running_var"].abs() - 1
    refused(save_checkpoint(tmp_path / "var.safetensors", state_r, state_c),
            "BatchNorm variance", "'layers.3.bn.running_var'")


def test_half_precision_weights_still_load(lite, tmp_path):
    """Floating point of another precision is fine (it is converted once, exactly)."""
    state_r, state_c = lite
    half = {k: v.half() if v.is_floating_point() else v for k, v in state_c.items()}
    model_r, model_c = load_checkpoint(save_checkpoint(tmp_path / "half.safetensors",
                                                       state_r, half))
    assert model_c.conv2.conv3d.weight.dtype == torch.float32


# -- weights: files that are not what they claim ---------------------------------------------

@needs_fifo
def test_fifo_as_weights(tmp_path):
    pipe = fifo(tmp_path / "remasternet.pth.tar")
    try:
        refused(pipe, "FIFO")
        with pytest.raises(vs.Error, match=r"^Remaster: weights: .*FIFO"):
            finishes(lambda: vsremaster.Remaster(core.std.BlankClip(format=vs.GRAY8, length=2),
                                                 weights=pipe, device_index=-1))
    finally:
        release(pipe)


def test_device_as_weights():
    refused(Path("/dev/zero"), "character device")


def test_sparse_file_as_weights(tmp_path):
    path = tmp_path / "remasternet.pth.tar"
    with open(path, "wb") as f:
        f.write(b"PK\x03\x04")
        f.truncate(20 * 10**9)
    refused(path, "20.0 GB", "float64 are smaller")
    assert 245e6 < max_file_bytes() < 1e9


def test_zip_with_too_many_entries(tmp_path):
    path = tmp_path / "many.pth.tar"
    with zipfile.ZipFile(path, "w") as z:
        for i in range(5000):
            z.writestr(f"archive/data/{i}", b"")
    refused(path, "lists 5000 entries", "a few hundred")


def test_zip_bomb(tmp_path):
    path = tmp_path / "bomb.pth.tar"
    chunk = b"\0" * (1 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        z.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        with z.open("archive/data/0", "w", force_zip64=True) as entry:
            for _ in range(max_file_bytes() // len(chunk) + 1):
                entry.write(chunk)
    assert path.stat().st_size < 4 << 20
    refused(path, "unpack to", "more than")


def test_zip_with_a_huge_pickle(tmp_path):
    path = tmp_path / "pickle.pth.tar"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        z.writestr("archive/data.pkl", b"\0" * (17 << 20))
    refused(path, "data.pkl is 17.8 MB")


def test_valid_files_pass_every_check(lite, tmp_path):
    for fmt, write in WRITERS.items():
        state_r, state_c, meta = read_state_dicts(write(tmp_path / f"ok.{fmt}", *lite))
        assert meta["file_format"] == fmt and len(state_r) == 86 and len(state_c) == 261
