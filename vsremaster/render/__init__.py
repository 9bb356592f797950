"""Rendering a whole script in segments, on local workers or a Ray cluster.

plan -> segments (one vspipe per segment, lossless files) -> workers (local or Ray)
-> manifest (what is finished, for resuming) -> join (OUTPUT by its extension).
`python -m vsremaster render` is the command (vsremaster/commands/render.py).
"""
from .media import RenderError, RenderFailed
from .run import render, work_folder

__all__ = ["RenderError", "RenderFailed", "render", "work_folder"]
