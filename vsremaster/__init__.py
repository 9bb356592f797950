"""vsremaster: DeepRemaster (restoration + reference-based colorization) for VapourSynth."""
from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("vsremaster")
except _metadata.PackageNotFoundError:     # imported from a checkout that was never installed
    __version__ = "0+unknown"
__all__ = ["Remaster", "Confidence", "__version__"]


def __getattr__(name: str):
    # Remaster (and torch behind it) loads on first use, so tools that only evaluate
    # scripts or read files (render's probe) start without importing torch.
    if name in ("Remaster", "Confidence"):
        from . import remaster
        return getattr(remaster, name)
    raise AttributeError(f"module 'vsremaster' has no attribute {name!r}")
