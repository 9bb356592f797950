"""Shared fixtures: seeded weights made here, and the team's golden data and film sample.

Every test runs on a plain clone with the project's own seeded weights (`seeded.py`).
Only what compares against the golden outputs, or reads the film sample, needs the
`shared/` folder beside the checkout (or at `VSREMASTER_SHARED`); without it those
tests skip, naming the missing path, and with `VSREMASTER_REQUIRE_SHARED=1` (CI) they
fail instead.
"""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import vapoursynth as vs

import seeded

ROOT = Path(__file__).resolve().parents[1]
# ../shared beside the checkout; VSREMASTER_SHARED points elsewhere (e.g. on a GPU box)
SHARED = Path(os.environ.get("VSREMASTER_SHARED", ROOT.parent / "shared"))
GOLDEN = SHARED / "golden"
SAMPLES = SHARED / "samples"
FILM = SAMPLES / "a-bomb" / "a-bomb_blast_effects_part.mp4"
FILM_REFS = SAMPLES / "a-bomb" / "references"
REQUIRE_SHARED = "VSREMASTER_REQUIRE_SHARED"


MARKERS = {
    "slow": "takes more than ~5 s on the project's 2-core machine (-m 'not slow' leaves it out)",
    "cuda": "needs a CUDA device: skipped without one",
    "shared": "reads the team's shared/ folder (golden data, film sample): skipped without it",
}
# the fixtures that read ../shared: a test using one must be marked `shared`
SHARED_FIXTURES = {"golden_layout", "golden_case", "golden_models", "golden_weights",
                   "authors_weights", "shared_film"}
_running: dict = {}       # "item": the test being set up or run


def pytest_configure(config):
    for name, what in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {what}")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    _running["item"] = item
    unmarked = sorted(SHARED_FIXTURES & set(item.fixturenames))
    if unmarked and item.get_closest_marker("shared") is None:
        pytest.fail(f"uses {', '.join(unmarked)} (../shared) but is not marked "
                    f"@pytest.mark.shared", pytrace=False)
    if item.get_closest_marker("cuda") and not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")


@pytest.fixture(autouse=True)
def vapoursynth_core_settings():
    """The core's thread count and cache size as they were before the test, after it."""
    core = vs.core
    saved = core.num_threads, core.max_cache_size
    yield
    core.num_threads, core.max_cache_size = saved


def require_shared(path: Path, what: str) -> Path:
    """`path` if it exists; else skip the test (fail when VSREMASTER_REQUIRE_SHARED=1).
    Only tests marked `shared` may call it."""
    item = _running.get("item")
    if item is not None and item.get_closest_marker("shared") is None:
        pytest.fail(f"reads {path} (../shared) but is not marked @pytest.mark.shared",
                    pytrace=False)
    if path.exists():
        return path
    reason = (f"needs {what}: {path} is missing (the team's shared/ folder beside the "
              f"checkout, or VSREMASTER_SHARED)")
    if os.environ.get(REQUIRE_SHARED) == "1":
        pytest.fail(f"{reason}; {REQUIRE_SHARED}=1 requires it", pytrace=False)
    pytest.skip(reason)


def bundled_only_env(tmp_path: Path) -> dict:
    """os.environ with no `VSREMASTER_WEIGHTS` and an empty user data folder inside
    `tmp_path`: a child process finds the bundled model, as a new user's does."""
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg")}
    env.pop("VSREMASTER_WEIGHTS", None)
    return env


