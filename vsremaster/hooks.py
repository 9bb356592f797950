"""Callbacks that observe the filter, importable without torch.

`BUILD_HOOKS`: each is called as hook(clip, sc_threshold) whenever a filter is built.
`python -m vsremaster render` registers one while it evaluates a script, to learn which
clip's scenes the output follows (vsremaster/render/probe.py).
"""
from __future__ import annotations

BUILD_HOOKS: list = []
