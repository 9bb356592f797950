"""Benchmarks: our filter against the authors' way of running DeepRemaster.

- `run`: the driver behind `python -m vsremaster bench` (same frames and weights for
  all methods, one process, wall time, peak RSS and peak VRAM per method).
- the methods: `ours` (the real filter), `baseline` (the authors' approach, reimplemented:
  5-frame blocks without overlap, references re-encoded per block, matmul-softmax
  attention, per-frame Lab on the CPU), `naive` (full 15-frame context the naive way: a
  centred window per output frame).
- around them: `config` (what a run is asked), `inputs` (synthetic frames, references,
  weights), `measure` (clocks, peak memory, the time split), `report` (comparison,
  summary, table), `sweep` (the resolution sweep), `glue` (the cost around the
  networks, `--glue`).
"""
