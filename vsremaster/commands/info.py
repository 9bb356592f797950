"""`python -m vsremaster info`: versions, devices and the weights that would be used
(which they are, how good, what they do without references, how to get the authors')."""
from __future__ import annotations

import platform
import sys
from pathlib import Path

HELP = "print versions, devices and the weights found"
#: What `color_mindim` was measured to do with particular weights (benchmarks/RESULTS.md,
#: "Colour at a smaller size than the restoration (issue 35)").
COLOUR_SIZE_NOTES = {
    "vsremaster-lite-step2500": (
        "Remaster(color_mindim=N) colours at short edge N and restores at mindim. With "
        "these weights at mindim 640 (five held-out clips, 10 frames each) colour at 640 "
        "scored best (PSNR ab 27.46, CIEDE2000 10.51); color_mindim=320 scored as mindim "
        "320 does (27.21 / 10.83 against 27.19 / 10.88) with the 640 restoration, and ran "
        "5.5x faster on a 2-core CPU: a speed setting, not a quality one"),
}


def add_arguments(parser) -> None:
    """`--weights PATH` checks a given file instead of searching."""
    parser.add_argument("--weights", metavar="PATH",
                        help="weights file to describe (default: the search order)")


def run(args) -> int:
    """Print the report; 0 even without weights, 1 when the weights found are unusable."""
    print("versions:")
    for name, version in versions():
        print(f"  {name:<11} {version}")
    print("devices:")
    for line in devices():
        print(f"  {line}")
    return report_weights(args.weights)


def versions() -> list[tuple[str, str]]:
    """(component, version) of vsremaster, Python and the libraries it runs on."""
    import numpy
    import torch
    import vsremaster
    here = Path(vsremaster.__file__).parent
    return [("vsremaster", f"{vsremaster.__version__} ({here})"),
            ("python", f"{platform.python_version()} ({sys.executable})"),
            ("vapoursynth", _vapoursynth_version()),
            ("torch", torch.__version__),
            ("numpy", numpy.__version__)]


def _vapoursynth_version() -> str:
    try:
        import vapoursynth as vs
        v = vs.core.core_version
        return f"R{v.release_major} (core), Python module {vs.__version__}"
    except Exception as e:  # a broken VapourSynth install should not hide the rest
        return f"unavailable ({type(e).__name__}: {e})"


def devices() -> list[str]:
    """One line per device: the CPU, then every CUDA device with name and memory."""
    import os
    import torch
    lines = [f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
             f"torch uses {torch.get_num_threads()} threads"]
    if not torch.cuda.is_available():
        return lines + ["cuda: none available"]
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        lines.append(f"cuda:{i}: {p.name}, {p.total_memory / 2**30:.1f} GiB")
    return lines


def report_weights(path) -> int:
    """Describe the weights `find_weights(path)` picks, or why there are none: which they
    are, their measured quality beside the release's, what happens without references,
    and how to use the authors' weights instead."""
    from ..cards import quality_table
    from ..model.checkpoint import FORMATS, CheckpointError, load_checkpoint, md5sum
    from ..references import fallback
    from ..weights import AUTHORS_FILENAME, AUTHORS_MD5, WeightsNotFoundError, find_weights
    print("weights:")
    try:
        found = find_weights(path)
    except WeightsNotFoundError as e:
        print(_indent(str(e)))
        return 0
    try:
        model_r, model_c = load_checkpoint(found)
    except CheckpointError as e:
        print(f"  path:       {found}\n  unusable:   {e}")
        return 1
    from ..model.checkpoint import detect_format
    print(f"  path:       {Path(found).resolve()}")
    print(f"  format:     {FORMATS[detect_format(found)]}")
    print(f"  name:       {model_r.name}")
    print(f"  width:      {model_r.width}")
    print(f"  parameters: modelR {_count(model_r)}, modelC {_count(model_c)}")
    authors = Path(found).name == AUTHORS_FILENAME and md5sum(found) == AUTHORS_MD5
    if Path(found).name == AUTHORS_FILENAME:
        print(f"  md5:        {'matches' if authors else 'differs from'} the authors' release")
    print(f"  in use:     {_kind(found, authors)}")
    table = quality_table(model_r.name)
    if table:
        print("quality (the paper's protocol, Sec. 5.1):")
        print(_indent("\n".join(table)))
    meta = getattr(model_c, "meta", {})
    if fallback.keeps_grey(model_r.name, meta):
        print(f"without references: scenes stay grey (prop {fallback.NOTE_PROP}): "
              f"{fallback.why_grey(model_r.name, meta)}")
    else:
        print("without references: the colorization network colours scenes from its own guess")
    print(f"colour size: {colour_size_note(model_r.name)}")
    if not authors:
        print(_authors_steps())
    return 0


def colour_size_note(name: str) -> str:
    """What Remaster(color_mindim=N) does, with the measured figures of `name` if any."""
    return COLOUR_SIZE_NOTES.get(name, "Remaster(color_mindim=N) runs the colorization at "
                                 "short edge N and the restoration at mindim (faster; not "
                                 "measured with these weights)")


def _kind(found, authors: bool) -> str:
    """Which weights these are, in words."""
    from ..weights import bundled_dir
    if authors:
        return "the authors' released weights (CC BY-NC-SA 4.0)"
    if Path(found).resolve().parent == bundled_dir().resolve():
        return ("the model bundled with vsremaster: small, trained by this project "
                f"(its card: {bundled_dir() / 'README.md'}), far weaker than the "
                "authors' release")
    return "weights that are neither the bundled model nor the authors' release"


def _authors_steps() -> str:
    """The exact steps to use the authors' remasternet.pth.tar instead."""
    import os
    from ..weights import (AUTHORS_FILENAME, AUTHORS_MD5, AUTHORS_URL, ENV_WEIGHTS,
                           user_data_dir)
    dest = user_data_dir() / AUTHORS_FILENAME
    lines = [f"to use the authors' {AUTHORS_FILENAME} instead (CC BY-NC-SA 4.0: "
             "non-commercial use, 245 MB):",
             "  1. python -m vsremaster fetch",
             f"     downloads {AUTHORS_URL}",
             f"     to {dest}, resuming an interrupted download and checking MD5 {AUTHORS_MD5};",
             "     or download it yourself, check that MD5 and save it as that file",
             "  2. python -m vsremaster info",
             f"     now names {AUTHORS_FILENAME}: the user data folder is searched before the "
             "bundled models"]
    if os.environ.get(ENV_WEIGHTS):
        lines.append(f"     (unset {ENV_WEIGHTS} first: it is searched before both)")
    lines.append(f"  or point weights= (one script) or {ENV_WEIGHTS} (every script) at the file")
    return "\n".join(lines)


def _count(model) -> str:
    n = sum(p.numel() for p in model.parameters())
    return f"{n / 1e6:.2f} M ({n})"


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())
