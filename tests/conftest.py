"""Shared fixtures: the golden data in ../shared and weights files the tests write."""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
# ../shared beside the checkout; VSREMASTER_SHARED points elsewhere (e.g. on a GPU box)
SHARED = Path(os.environ.get("VSREMASTER_SHARED", ROOT.parent / "shared"))
GOLDEN = SHARED / "golden"
SAMPLES = SHARED / "samples"
FILM = SAMPLES / "a-bomb" / "a-bomb_blast_effects_part.mp4"
FILM_REFS = SAMPLES / "a-bomb" / "references"


def _golden_module():
    spec = importlib.util.spec_from_file_location("deterministic_weights",
                                                  GOLDEN / "deterministic_weights.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def golden_state_dicts(width: float = 1.0) -> tuple[dict, dict]:
    """Seed-stable weights for NetworkR/NetworkC (the golden generator)."""
    from vsremaster.model import NetworkC, NetworkR
    make = _golden_module().make_state_dict
    return make(NetworkR(width).state_dict()), make(NetworkC(width).state_dict())


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run fastest on one thread, above all on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def golden_layout() -> dict:
    return json.loads((GOLDEN / "checkpoint_layout.json").read_text())


@pytest.fixture(scope="session")
def golden_case() -> dict:
    with np.load(GOLDEN / "golden_case_a.npz") as data:
        return {k: torch.from_numpy(data[k]) for k in data.files}


@pytest.fixture(scope="session")
def golden_models():
    """NetworkR and NetworkC with the golden weights, eval mode, CPU."""
    from vsremaster.model import NetworkC, NetworkR
    state_r, state_c = golden_state_dicts()
    model_r, model_c = NetworkR(), NetworkC()
    model_r.load_state_dict(state_r)
    model_c.load_state_dict(state_c)
    return model_r.eval(), model_c.eval()


@pytest.fixture(scope="session")
def golden_weights(tmp_path_factory) -> Path:
    """A safetensors weights file (project format) with the golden weights."""
    from vsremaster.model.checkpoint import save_checkpoint
    path = tmp_path_factory.mktemp("weights") / "golden.safetensors"
    return save_checkpoint(path, *golden_state_dicts(), name="golden")


@pytest.fixture(scope="session")
def authors_weights(tmp_path_factory) -> Path:
    """A file in the authors' remasternet.pth.tar layout with the golden weights."""
    state_r, state_c = golden_state_dicts()
    path = tmp_path_factory.mktemp("authors") / "remasternet.pth.tar"
    torch.save({"modelR": state_r, "modelC": state_c}, path)
    return path
