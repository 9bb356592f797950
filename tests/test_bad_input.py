"""Bad input: a clear `vs.Error` when the script runs, before any frame is rendered.

Every message starts with "Remaster: " and the argument's name, and says what is
allowed. Nothing is written anywhere on the way (the working directory and the temp
directory stay empty), and no source frame is read for an argument that can be
checked without reading one.
"""
from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import vapoursynth as vs
from torch import nn

import vsremaster
from vsremaster.engine.models import cpu_bfloat16
from vsremaster.engine import models as shared
from vsremaster.model.checkpoint import save_checkpoint
from vsremaster.remaster import build
from clips import from_arrays, moving_pattern, planes, scene_props

core = vs.core
H, W = 48, 64
SMALL = dict(mindim=48, ref_mindim=32, device_index=-1)


class Counted:
    """A source clip that counts the frames VapourSynth asks it for."""

    def __init__(self, clip: vs.VideoNode):
        self.calls = 0

        def count(n, f):
            self.calls += 1
            return f
        self.clip = core.std.ModifyFrame(clip, clip, count)


@pytest.fixture
def source():
    return Counted(from_arrays(moving_pattern(6, H, W, seed=3), vs.GRAY8))


@pytest.fixture
def quiet(tmp_path, monkeypatch):
    """Run in an empty working directory with an empty temp directory; both stay empty."""
    work, temp = tmp_path / "cwd", tmp_path / "tmp"
    work.mkdir()
    temp.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    yield tmp_path
    assert list(work.iterdir()) == [] and list(temp.iterdir()) == []


def rejects(call, argument: str, *fragments: str) -> str:
    """Assert `call()` raises vs.Error "Remaster: <argument>..." saying what is allowed."""
    with pytest.raises(vs.Error) as info:
        call()
    message = str(info.value)
    assert message.startswith(f"Remaster: {argument}"), message
    assert any(w in message for w in ("allowed", "must be", "remasternet.pth.tar")), message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


def remaster(src: Counted | vs.VideoNode, weights, **kwargs):
    clip = src.clip if isinstance(src, Counted) else src
    return lambda: vsremaster.Remaster(clip, weights=weights, **{**SMALL, **kwargs})


# -- the clip ---------------------------------------------------------------------------

@pytest.mark.parametrize("thing", [None, "clip.mp4", np.zeros((4, 48, 64), np.float32), 3,
                                   core.std.BlankAudio(length=100)],
                         ids=["None", "str", "ndarray", "int", "audio"])
def test_not_a_clip(lite_weights, quiet, thing):
    rejects(lambda: vsremaster.Remaster(thing, weights=lite_weights), "clip",
            "must be a vapoursynth.VideoNode", type(thing).__name__)


def test_variable_format(lite_weights, quiet):
    a = Counted(core.std.Splice([core.std.BlankClip(format=vs.GRAY8, width=W, height=H, length=3),
                                 core.std.BlankClip(format=vs.YUV420P8, width=W, height=H, length=3)],
                                mismatch=True))
    rejects(remaster(a, lite_weights), "clip", "variable format", "allowed: a constant GRAY")
    assert a.calls == 0


def test_variable_size(lite_weights, quiet):
    a = Counted(core.std.Splice([core.std.BlankClip(format=vs.GRAY8, width=W, height=H, length=3),
                                 core.std.BlankClip(format=vs.GRAY8, width=80, height=H, length=3)],
                                mismatch=True))
    rejects(remaster(a, lite_weights), "clip", "variable size", "constant size")
    assert a.calls == 0


# VapourSynth R81 makes integer formats of 8-32 bits; API 4 has no COMPAT family, and
# its UNDEFINED family only shows up as a variable format (tested above).
@pytest.mark.parametrize("family,bits", [(vs.GRAY, 32), (vs.YUV, 32), (vs.RGB, 24), (vs.GRAY, 17)])
def test_unsupported_integer_depth(lite_weights, quiet, family, bits):
    fmt = core.query_video_format(family, vs.INTEGER, bits, 0, 0)
    a = Counted(core.std.BlankClip(format=fmt.id, width=W, height=H, length=3))
    rejects(remaster(a, lite_weights), "clip", f"{bits}-bit integer samples", fmt.name,
            "allowed: GRAY, YUV or RGB with 8-16 bit integer or 16/32 bit float")
    assert a.calls == 0


