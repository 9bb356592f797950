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

import cv2
import numpy as np
import pytest
import torch
import vapoursynth as vs

import vsremaster
from clips import from_arrays, moving_pattern
from vsremaster import limits
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
    refused(path, "20.0 GB, more than the 530.3 MB allowed for weights", "in float64")
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


# -- the filter: shared pieces ------------------------------------------------------------------
H, W = 48, 64
SMALL = dict(mindim=48, ref_mindim=32, device_index=-1)


@pytest.fixture
def quiet(tmp_path, monkeypatch):
    """An empty working directory and temp directory that must stay empty (nothing is
    half-written on the way to an error)."""
    work, temp = tmp_path / "cwd", tmp_path / "tmp"
    work.mkdir()
    temp.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("TMPDIR", str(temp))
    yield tmp_path
    assert list(work.iterdir()) == [] and list(temp.iterdir()) == []


def status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (VmRSS, VmHWM), in MB."""
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def reset_peak_mb() -> float | None:
    """Reset this process's peak resident memory (VmHWM) to its current RSS and return
    it, in MB; None where the kernel cannot (Linux 4.0+ can: "5" to clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return None
    return status_mb("VmHWM")


PEAK_RESETS = reset_peak_mb() is not None


def rejects(call, *fragments, grows_mb: float = 300) -> str:
    """call() raises vs.Error("Remaster: ...") with every fragment, in seconds, without
    the process's resident memory peaking more than `grows_mb` above what it was before.

    The peak is the call's own: it is reset to the current RSS first (where the kernel
    can), so a higher peak of an earlier test does not hide this one's."""
    before = reset_peak_mb()
    with pytest.raises(vs.Error) as info:
        finishes(call)
    message = str(info.value)
    # VapourSynth puts a traceback before an error raised inside a frame request
    message = message.rsplit("vapoursynth.Error: ", 1)[-1] if "Traceback" in message else message
    assert message.startswith("Remaster: "), message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    if before is not None:
        grew = status_mb("VmHWM") - before
        assert grew < grows_mb, f"peak memory grew {grew:.0f} MB"
    return message


def grey(n: int = 6, fmt=vs.GRAY8, **kw) -> vs.VideoNode:
    return from_arrays(moving_pattern(n, H, W, seed=5), fmt, **kw)


def remaster(clip, weights, **kw):
    return lambda: vsremaster.Remaster(clip, weights=weights, **{**SMALL, **kw})


@pytest.mark.skipif(not PEAK_RESETS, reason="the kernel cannot reset the peak RSS "
                    "(/proc/self/clear_refs, Linux 4.0+): rejects() checks no memory")
def test_the_memory_check_catches_a_blow_up(lite_weights):
    """`rejects` fails a call that peaks 400 MB above its start, even after the process
    peaked higher before (as earlier tests make it)."""
    np.ones(600 << 20, np.uint8).sum()             # an earlier, higher peak, given back

    def blow_up():
        hog = np.ones(400 << 20, np.uint8)          # touched: resident
        raise vs.Error(f"Remaster: refused after taking {hog.nbytes >> 20} MB")
    with pytest.raises(AssertionError, match=r"peak memory grew [4-9]\d\d MB"):
        rejects(blow_up, "refused")
    rejects(remaster(grey(), lite_weights, mindim=4320), "mindim 4320")     # a real one passes


def with_props(clip: vs.VideoNode, frames=None, **props) -> vs.VideoNode:
    """`clip` with props set on `frames` (all when None), any type VapourSynth stores."""
    def put(n, f):
        if frames is not None and n not in frames:
            return f
        f = f.copy()
        for key, value in props.items():
            f.props[key] = value
        return f
    return core.std.ModifyFrame(clip, clip, put)


def png(path: Path, h: int = 40, w: int = 56) -> Path:
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : w // 2] = (30, 60, 200)
    img[: h // 2, w // 2:] = (200, 180, 20)
    cv2.imwrite(str(path), img)
    return path


def png_header(path: Path, width: int, height: int, bits: int = 16, colour: int = 6) -> Path:
    """Only a PNG's signature and IHDR chunk: what it claims, with no pixels behind it."""
    ihdr = struct.pack(">IIBBBBB", width, height, bits, colour, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + b"\0\0\0\0"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk)
    return path


# -- reference images ---------------------------------------------------------------------------

def test_png_header_claiming_20000x20000_at_16_bit(lite_weights, quiet, tmp_path):
    huge = png_header(tmp_path / "ref_000000.png", 20000, 20000)
    rejects(remaster(grey(), lite_weights, refs=[huge]), "refs image", "ref_000000.png",
            "is 20000x20000 (400.0 megapixels)", "allowed: at most 50 megapixels")


def test_header_within_pixels_but_too_many_decoded_bytes(lite_weights, quiet, tmp_path):
    deep = png_header(tmp_path / "deep.png", 8000, 6000, bits=16, colour=6)
    rejects(remaster(grey(), lite_weights, refs=[deep]), "deep.png",
            "(8000x6000 PNG, 4x16 bit) decodes to 384.0 MB", "at most 320.0 MB decoded")


def _jpeg_header(path: Path, width: int, height: int) -> Path:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\x01\x11\0" * 3
    path.write_bytes(b"\xff\xd8" + app0 + sof + b"\xff\xd9")
    return path


def _bmp_header(path: Path, width: int, height: int) -> Path:
    info = struct.pack("<IiiHHIIiiII", 40, width, -height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    path.write_bytes(b"BM" + struct.pack("<IHHI", 54, 0, 0, 54) + info)
    return path


def _tiff_header(path: Path, width: int, height: int) -> Path:
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (277, 3, 1, 3)]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries)
    path.write_bytes(b"II*\0" + struct.pack("<I", 8) + ifd + b"\0\0\0\0")
    return path


def _webp_header(path: Path, width: int, height: int) -> Path:
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\0\0\0\0" + (width - 1).to_bytes(3, "little") \
        + (height - 1).to_bytes(3, "little")
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x)
    return path


