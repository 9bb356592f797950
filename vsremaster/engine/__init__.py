"""The engine: runs the networks over the grid of cells with bounded caches, on the
device and precision `placement` picks."""