def golden_state_dicts(width: float = 1.0) -> tuple[dict, dict]:
    """The golden generator's weights for NetworkR/NetworkC (what golden_case_a was made with)."""
    from vsremaster.model import NetworkC, NetworkR
    path = require_shared(GOLDEN / "deterministic_weights.py", "the golden weight generator")
    spec = importlib.util.spec_from_file_location("deterministic_weights", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return (mod.make_state_dict(NetworkR(width).state_dict()),
            mod.make_state_dict(NetworkC(width).state_dict()))


def seeded_state_dicts(width: float = 1.0) -> tuple[dict, dict]:
    """The project's own seeded weights for NetworkR/NetworkC (`seeded.py`)."""
    return seeded.state_dicts(width)


def _eval_models(state_r: dict, state_c: dict, width: float = 1.0):
    from vsremaster.model import NetworkC, NetworkR
    model_r, model_c = NetworkR(width), NetworkC(width)
    model_r.load_state_dict(state_r)
    model_c.load_state_dict(state_c)
    return model_r.eval(), model_c.eval()


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run fastest on one thread, above all on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- the project's own -------------------------------------------------------------------

@pytest.fixture(scope="session")
def seeded_models():
    """NetworkR and NetworkC with the seeded weights, eval mode, CPU."""
    return _eval_models(*seeded_state_dicts())


@pytest.fixture(scope="session")
def seeded_weights(tmp_path_factory) -> Path:
    """A safetensors weights file (project format) with the seeded weights."""
    from vsremaster.model.checkpoint import save_checkpoint
    path = tmp_path_factory.mktemp("weights") / "seeded.safetensors"
    return save_checkpoint(path, *seeded_state_dicts(), name="seeded")


@pytest.fixture(scope="session")
def lite_dicts() -> tuple[dict, dict]:
    """The seeded state_dicts at a quarter of the channel width: the filter's behaviour
    does not depend on the width, and it is 16x less work."""
    return seeded_state_dicts(0.25)


@pytest.fixture
def lite(lite_dicts) -> tuple[dict, dict]:
    """A fresh copy of `lite_dicts` whose entries a test may replace."""
    return tuple(dict(d) for d in lite_dicts)


@pytest.fixture(scope="session")
def lite_models(lite_dicts):
    """The seeded networks at a quarter of the channel width, eval mode, CPU."""
    return _eval_models(*lite_dicts, width=0.25)


@pytest.fixture(scope="session")
def lite_weights(tmp_path_factory, lite_dicts) -> Path:
    """A safetensors file with `lite_models`' weights (named "seeded-lite")."""
    from vsremaster.model.checkpoint import save_checkpoint
    path = tmp_path_factory.mktemp("weights") / "seeded-lite.safetensors"
    return save_checkpoint(path, *lite_dicts, name="seeded-lite", width="0.25")


@pytest.fixture(scope="session")
def seeded_authors_weights(tmp_path_factory) -> Path:
    """A file in the authors' remasternet.pth.tar layout with the seeded weights."""
    state_r, state_c = seeded_state_dicts()
    path = tmp_path_factory.mktemp("authors") / "remasternet.pth.tar"
    torch.save({"modelR": state_r, "modelC": state_c}, path)
    return path


# --- the team's golden data and film sample (../shared) -------------------------------------

@pytest.fixture(scope="session")
def golden_layout() -> dict:
    path = require_shared(GOLDEN / "checkpoint_layout.json", "the released checkpoint's layout")
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def golden_case() -> dict:
    path = require_shared(GOLDEN / "golden_case_a.npz", "the golden outputs")
    with np.load(path) as data:
        return {k: torch.from_numpy(data[k]) for k in data.files}


@pytest.fixture(scope="session")
def golden_models():
    """NetworkR and NetworkC with the golden weights, eval mode, CPU."""
    return _eval_models(*golden_state_dicts())


@pytest.fixture(scope="session")
def golden_weights(tmp_path_factory) -> Path:
    """A safetensors weights file (project format) with the golden weights."""
    from vsremaster.model.checkpoint import save_checkpoint
    state = golden_state_dicts()
    path = tmp_path_factory.mktemp("golden") / "golden.safetensors"
    return save_checkpoint(path, *state, name="golden")


@pytest.fixture(scope="session")
def authors_weights(tmp_path_factory) -> Path:
    """A file in the authors' remasternet.pth.tar layout with the golden weights."""
    state_r, state_c = golden_state_dicts()
    path = tmp_path_factory.mktemp("golden-authors") / "remasternet.pth.tar"
    torch.save({"modelR": state_r, "modelC": state_c}, path)
    return path


@pytest.fixture(scope="session")
def shared_film() -> tuple[Path, Path]:
    """(the film sample, its reference folder) from ../shared."""
    return (require_shared(FILM, "the a-bomb film sample"),
            require_shared(FILM_REFS, "the a-bomb film's references"))
