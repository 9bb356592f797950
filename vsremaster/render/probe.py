"""Evaluating a script once to learn its output and where its scenes start.

It runs in a child process (`python -m vsremaster.render.probe`), so the coordinator
never holds a model or a GPU the workers need. The script is run the way vspipe runs it:
`-a` values are str globals and `__name__` is "__vapoursynth__". Every `Remaster` the
script builds reports its source clip (`vsremaster.hooks.run_script`); when there is exactly
one and its source is as long as the output, the output is cut at that source's scenes.
Scripts that do not use the filter are probed without importing torch.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .media import RenderError


def probe(script: Path, args: dict[str, str], cwd: Path) -> dict:
    """{"info": VideoInfo dict or None, "why": ..., "scenes": [...] or None, "scenes_from": ...}."""
    with tempfile.TemporaryDirectory(prefix="vsremaster-probe-") as tmp:
        result = Path(tmp) / "probe.json"
        cmd = [sys.executable, "-m", "vsremaster.render.probe", str(script), str(result)]
        cmd += [f"{k}={v}" for k, v in args.items()]
        run = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True, errors="replace")
        if run.returncode != 0 or not result.is_file():
            tail = "\n".join(run.stderr.strip().splitlines()[-15:])
            raise RenderError(f"render: {script} failed to evaluate:\n{tail}")
        return json.loads(result.read_text())


def _describe(clip) -> dict:
    import vapoursynth as vs
    f = clip.format
    return {"frames": clip.num_frames, "width": clip.width, "height": clip.height,
            "name": f.name,
            "family": {vs.GRAY: "GRAY", vs.YUV: "YUV", vs.RGB: "RGB"}[f.color_family],
            "bits": f.bits_per_sample, "float": f.sample_type == vs.FLOAT,
            "ssw": f.subsampling_w, "ssh": f.subsampling_h,
            "fps_num": clip.fps.numerator, "fps_den": clip.fps.denominator}


def _evaluate(script: str, args: dict[str, str]) -> dict:
    import vapoursynth as vs
    from ..hooks import run_script
    from .plan import scene_starts
    built = run_script(script, args)
    outputs = vs.get_outputs()
    if 0 not in outputs:
        return {"info": None, "why": "no output" if not outputs else
                f"no output 0 (it sets outputs {sorted(outputs)})"}
    out = outputs[0]
    if isinstance(out, vs.AudioNode):
        return {"info": None, "why": "output 0 is audio"}
    clip = out.clip
    if clip.format is None or clip.format.id == vs.NONE or clip.width == 0 or clip.height == 0:
        return {"info": None, "why": "output 0 varies in format or size from frame to frame"}
    result = {"info": _describe(clip), "scenes": None}
    if len(built) == 1 and built[0][0].num_frames == clip.num_frames:
        source, sc_threshold = built[0]
        result["scenes"] = scene_starts(source, sc_threshold)
        result["scenes_from"] = "the scene changes of the script's Remaster source"
    else:
        result["scenes_from"] = (f"every K frames (the script builds Remaster {len(built)} "
                                 "times" + (")" if len(built) != 1 else
                                            ", on a clip of another length than the output)"))
    return result


def main(argv: list[str]) -> int:
    script, result, pairs = argv[0], Path(argv[1]), argv[2:]
    args = dict(pair.split("=", 1) for pair in pairs)
    report = _evaluate(script, args)
    tmp = result.with_suffix(".tmp")
    tmp.write_text(json.dumps(report))
    os.replace(tmp, result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
