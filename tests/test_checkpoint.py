"""Loading weights: both formats reproduce the golden outputs (../shared), every bad file
gets a clear CheckpointError, no pickle ever runs code, and the search order holds."""
from __future__ import annotations

import os
import pickle
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from conftest import ROOT, golden_state_dicts, seeded_state_dicts
from vsremaster import weights
from vsremaster.model import NetworkC, NetworkR
from vsremaster.model.checkpoint import (CheckpointError, detect_format, load_checkpoint,
                                         md5sum, read_state_dicts, save_checkpoint,
                                         verify_md5)
from vsremaster.weights import WeightsNotFoundError, find_weights

TOL = 1e-4


def _write_legacy(path: Path, state_r: dict, state_c: dict) -> Path:
    """The authors' layout in torch.save's pre-zip format (as the 2019 release is)."""
    torch.save({"modelR": state_r, "modelC": state_c}, path, _use_new_zipfile_serialization=False)
    return path


@pytest.fixture(scope="module")
def legacy_weights(tmp_path_factory) -> Path:
    """The golden weights in the authors' pre-zip format."""
    return _write_legacy(tmp_path_factory.mktemp("legacy") / "remasternet.pth.tar",
                         *golden_state_dicts())


@pytest.fixture(scope="module")
def seeded_legacy_weights(tmp_path_factory) -> Path:
    """The seeded weights in the authors' pre-zip format."""
    return _write_legacy(tmp_path_factory.mktemp("seeded-legacy") / "remasternet.pth.tar",
                         *seeded_state_dicts())


@pytest.fixture(params=[("golden_weights", "golden"),
                        ("authors_weights", "remasternet.pth.tar"),
                        ("legacy_weights", "remasternet.pth.tar")],
                ids=["safetensors", "authors-zip", "authors-legacy"])
def any_weights(request) -> tuple[Path, str]:
    """(weights file, the name its models get)."""
    fixture, name = request.param
    return request.getfixturevalue(fixture), name


def _raises(path, *fragments, **kw) -> CheckpointError:
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, **kw)
    for fragment in fragments:
        assert fragment in str(info.value)
    return info.value


# --- loading -------------------------------------------------------------------------

@pytest.mark.shared
def test_every_format_reproduces_golden_outputs(any_weights, golden_case):
    path, name = any_weights
    model_r, model_c = load_checkpoint(path)
    assert isinstance(model_r, NetworkR) and isinstance(model_c, NetworkC)
    assert model_r.name == model_c.name == name
    assert model_r.width == model_c.width == 1.0
    assert not model_r.training and not model_c.training
    with torch.no_grad():
        restored = model_r(golden_case["input_l"])
        ab = model_c(golden_case["restored_l"], golden_case["refs"])
    assert (restored - golden_case["restored_l"]).abs().max() < TOL
    assert (ab - golden_case["ab_refs"]).abs().max() < TOL


def test_formats_are_detected(seeded_weights, seeded_authors_weights, seeded_legacy_weights):
    assert detect_format(seeded_weights) == "safetensors"
    assert detect_format(seeded_authors_weights) == "torch-zip"
    assert detect_format(seeded_legacy_weights) == "torch-legacy"


@pytest.mark.parametrize("fixture", ["seeded_weights", "seeded_authors_weights",
                                     "seeded_legacy_weights"])
def test_every_format_loads_the_same_weights(request, fixture):
    """Without the golden data: each format gives back exactly the weights written."""
    state_r, state_c = seeded_state_dicts()
    model_r, model_c = load_checkpoint(request.getfixturevalue(fixture))
    for model, state in ((model_r, state_r), (model_c, state_c)):
        got = model.state_dict()
        assert set(got) == set(state)
        assert all(torch.equal(got[k], state[k]) for k in state)


def test_unnamed_safetensors_is_named_after_its_file(lite, tmp_path):
    unnamed = save_checkpoint(tmp_path / "unnamed.safetensors", *lite)
    assert {m.name for m in load_checkpoint(unnamed)} == {"unnamed"}


