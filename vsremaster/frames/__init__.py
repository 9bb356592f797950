"""VapourSynth frames in and out: working clips, frame <-> tensor, output formats."""
