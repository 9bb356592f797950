"""The DeepRemaster networks, free of VapourSynth."""
from .blocks import Attention, attention_reference
from .colorization import FrameFeatures, NetworkC, RefEncoding
from .restoration import RESTORE_RADIUS, NetworkR
from .sizes import to_colour_size, to_model_size

__all__ = ["Attention", "attention_reference", "FrameFeatures", "NetworkC", "NetworkR",
           "RefEncoding", "RESTORE_RADIUS", "to_colour_size", "to_model_size"]