def test_lite_width_is_inferred(lite, tmp_path):
    path = save_checkpoint(tmp_path / "lite.safetensors", *lite, name="lite")
    model_r, model_c = load_checkpoint(path)
    assert model_r.width == model_c.width == 0.25
    assert sum(p.numel() for p in model_c.parameters()) < 54.30e6 / 10


def test_path_none_searches(lite, tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "lite.safetensors", *lite, name="from-env")
    monkeypatch.setenv("VSREMASTER_WEIGHTS", str(path))
    assert weights.load_weights()[0].name == "from-env"
    with pytest.raises(TypeError, match="load_weights"):
        load_checkpoint(None)


# --- MD5 -----------------------------------------------------------------------------

def test_verify_md5(seeded_authors_weights):
    digest = md5sum(seeded_authors_weights)
    assert verify_md5(seeded_authors_weights, digest.upper()) == digest
    with pytest.raises(CheckpointError, match="MD5 mismatch") as info:
        verify_md5(seeded_authors_weights, weights.AUTHORS_MD5)
    assert weights.AUTHORS_MD5 in str(info.value) and digest in str(info.value)


def test_load_with_expected_md5(lite, tmp_path):
    path = _write_authors(tmp_path / "remasternet.pth.tar", *lite)
    # The test file is not the released one, so insisting on that MD5 must fail.
    _raises(path, "MD5 mismatch", weights.AUTHORS_MD5, expected_md5=weights.AUTHORS_MD5)
    assert load_checkpoint(path, expected_md5=md5sum(path))


# --- files that are not checkpoints ---------------------------------------------------

def test_missing_file(tmp_path):
    err = _raises(tmp_path / "nope.pth.tar", "nope.pth.tar", "not found")
    assert isinstance(err, FileNotFoundError)


def test_directory(tmp_path):
    _raises(tmp_path, "is a directory")


@pytest.mark.parametrize("content,fragment", [
    (bytes(range(256)) * 8, "unrecognised binary"),
    (bytes(range(255, -1, -1)) * 8, "unrecognised binary"),
    (b"modelR = 1\nmodelC = 2\n", "text file"),
    (b"<!DOCTYPE html><html><body>404</body></html>", "HTML page"),
    (b"", "empty"),
    (pickle.dumps({"modelR": {}, "modelC": {}}), "plain Python pickle"),
])
def test_not_a_checkpoint(tmp_path, content, fragment):
    path = tmp_path / "remasternet.pth.tar"
    path.write_bytes(content)
    _raises(path, "not a checkpoint", fragment)


def test_unrelated_zip(tmp_path):
    path = tmp_path / "other.pth.tar"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "hello")
    _raises(path, "not a torch.save checkpoint")


def test_torch_file_that_is_not_a_dict(tmp_path):
    path = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), path)
    _raises(path, "holds a Tensor", "'modelR'")


def test_dict_lacking_modelc(lite, tmp_path):
    path = tmp_path / "remasternet.pth.tar"
    torch.save({"modelR": lite[0], "epoch": torch.tensor(3)}, path)
    _raises(path, "lacks 'modelC'", "'modelR'", "'epoch'")


def test_safetensors_with_foreign_keys(tmp_path):
    from safetensors.torch import save_file
    path = tmp_path / "resnet.safetensors"
    save_file({"fc.weight": torch.zeros(2, 2), "fc.bias": torch.zeros(2)}, str(path))
    _raises(path, "lack the 'modelR.'/'modelC.' prefix", "'fc.weight'")




# --- state_dicts that do not fit -----------------------------------------------------

def _write_authors(path, state_r, state_c) -> Path:
    torch.save({"modelR": state_r, "modelC": state_c}, path)
    return path


def _write_legacy(path, state_r, state_c) -> Path:
    torch.save({"modelR": state_r, "modelC": state_c}, path,
               _use_new_zipfile_serialization=False)
    return path