def test_nine_bit_integer_is_fine(lite_weights):
    # the odd depths inside the range work (zimg reads them)
    fmt = core.query_video_format(vs.GRAY, vs.INTEGER, 9)
    clip = core.resize.Point(from_arrays(moving_pattern(3, H, W, seed=8), vs.GRAYS),
                             format=fmt.id, range_s="limited")
    out = vsremaster.Remaster(clip, weights=lite_weights, **SMALL)
    assert out.format.name == "YUV444P9"
    assert np.isfinite(planes(out.get_frame(1))[1].astype(np.float32)).all()


# -- the numbers --------------------------------------------------------------------------

INT_ARGS = {"mindim": (32, 4320), "ref_mindim": (32, 4320), "max_refs": (0, 64), "chunk": (1, 512)}


@pytest.mark.parametrize("name", INT_ARGS)
@pytest.mark.parametrize("kind", ["below", "above", "bool", "float", "str", "none"])
def test_integer_arguments(lite_weights, quiet, source, name, kind):
    lo, hi = INT_ARGS[name]
    value = {"below": lo - 1, "above": hi + 1, "bool": True, "float": float(lo + 16),
             "str": str(lo + 16), "none": None}[kind]
    if name == "chunk" and value is None:
        return                                   # chunk=None is the default
    rejects(remaster(source, lite_weights, **{name: value}), name,
            f"must be an integer from {lo} to {hi}", f"not {value!r}")
    assert source.calls == 0


@pytest.mark.parametrize("value", [0, -0.1, 1.5, float("nan"), float("inf"), True, "0.3", [0.2]])
def test_sc_threshold(lite_weights, quiet, source, value):
    rejects(remaster(source, lite_weights, sc_threshold=value), "sc_threshold",
            "must be a number in (0, 1]")
    assert source.calls == 0


@pytest.mark.parametrize("name", ["restore", "colorize"])
@pytest.mark.parametrize("value", [1, "yes", None])
def test_switches(lite_weights, quiet, source, name, value):
    rejects(remaster(source, lite_weights, **{name: value}), name, "must be True or False")
    assert source.calls == 0


# -- the device ---------------------------------------------------------------------------

@pytest.mark.skipif(cpu_bfloat16() is not None, reason="this CPU has bfloat16 hardware: "
                    "fp16=True runs bfloat16 (tests/test_precision.py)")
def test_fp16_on_a_cpu_without_bfloat16(lite_weights, quiet, source):
    rejects(remaster(source, lite_weights, fp16=True), "fp16",
            "needs bfloat16 hardware", "fp16=False or None")
    assert source.calls == 0


def test_fp16_not_a_bool(lite_weights, quiet, source):
    rejects(remaster(source, lite_weights, fp16="yes"), "fp16", "True, False or None")
    assert source.calls == 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
@pytest.mark.parametrize("index", [0, 1, 7])
def test_cuda_device_when_there_is_none(lite_weights, quiet, source, index):
    rejects(remaster(source, lite_weights, device_index=index), "device_index",
            f"device_index {index} names a CUDA device that does not exist",
            "no CUDA device", "allowed: None (auto) or -1 (CPU)")
    assert source.calls == 0


def test_missing_cuda_device_number(lite_weights, quiet, source):
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    rejects(remaster(source, lite_weights, device_index=count + 3), "device_index",
            "does not exist", "allowed: None (auto)")


@pytest.mark.parametrize("value", [-2, "0", "cuda", 0.0, True])
def test_device_index_of_the_wrong_kind(lite_weights, quiet, source, value):
    message = rejects(remaster(source, lite_weights, device_index=value), "device_index")
    assert "-1 (CPU)" in message
    assert source.calls == 0


# -- references -----------------------------------------------------------------------------

def write_png(path: Path, colour=(30, 60, 200)) -> Path:
    img = np.zeros((40, 56, 3), np.uint8)
    img[:] = colour
    img[8:30, 8:40] = 255 - np.array(colour, np.uint8)
    cv2.imwrite(str(path), img)
    return path


@pytest.fixture
def refs_dir(tmp_path) -> Path:
    d = tmp_path / "refs"
    d.mkdir()
    return d


def test_refs_directory_missing(lite_weights, quiet, source, tmp_path):
    rejects(remaster(source, lite_weights, refs=str(tmp_path / "nowhere")), "refs",
            "does not exist", "nowhere")
    assert source.calls == 0