@pytest.mark.parametrize("write,name", [(_jpeg_header, "a.jpg"), (_bmp_header, "a.bmp"),
                                        (_tiff_header, "a.tif"), (_webp_header, "a.webp")])
def test_other_formats_claiming_huge_sizes(lite_weights, quiet, tmp_path, write, name):
    path = write(tmp_path / name, 60000, 30000)
    rejects(remaster(grey(), lite_weights, refs=[path]), name, "is 60000x30000 (1800.0 megapixels)")
    # the same writers at a small size give headers the probe reads as they are
    from vsremaster.references.imageinfo import probe
    with open(write(tmp_path / ("small-" + name), 64, 48), "rb") as f:
        info = probe(f)
    assert (info.width, info.height) == (64, 48)


def test_extreme_aspect_reference(lite_weights, quiet, tmp_path):
    strip = png_header(tmp_path / "strip.png", 100000, 1, bits=8, colour=2)
    rejects(remaster(grey(), lite_weights, refs=[strip]), "strip.png",
            "is 100000x1 (aspect 100000.0:1)", "allowed: an aspect of at most 8:1")
    # a real, decodable image just past the limit: refused from its header as well
    wide = png(tmp_path / "wide.png", h=10, w=90)
    rejects(remaster(grey(), lite_weights, refs=[wide]), "wide.png", "aspect 9.0:1")


def test_truncated_image_header(lite_weights, quiet, tmp_path):
    cut = tmp_path / "cut.png"
    cut.write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0")
    rejects(remaster(grey(), lite_weights, refs=[cut]), "cut.png", "is not a readable image",
            "cut short")


