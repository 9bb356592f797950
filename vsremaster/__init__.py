"""vsremaster: DeepRemaster (restoration + reference-based colorization) for VapourSynth."""
from .remaster import Remaster

__version__ = "0.1.0"
__all__ = ["Remaster", "__version__"]