def test_refs_directory_empty(lite_weights, quiet, source, refs_dir):
    rejects(remaster(source, lite_weights, refs=str(refs_dir)), "refs", "is empty")
    (refs_dir / ".hidden.png").write_bytes(b"")     # hidden files are not references
    (refs_dir / "sub").mkdir()                      # nor are folders
    rejects(remaster(source, lite_weights, refs=refs_dir), "refs", "is empty", ".png")
    assert source.calls == 0


def test_refs_directory_with_non_image_files(lite_weights, quiet, source, refs_dir):
    write_png(refs_dir / "ref_000000.png")
    (refs_dir / "notes.txt").write_text("colours of the opening scene")
    rejects(remaster(source, lite_weights, refs=refs_dir), "refs",
            "holds non-image files: notes.txt", "allowed: only image files (.bmp")
    assert source.calls == 0


def test_refs_path_is_a_file(lite_weights, quiet, source, refs_dir):
    png = write_png(refs_dir / "ref.png")
    rejects(remaster(source, lite_weights, refs=str(png)), "refs", "is a file, not a directory",
            "list of image file paths")


@pytest.mark.parametrize("damage", ["zero_bytes", "truncated_png", "truncated_jpeg", "text_as_png",
                                    "garbage_jpeg"])
def test_refs_corrupt_image(lite_weights, quiet, source, refs_dir, damage):
    good = write_png(refs_dir / "ref_000000.png")
    bad = refs_dir / ("ref_000003.jpg" if "jpeg" in damage else "ref_000003.png")
    if damage == "zero_bytes":
        bad.write_bytes(b"")
    elif damage == "truncated_png":
        data = good.read_bytes()
        bad.write_bytes(data[:len(data) // 2])
    elif damage == "truncated_jpeg":
        cv2.imwrite(str(bad), cv2.imread(str(good)))
        data = bad.read_bytes()
        bad.write_bytes(data[:len(data) // 2])
    elif damage == "text_as_png":
        bad.write_text("this is not an image\n")
    else:
        bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, np.uint8).tobytes())
    what = "is empty (0 bytes)" if damage == "zero_bytes" else "is not a readable image"
    for refs in (refs_dir, [good, bad]):
        rejects(remaster(source, lite_weights, refs=refs), "refs", bad.name, what,
                "allowed: image files")
    assert source.calls == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_refs_unreadable_image(lite_weights, quiet, source, refs_dir):
    png = write_png(refs_dir / "ref.png")
    png.chmod(0)
    try:
        rejects(remaster(source, lite_weights, refs=[png]), "refs", "cannot be read")
    finally:
        png.chmod(0o644)


def test_refs_list_problems(lite_weights, quiet, source, refs_dir):
    good = write_png(refs_dir / "a.png")
    rejects(remaster(source, lite_weights, refs=[]), "refs", "list is empty")
    rejects(remaster(source, lite_weights, refs=[good, refs_dir / "gone.png"]), "refs",
            "gone.png", "does not exist")
    rejects(remaster(source, lite_weights, refs=[good, refs_dir]), "refs",
            "is a directory, not a regular file")
    rejects(remaster(source, lite_weights, refs=[good, 3]), "refs",
            "holds a int (3); allowed: image file paths (str or os.PathLike) only")
    assert source.calls == 0


def test_refs_path_with_a_nul_byte(lite_weights, quiet, source, refs_dir):
    good = write_png(refs_dir / "a.png")
    for refs in (str(refs_dir) + "\0x", [good, str(refs_dir / "b\0.png")], Path("c\0")):
        rejects(remaster(source, lite_weights, refs=refs), "refs path",
                "holds a NUL byte; allowed: a path without NUL bytes")
    assert source.calls == 0


@pytest.mark.parametrize("value", [3, b"refs", {"a": 1}, np.zeros((3, 8, 8)),
                                   core.std.BlankAudio(length=10)],
                         ids=["int", "bytes", "dict", "ndarray", "audio"])
def test_refs_of_a_wrong_type(lite_weights, quiet, source, value):
    rejects(remaster(source, lite_weights, refs=value), "refs",
            "must be a clip, a directory of image files, a list of image file paths, or None",
            type(value).__name__)
    assert source.calls == 0


def test_refs_checked_even_without_colorizing(lite_weights, quiet, source):
    rejects(remaster(source, lite_weights, refs=3, colorize=False), "refs", "int")


def test_refs_clip_of_an_unsupported_format(lite_weights, quiet, source):
    fmt = core.query_video_format(vs.RGB, vs.INTEGER, 32)
    refs = core.std.BlankClip(format=fmt.id, width=32, height=32, length=2)
    rejects(remaster(source, lite_weights, refs=refs), "refs clip", "32-bit integer", "allowed")
    assert source.calls == 0


def test_refs_clip_with_unreadable_frames(lite_weights, quiet, source):
    # a variable-format clip is accepted, but each frame still has to be readable as RGB
    good = core.std.BlankClip(format=vs.RGB24, width=32, height=32, length=1, color=[200, 10, 10])
    bad = core.std.BlankClip(format=core.query_video_format(vs.RGB, vs.INTEGER, 32).id,
                             width=32, height=32, length=1)
    refs = core.std.Splice([good, bad], mismatch=True)
    rejects(remaster(source, lite_weights, refs=refs), "refs clip", "cannot be read as RGB",
            "allowed: frames in GRAY, YUV or RGB")


def mixed_refs(length: int) -> vs.VideoNode:
    """A refs clip whose format and size change from frame to frame (colours differ)."""
    parts = [core.std.BlankClip(format=vs.RGB24, width=40, height=40, length=1, color=[220, 30, 30]),
             core.std.BlankClip(format=vs.YUV420P8, width=64, height=48, length=1,
                                color=[120, 200, 60]),
             core.std.BlankClip(format=vs.RGBS, width=56, height=24, length=1,
                                color=[0.1, 0.3, 0.9]),
             core.std.BlankClip(format=vs.YUV444P16, width=32, height=32, length=1,
                                color=[30000, 20000, 45000])]
    parts = [core.std.AddBorders(p, right=8, color=[0] * 3 if p.format.color_family == vs.RGB
                                 else [16 << (p.format.bits_per_sample - 8)] + [128 << (
                                     p.format.bits_per_sample - 8)] * 2) for p in parts]
    clip = core.std.Splice((parts * length)[:length], mismatch=True)
    assert clip.format.id == 0 and clip.width == 0      # variable format and size
    return clip


def test_refs_clip_of_variable_format_and_size_is_accepted_as_a_bank(lite_weights):
    """Accepted (documented): each reference frame is converted to RGB24 at its own size."""
    grey = moving_pattern(12, H, W, seed=9)
    clip = from_arrays(grey, vs.GRAY8, per_frame_props=scene_props([6]))
    pipe = build(clip, refs=mixed_refs(4), weights=lite_weights, max_refs=4, **SMALL)
    assert not pipe.bank.synced and len(pipe.bank) == 4
    assert sorted(img.shape for img in pipe.bank.images) == sorted(
        [(40, 48, 3), (48, 72, 3), (24, 64, 3), (32, 40, 3)])
    red = pipe.bank.images[0]
    assert red[20, 20].tolist() == [220, 30, 30]
    f = pipe.clip.get_frame(8)
    assert len(np.atleast_1d(f.props["_RemasterRefs"])) == 4
    assert all(np.isfinite(p.astype(np.float32)).all() for p in planes(f))


def test_refs_clip_of_variable_format_and_size_is_accepted_synchronised(lite_weights):
    grey = moving_pattern(12, H, W, seed=9)
    clip = from_arrays(grey, vs.GRAY8, per_frame_props=scene_props([4, 9]))
    pipe = build(clip, refs=mixed_refs(12), weights=lite_weights, **SMALL)
    # a synchronised clip's references are named by their frame: each scene's start
    assert pipe.bank.synced and pipe.ref_sets() == [(0,), (4,), (9,)]
    # frames 0 and 4 of mixed_refs are the RGB24 one (40x40 + 8 wide border), 9 the YUV420P8
    assert [pipe.bank.images[s].shape for s in (0, 4, 9)] == [(40, 48, 3), (40, 48, 3), (48, 72, 3)]
    assert pipe.clip.get_frame(10).props["_RemasterRefs"] == 9


# -- weights --------------------------------------------------------------------------------

def no_model_for(path: Path) -> bool:
    """Nothing half-loaded stays behind in the shared models for `path`."""
    return all(not key[0].endswith(Path(path).name) for key in list(shared._shared.keys()))


def test_weights_of_a_wrong_type(quiet, source):
    rejects(remaster(source, 3), "weights", "must be a path to a weights file", "int")


def test_weights_missing(quiet, source, tmp_path):
    rejects(remaster(source, tmp_path / "nothing.safetensors"), "weights", "does not exist",
            "nothing.safetensors")
    assert source.calls == 0


def test_weights_directory_without_weights(quiet, source, tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "readme.txt").write_text("no weights here")
    rejects(remaster(source, folder), "weights", "is a folder without", "*.safetensors")
    assert source.calls == 0


def test_weights_directory_with_weights_is_searched(lite_weights, tmp_path, source):
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(lite_weights, folder / "seeded.safetensors")
    out = vsremaster.Remaster(source.clip, weights=folder, **SMALL)
    assert out.get_frame(0).props["_RemasterModel"] == "seeded-lite"


@pytest.mark.parametrize("kind", ["safetensors", "torch-zip", "torch-legacy"])
def test_weights_truncated(lite_weights, lite_dicts, quiet, source, tmp_path, kind):
    if kind == "safetensors":
        whole = lite_weights.read_bytes()
    else:
        state_r, state_c = lite_dicts
        full = tmp_path / "whole.pth"
        torch.save({"modelR": state_r, "modelC": state_c}, full,
                   _use_new_zipfile_serialization=kind == "torch-zip")
        whole = full.read_bytes()
        full.unlink()
    cut = tmp_path / f"cut.{kind}"
    cut.write_bytes(whole[:len(whole) * 2 // 3])
    rejects(remaster(source, cut), "weights", str(cut), "truncated")
    assert source.calls == 0 and no_model_for(cut)


def test_weights_of_another_model(quiet, source, tmp_path):
    linear = nn.Linear(4, 3).state_dict()
    pth = tmp_path / "linear.pth"
    torch.save({"modelR": linear, "modelC": linear}, pth)
    rejects(remaster(source, pth), "weights", "modelR", "missing", "unexpected key")
    plain = tmp_path / "plain.pth"
    torch.save(linear, plain)
    rejects(remaster(source, plain), "weights", "lacks 'modelR' and 'modelC'")
    from safetensors.torch import save_file
    other = tmp_path / "other.safetensors"
    save_file({k: v.contiguous() for k, v in linear.items()}, str(other))
    rejects(remaster(source, other), "weights", "not a vsremaster weights file", "'weight'")
    prefixed = save_checkpoint(tmp_path / "prefixed.safetensors", linear,
                               nn.Conv2d(2, 2, 3).state_dict())
    rejects(remaster(source, prefixed), "weights", "missing", "unexpected key")
    assert source.calls == 0
    assert all(no_model_for(p) for p in (pth, plain, other, prefixed))


class Payload:
    """Unpickling this object creates a marker file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').close()",)


def crafted(path: Path, marker: Path, kind: str) -> Path:
    blob = {"modelR": Payload(marker), "modelC": {}}
    if kind == "pickle":
        path.write_bytes(pickle.dumps(blob, protocol=2))
    else:
        torch.save(blob, path, _use_new_zipfile_serialization=kind == "torch-zip")
    return path


def unpickle_unsafely(path: Path, kind: str):
    if kind == "pickle":
        return pickle.loads(path.read_bytes())
    return torch.load(path, weights_only=False)


@pytest.mark.parametrize("kind", ["pickle", "torch-zip", "torch-legacy"])
def test_crafted_pickle_is_not_executed(quiet, source, tmp_path, kind):
    # the payload is real: unpickled the unsafe way, a copy of it runs and makes its marker
    proof = tmp_path / "proof-marker"
    unpickle_unsafely(crafted(tmp_path / "control.bin", proof, kind), kind)
    assert proof.exists()
    marker = tmp_path / "marker"
    weights = crafted(tmp_path / "remasternet.pth.tar", marker, kind)
    message = rejects(remaster(source, weights), "weights", str(weights))
    assert "not unpickled" in message or "was not unpickled" in message, message
    assert not marker.exists()
    # nor through the weights search ($VSREMASTER_WEIGHTS pointing at its folder)
    os.environ["VSREMASTER_WEIGHTS"] = str(weights.parent)
    try:
        rejects(remaster(source, None), "weights", "not unpickled")
    finally:
        del os.environ["VSREMASTER_WEIGHTS"]
    assert not marker.exists() and no_model_for(weights)