@pytest.mark.parametrize("write", [save_checkpoint, _write_authors, _write_legacy],
                         ids=["safetensors", "authors-zip", "authors-legacy"])
@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_truncated(lite, tmp_path, write, keep):
    data = write(tmp_path / "whole", *lite).read_bytes()
    path = tmp_path / "remasternet.pth.tar"
    path.write_bytes(data[:int(len(data) * keep)])
    _raises(path, "truncated")


def test_truncated_inside_safetensors_header(lite, tmp_path):
    data = save_checkpoint(tmp_path / "whole", *lite).read_bytes()
    path = tmp_path / "stub.safetensors"
    path.write_bytes(data[:40])
    _raises(path, "truncated")


def test_missing_keys_are_listed(lite, tmp_path):
    state_r, state_c = lite
    gone = ["up4.1.weight", "selfattn1.gamma"]
    for key in gone:
        del state_c[key]
    _raises(_write_authors(tmp_path / "a.pth.tar", state_r, state_c),
            "modelC: 2 keys missing", *gone)


def test_unexpected_keys_are_listed(lite, tmp_path):
    state_r, state_c = lite
    state_r["layers.99.conv3d.weight"] = torch.zeros(1)
    path = save_checkpoint(tmp_path / "extra.safetensors", state_r, state_c)
    _raises(path, "modelR: 1 unexpected key:", "'layers.99.conv3d.weight'")


def test_many_missing_keys_are_summarised(lite, tmp_path):
    state_r, _ = lite
    err = _raises(_write_authors(tmp_path / "a.pth.tar", state_r, {"x": torch.zeros(1)}),
                  "261 keys missing", "more)", "1 unexpected key", "'x'")
    assert len(str(err)) < 1000


def test_wrong_shape_names_key_and_shapes(lite, tmp_path):
    state_r, state_c = lite
    state_c["conv2.conv3d.weight"] = torch.zeros(64, 128, 3, 3, 1)  # width 0.25
    _raises(_write_authors(tmp_path / "a.pth.tar", state_r, state_c),
            "modelC: 1 tensor with the wrong shape", "'conv2.conv3d.weight'",
            "expected (64, 128, 3, 3, 3)", "found (64, 128, 3, 3, 1)")


def test_full_weights_in_a_lite_file_are_wrong_shapes(lite, tmp_path):
    state_r, _ = lite
    full_c = NetworkC().state_dict()
    _raises(_write_authors(tmp_path / "a.pth.tar", state_r, full_c),
            "modelC", "wrong shape", "'down1.1.conv3d.weight'")


# --- crafted pickles ------------------------------------------------------------------

