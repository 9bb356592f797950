"""VapourSynth frames in: the clips the engine reads, prop readers, frame <-> array."""
