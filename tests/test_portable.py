"""The filter's core on a system without POSIX-only modules (Windows, where most
VapourSynth users are): with `fcntl`, `resource` and `termios` unimportable, every core
module imports and a filter builds and renders."""
from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT, bundled_only_env

#: The tools (commands and what only they use); everything else in the package is core.
TOOLS = ("bench", "evaluation", "training", "render", "commands", "__main__")
POSIX_ONLY = ("fcntl", "resource", "termios")

_CHILD = """\
import importlib, json, pkgutil, sys

POSIX_ONLY, TOOLS = {posix_only!r}, {tools!r}


class NoPosixOnly:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in POSIX_ONLY:
            raise ImportError(f"No module named {{name!r}} (as on Windows)")


for name in POSIX_ONLY:
    sys.modules.pop(name, None)
sys.meta_path.insert(0, NoPosixOnly())
for name in POSIX_ONLY:
    try:
        importlib.import_module(name)
        raise SystemExit(f"{{name}} is still importable")
    except ImportError:
        pass

import vsremaster
core = [m.name for m in pkgutil.walk_packages(vsremaster.__path__, "vsremaster.")
        if m.name.split(".")[1] not in TOOLS]
for name in core:
    importlib.import_module(name)

import vapoursynth as vs
clip = vs.core.std.BlankClip(format=vs.GRAY8, width=64, height=48, length=4, color=90)
frame = vsremaster.Remaster(clip, mindim=48, device_index=-1).get_frame(1)
print(json.dumps({{"core": core, "model": frame.props["_RemasterModel"],
                  "format": frame.format.name,
                  "posix_only": sorted(set(POSIX_ONLY) & set(sys.modules))}}))
"""


def test_core_imports_and_renders_without_posix_only_modules(tmp_path):
    child = _CHILD.format(posix_only=POSIX_ONLY, tools=TOOLS)
    done = subprocess.run([sys.executable, "-c", child], cwd=ROOT, env=bundled_only_env(tmp_path),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    for name in ("vsremaster.remaster", "vsremaster.weights", "vsremaster.limits",
                 "vsremaster.engine.host", "vsremaster.model.checkpoint",
                 "vsremaster.frames.source", "vsremaster.references.sources"):
        assert name in report["core"], name
    assert not any(name.split(".")[1] in TOOLS for name in report["core"])
    assert report["model"] == "vsremaster-lite-step2500" and report["format"] == "YUV444P8"
    assert report["posix_only"] == []