class _Payload:
    """Unpickling this creates `marker`: proof that the pickle ran code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _raw_pickle(path, marker):
    path.write_bytes(pickle.dumps({"modelR": _Payload(marker), "modelC": {}}))


def _torch_zip(path, marker):
    torch.save({"modelR": {"w": torch.zeros(1)}, "modelC": _Payload(marker)}, path)


def _torch_legacy(path, marker):
    torch.save({"modelR": _Payload(marker), "modelC": {}}, path,
               _use_new_zipfile_serialization=False)


@pytest.mark.parametrize("write", [_raw_pickle, _torch_zip, _torch_legacy])
def test_crafted_pickle_never_runs(tmp_path, write):
    # The same payload does run when unpickled unguarded: the test is not vacuous.
    live = tmp_path / "live.pkl"
    write(live, tmp_path / "ran-unguarded")
    if write is _raw_pickle:
        pickle.loads(live.read_bytes())
    else:
        torch.load(live, weights_only=False)
    assert (tmp_path / "ran-unguarded").exists()

    marker = tmp_path / "pwned"
    path = tmp_path / "remasternet.pth.tar"
    write(path, marker)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert not marker.exists()
    assert "not unpickled" in str(info.value)
    if write is not _raw_pickle:  # torch names the global it refused
        assert "open" in str(info.value).split("tensors", 1)[1]


# --- the search order -----------------------------------------------------------------

@pytest.fixture
def places(tmp_path, monkeypatch):
    """HOME, XDG_DATA_HOME and the bundled folder all inside tmp_path; no env override."""
    home, xdg, bundled = tmp_path / "home", tmp_path / "xdg", tmp_path / "bundled"
    for d in (home, xdg, bundled):
        d.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(xdg))
    monkeypatch.delenv("VSREMASTER_WEIGHTS", raising=False)
    monkeypatch.setattr(weights, "bundled_dir", lambda: bundled)
    user = xdg / "vsremaster"
    user.mkdir()
    return {"home": home, "user": user, "bundled": bundled, "tmp": tmp_path}


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="Linux convention")
def test_user_data_dir_linux(places, monkeypatch):
    assert weights.user_data_dir() == places["user"]
    monkeypatch.delenv("XDG_DATA_HOME")
    assert weights.user_data_dir() == places["home"] / ".local/share/vsremaster"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    assert weights.user_data_dir() == places["home"] / ".local/share/vsremaster"


def test_user_data_dir_macos_ignores_xdg(places, monkeypatch):
    # (Windows' folder comes from platformdirs, which asks the Windows shell: not
    # something another platform can pretend to be.)
    monkeypatch.setattr(sys, "platform", "darwin")
    assert weights.user_data_dir() == places["home"] / "Library/Application Support/vsremaster"


def test_bundled_dir_is_the_repo_models_folder():
    # a checkout: the top-level models/ (an installed wheel: test_install.py)
    assert weights.bundled_dir() == ROOT / "models"
    assert ("bundled models", ROOT / "models") in weights.search_places()


def test_nothing_found_lists_places_and_how_to_fetch(places):
    with pytest.raises(WeightsNotFoundError) as info:
        find_weights()
    assert isinstance(info.value, CheckpointError) and isinstance(info.value, FileNotFoundError)
    msg = str(info.value)
    for fragment in ("$VSREMASTER_WEIGHTS", str(places["user"]), str(places["bundled"]),
                     weights.AUTHORS_URL, weights.AUTHORS_MD5, "python -m vsremaster fetch"):
        assert fragment in msg


def test_search_order(places, monkeypatch):
    bundled = _touch(places["bundled"] / "lite.safetensors")
    assert find_weights() == bundled
    user_st = _touch(places["user"] / "mine.safetensors")
    assert find_weights() == user_st
    authors = _touch(places["user"] / "remasternet.pth.tar")
    assert find_weights() == authors
    env = _touch(places["tmp"] / "env" / "w.safetensors")
    monkeypatch.setenv("VSREMASTER_WEIGHTS", str(env))
    assert find_weights() == env
    explicit = _touch(places["tmp"] / "explicit.pth.tar")
    assert find_weights(explicit) == explicit
    monkeypatch.setenv("VSREMASTER_WEIGHTS", str(env.parent))
    assert find_weights() == env


def test_unrelated_files_are_not_found(places):
    _touch(places["user"] / "notes.txt")
    _touch(places["bundled"] / "model.onnx")
    with pytest.raises(WeightsNotFoundError):
        find_weights()


def test_bad_explicit_or_env_path_is_reported(places, monkeypatch):
    _touch(places["user"] / "remasternet.pth.tar")
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        find_weights(places["tmp"] / "typo.pth.tar")
    # a set-but-wrong variable is reported rather than silently skipped
    monkeypatch.setenv("VSREMASTER_WEIGHTS", os.fspath(places["tmp"] / "typo.safetensors"))
    with pytest.raises(WeightsNotFoundError, match=r"\$VSREMASTER_WEIGHTS.*does not exist"):
        find_weights()


def test_read_state_dicts_reports_format_and_name(lite, tmp_path):
    path = save_checkpoint(tmp_path / "lite.safetensors", *lite, name="lite")
    state_r, state_c, meta = read_state_dicts(path)
    assert meta["name"] == "lite" and meta["file_format"] == "safetensors"
    assert len(state_r) == 86 and len(state_c) == 261
