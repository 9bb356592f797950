"""Benchmarks: our filter against the authors' way of running DeepRemaster.

- `baseline`: the authors' approach, reimplemented (5-frame blocks without overlap,
  references re-encoded per block, matmul-softmax attention, per-frame Lab on the CPU).
- `naive`: full 15-frame context the naive way (a centred window per output frame).
- `run`: the driver behind `python -m vsremaster bench` (same frames and weights for
  all methods, one process, wall time, peak RSS and peak VRAM per method).
"""