def test_sparse_reference_file(lite_weights, quiet, tmp_path):
    sparse = tmp_path / "ref_000000.png"
    with open(sparse, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.truncate(20 * 10**9)
    rejects(remaster(grey(), lite_weights, refs=[sparse]), "ref_000000.png", "is 20.0 GB",
            "320.0 MB allowed for a reference image")


@needs_fifo
def test_fifo_as_reference(lite_weights, quiet, tmp_path):
    folder = tmp_path / "refs"
    folder.mkdir()
    png(folder / "ref_000000.png")
    pipe = fifo(folder / "ref_000004.png")
    try:
        rejects(remaster(grey(), lite_weights, refs=[pipe]), "ref_000004.png",
                "is a FIFO (named pipe), not a regular file")
        rejects(remaster(grey(), lite_weights, refs=folder), "refs directory",
                "holds 'ref_000004.png', a FIFO (named pipe); allowed: only image files")
        rejects(remaster(grey(), lite_weights, refs=str(pipe)), "refs",
                "is a FIFO (named pipe), not a directory")
    finally:
        release(pipe)


def test_device_as_reference(lite_weights, quiet):
    rejects(remaster(grey(), lite_weights, refs=["/dev/zero"]), "refs image '/dev/zero'",
            "is a character device")


def test_dangling_link_in_refs_directory(lite_weights, quiet, tmp_path):
    folder = tmp_path / "refs"
    folder.mkdir()
    png(folder / "ref_000000.png")
    (folder / "ref_000009.png").symlink_to(tmp_path / "gone.png")
    rejects(remaster(grey(), lite_weights, refs=folder), "'ref_000009.png', a link to nothing")


def test_bank_index_limit(lite_weights, quiet, tmp_path, monkeypatch):
    """No count limit: what choosing keeps per reference is, counted before reading."""
    one = png(tmp_path / "one.png")
    n = 200
    monkeypatch.setattr(limits, "MAX_BANK_INDEX_BYTES", 20_000)
    rejects(remaster(grey(), lite_weights, refs=[one] * n), f"refs ({n} images) take",
            "to choose from", "allowed: at most 20.0 kB")
    folder = tmp_path / "many"
    folder.mkdir()
    data = one.read_bytes()
    for i in range(n):
        (folder / f"ref_{i:06d}.png").write_bytes(data)
    rejects(remaster(grey(), lite_weights, refs=folder), "refs directory", "its first",
            "to choose from")
    bank = core.std.BlankClip(format=vs.RGB24, width=32, height=32, length=n)
    rejects(remaster(grey(), lite_weights, refs=bank), "refs clip (a bank", "to choose from")


def test_reference_clip_of_extreme_size(lite_weights, quiet):
    strip = core.std.BlankClip(format=vs.RGB24, width=4000, height=16, length=2)
    rejects(remaster(grey(), lite_weights, refs=strip), "refs clip is 4000x16 (aspect 250.0:1)")
    mixed = core.std.Splice([core.std.BlankClip(format=vs.RGB24, width=64, height=48, length=1,
                                                color=[200, 10, 10]),
                             core.std.BlankClip(format=vs.RGB24, width=640, height=16,
                                                length=1)], mismatch=True)
    rejects(remaster(grey(), lite_weights, refs=mixed),
            "refs clip frame 1 is 640x16 (aspect 40.0:1)")


# -- frame props --------------------------------------------------------------------------------

def bank_with_anchor(value) -> vs.VideoNode:
    colour = np.stack([moving_pattern(2, 32, 48, seed=s) for s in (1, 2, 3)], axis=1)
    return with_props(from_arrays(colour, vs.RGB24), frames={1}, _RemasterAnchor=value)


@pytest.mark.parametrize("value,fragment", [
    ("3", "is a str ('3')"), (b"3", "is a bytes (b'3')"), (math.nan, "is a float (nan)"),
    (3.0, "is a float (3.0)"), ([1, 2], "is an array of 2 values"), (-4, "is -4")])
def test_anchor_prop_of_a_wrong_type(lite_weights, quiet, value, fragment):
    rejects(remaster(grey(), lite_weights, refs=bank_with_anchor(value)),
            "refs clip frame 1: _RemasterAnchor", fragment, "allowed:")


def test_anchor_prop_that_is_fine(lite_weights):
    from vsremaster.remaster import build
    pipe = build(grey(), refs=bank_with_anchor(4), weights=lite_weights, **SMALL)
    assert pipe.bank.anchors == [None, 4]


@pytest.mark.parametrize("fmt,key,value,fragment", [
    (vs.YUV420P8, "_Matrix", "abc", "_Matrix is a str ('abc'); allowed: an integer"),
    (vs.YUV420P8, "_Matrix", b"x", "_Matrix is a bytes"),
    (vs.YUV420P8, "_Matrix", math.nan, "_Matrix is a float (nan)"),
    (vs.YUV420P8, "_Matrix", [1, 2], "_Matrix is an array of 2 values"),
    (vs.YUV420P8, "_Matrix", 99, "_Matrix is 99; allowed: 0 (RGB (read as BT.709)), 1 (BT.709)"),
    (vs.YUV420P8, "_Matrix", 12, "_Matrix is 12"),
    (vs.RGB24, "_Matrix", 1, "_Matrix is 1; allowed: 0 (RGB) or 2 (unspecified)"),
    (vs.GRAY8, "_Range", 5, "_Range is 5; allowed: 0 (limited) or 1 (full)"),
    (vs.GRAY8, "_Range", "full", "_Range is a str"),
    (vs.RGB24, "_Range", math.nan, "_Range is a float (nan)"),
    (vs.YUV420P8, "_ColorRange", 3, "Range is 3; allowed: 0 ("),   # R74+ stores it as _Range
    (vs.GRAY8, "_Transfer", 99, "_Transfer is 99; allowed: one of 1-2, 4-18 (ITU-T H.273)"),
    (vs.YUV420P8, "_Primaries", 3, "_Primaries is 3; allowed: one of 1-2, 4-12, 22"),
])
def test_colour_props_of_frame_0(lite_weights, quiet, fmt, key, value, fragment):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)       # _ColorRange
        clip = with_props(grey(fmt=fmt), **{key: value})
        # frame 0 is checked when the script runs: a plain error at creation, no traceback
        with pytest.raises(vs.Error) as info:
            finishes(remaster(clip, lite_weights))
        assert str(info.value).startswith("Remaster: clip frame 0: "), str(info.value)
        assert fragment in str(info.value)


