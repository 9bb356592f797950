"""The engine: runs the networks over the chunk grid with bounded caches."""
