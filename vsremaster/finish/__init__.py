"""Finishing: model-size results composed with the source into full-size output frames.

`compose` (torch) and `expr` (its `std.Expr` twin) hold the one composition; `graph`
builds it of VapourSynth filters (the CPU), `device` runs it on the networks' device
(CUDA), `output` says what the frames are (format, colour props) and `clips` makes the
output clips that ask the engine for each frame.
"""