def test_matrix_of_a_grey_clip_is_not_read(lite_weights):
    """Documented: GRAY has no matrix; whatever _Matrix says is kept, never read."""
    clip = with_props(grey(), _Matrix="abc")
    out = vsremaster.Remaster(clip, weights=lite_weights, **SMALL)
    assert out.get_frame(1).props["_Matrix"] == 1      # GRAY in gives BT.709 YUV out


def test_bad_range_on_a_later_frame_fails_the_scan_with_a_frame_number(lite_weights, quiet):
    clip = with_props(grey(), frames={3}, _Range=5)
    rejects(lambda: remaster(clip, lite_weights)().get_frame(0), "Remaster: clip frame 3: could "
            "not be read while scanning for scenes", "_Range")


@pytest.mark.parametrize("value,fragment", [
    ("x", "_SceneChangePrev is a str ('x'); allowed: an integer"),
    (math.nan, "_SceneChangePrev is the float nan; allowed: 0 or 1"),
    (0.5, "is the float 0.5"),
    ([1, 0], "_SceneChangePrev is an array of 2 values"),
    (b"\x01", "is a bytes")])
def test_scene_change_props_of_a_wrong_type(lite_weights, quiet, value, fragment):
    clip = with_props(grey(), frames={2}, _SceneChangePrev=value)
    rejects(lambda: remaster(clip, lite_weights)().get_frame(0), "Remaster: clip frame 2: ",
            fragment)


def test_scene_change_as_float_one_is_a_cut(lite_weights):
    from vsremaster.remaster import build
    # scene-change filters mark every frame; frame 0 says the props are there
    clip = with_props(with_props(grey(), frames={2}, _SceneChangePrev=1.0), frames={0},
                      _SceneChangePrev=0.0)
    assert build(clip, weights=lite_weights, **SMALL).scene_starts() == [0, 2]


def test_source_frame_failing_during_the_scan(lite_weights, quiet):
    clip = grey()

    def boom(n, f):
        if n == 4:
            raise ValueError("the decoder lost its place")
        return f
    broken = core.std.ModifyFrame(clip, clip, boom)
    rejects(lambda: remaster(broken, lite_weights)().get_frame(0), "Remaster: clip frame 4: could "
            "not be read while scanning for scenes", "the decoder lost its place")


# -- arguments that size the work ---------------------------------------------------------------

def test_mindim_per_device(lite_weights, quiet):
    rejects(remaster(grey(), lite_weights, mindim=limits.MAX_MINDIM["cpu"] + 16),
            f"Remaster: mindim {limits.MAX_MINDIM['cpu'] + 16} is too large for the CPU",
            f"allowed: at most {limits.MAX_MINDIM['cpu']} there")
    rejects(remaster(grey(), lite_weights, mindim=4320), "mindim 4320 is too large for the CPU")
    rejects(remaster(grey(), lite_weights, ref_mindim=limits.MAX_REF_MINDIM["cpu"] + 16),
            "Remaster: ref_mindim", "too large for the CPU")


def test_extreme_aspect_clip(lite_weights, quiet):
    strip = core.std.BlankClip(format=vs.GRAY8, width=1000, height=16, length=2)
    rejects(remaster(strip, lite_weights), "Remaster: clip is 1000x16 (aspect 62.5:1)",
            "allowed: an aspect of at most 8:1")


def test_reference_canvas_limit(lite_weights, quiet, tmp_path):
    # no number ends the names: unanchored, so all 64 can join one scene's set
    wide = [png(tmp_path / f"wide{i}_ref.png", h=16, w=128) for i in range(64)]
    # a scene's set is chosen when the scene is first needed: its first frame fails
    rejects(lambda: remaster(grey(), lite_weights, refs=wide, max_refs=64, ref_mindim=512)()
            .get_frame(0),
            "Remaster: frame 0: ref_mindim 512 makes scene 0's 64 references a 64x4096x512 "
            "canvas", "(134.2 megapixels)", "at most 16 megapixels per scene")
