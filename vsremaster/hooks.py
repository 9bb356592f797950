"""Callbacks that observe the filter, importable without torch.

`BUILD_HOOKS`: each is called as hook(clip, sc_threshold) whenever a filter is built.
`run_script` registers one while it evaluates a script, to learn which clips the
script's filters remaster (`render`'s probe and `suggest` follow their scenes).
"""
from __future__ import annotations

import runpy
import sys

BUILD_HOOKS: list = []


def run_script(script: str, args: dict[str, str]) -> list[tuple]:
    """Run a .vpy script the way vspipe does and return what every filter it built was
    given: [(source clip, sc_threshold), ...] in build order.

    `args` become str globals (vspipe's `-a`), `__name__` is "__vapoursynth__" and
    `sys.argv` is [script] while it runs; the outputs it sets are in vs.get_outputs().
    """
    import vapoursynth as vs
    built: list[tuple] = []

    def hook(clip, sc_threshold):
        built.append((clip, sc_threshold))

    vs.clear_outputs()
    BUILD_HOOKS.append(hook)
    argv, sys.argv = sys.argv, [script]
    try:
        runpy.run_path(script, init_globals=dict(args), run_name="__vapoursynth__")
    finally:
        sys.argv = argv
        BUILD_HOOKS.remove(hook)
    return built
