"""`python -m vsremaster suggest SCRIPT_OR_VIDEO --refs DIR`: frames worth colouring as references.

Renders the match confidence (`vsremaster.Confidence`) cheaply, at a low model size,
ranks the scenes by their mean confidence and prints, for the N weakest, the frame with
the lowest confidence: a colour version of it, added to DIR, helps that scene most.
Writes a contact sheet PNG of those frames beside their confidence maps, and prints one
JSON line last. With --export DIR each suggested frame is also written at full size as a
grey `DIR/ref_NNNNNN.png`, ready to colour and drop into the refs folder.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

HELP = "which frames would most help as new references (scenes ranked by match confidence)"
SCRIPTS = (".vpy", ".py")


def add_arguments(parser) -> None:
    parser.add_argument("source", metavar="SCRIPT_OR_VIDEO",
                        help="a video file, or a VapourSynth script: the source of the one "
                             "Remaster it builds, else its output 0")
    parser.add_argument("--refs", required=True, metavar="DIR",
                        help="the references so far (a directory of images, as Remaster's refs)")
    parser.add_argument("-n", type=int, default=10, metavar="N",
                        help="weakest scenes to suggest a frame for (default 10)")
    parser.add_argument("--mindim", type=int, default=128,
                        help="model size of the frames (default 128: cheap; the ranking "
                             "rarely needs more)")
    parser.add_argument("--ref-mindim", type=int, default=256, help="model size of the references")
    parser.add_argument("--max-refs", type=int, default=6, help="most references per scene")
    parser.add_argument("--weights", metavar="PATH", help="weights file (default: the usual search)")
    parser.add_argument("--device-index", type=int, default=None,
                        help="-1: the CPU, n: CUDA device n (default: the first CUDA device, "
                             "else the CPU)")
    parser.add_argument("--sc-threshold", type=float, default=None,
                        help="detect scene changes with this threshold (default: the clip's "
                             "scene-change props, else detection at 0.1)")
    parser.add_argument("--sheet", default="suggestions.png", metavar="PNG",
                        help="where to write the contact sheet (default suggestions.png)")
    parser.add_argument("--thumb", type=int, default=240, metavar="W",
                        help="width of each frame on the contact sheet (default 240)")
    parser.add_argument("--export", metavar="DIR",
                        help="also write each suggested frame at full size as a grey "
                             "DIR/ref_NNNNNN.png (NNNNNN: the frame, as the refs folder "
                             "anchors it; 16-bit PNG for sources deeper than 8 bits): colour "
                             "them, then move them into the refs folder. DIR is made if "
                             "missing and may not be the refs folder; files already there "
                             "are kept (the run stops, writing none) unless --force")
    parser.add_argument("--force", action="store_true",
                        help="with --export: overwrite ref_NNNNNN.png files already in DIR")
    parser.add_argument("-a", "--arg", action="append", default=[], metavar="NAME=VALUE",
                        help="a global of the script, as with vspipe -a (repeatable)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _load(source: Path, script_args: list[str]):
    """(the black-and-white clip, its sc_threshold or None, how it was found)."""
    import vapoursynth as vs

    from ..hooks import run_script
    if source.suffix.lower() not in SCRIPTS:
        return vs.core.bs.VideoSource(str(source)), None, "the video file"
    pairs = {}
    for pair in script_args:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"-a {pair!r}: expected NAME=VALUE")
        pairs[name] = value
    built = run_script(str(source), pairs)
    sources = {id(c): (c, t) for c, t in built}
    if len(sources) == 1:
        clip, threshold = next(iter(sources.values()))
        return clip, threshold, "the source of the script's Remaster"
    clip = getattr(vs.get_outputs().get(0), "clip", None)       # audio outputs have none
    if clip is None:
        raise ValueError(f"{source} builds Remaster {len(sources)} times and has no video "
                         "output 0: nothing to analyse")
    return clip, None, "the script's output 0"


def _thumb(clip, n: int, width: int):
    """Frame n of a clip as uint8 RGB [h, width, 3] (luma only for GRAY and YUV)."""
    import numpy as np
    import vapoursynth as vs
    core = vs.core
    height = max(2, round(clip.height * width / clip.width / 2) * 2)
    if clip.format.color_family == vs.RGB:
        small = core.resize.Bicubic(clip, width, height, format=vs.RGB24)
        f = small.get_frame(n)
        return np.stack([np.asarray(f[p]) for p in range(3)], -1).copy()
    luma = clip if clip.format.color_family == vs.GRAY else core.std.ShufflePlanes(clip, 0, vs.GRAY)
    small = core.resize.Bicubic(luma, width, height, format=vs.GRAY8, range_s="full")
    return np.repeat(np.asarray(small.get_frame(n)[0])[..., None], 3, -1).copy()


def _map_thumb(conf_clip, n: int, width: int):
    import vapoursynth as vs

    from ..references.suggest import heat
    height = max(2, round(conf_clip.height * width / conf_clip.width / 2) * 2)
    small = vs.core.resize.Bilinear(conf_clip, width, height)
    import numpy as np
    return heat(np.asarray(small.get_frame(n)[0]))


def run(args) -> int:
    import cv2
    import vapoursynth as vs

    from ..references.suggest import beside, contact_sheet, rank_scenes
    from ..remaster import build

    source = Path(args.source)
    if not source.is_file():
        print(f"suggest: {source} is not a file", file=sys.stderr)
        return 2
    if args.n < 1:
        print("suggest: -n must be at least 1", file=sys.stderr)
        return 2
    export = _export_folder(args)
    if isinstance(export, str):
        print(f"suggest: {export}", file=sys.stderr)
        return 2
    try:
        clip, threshold, found = _load(source, args.arg)
        if args.sc_threshold is not None:
            threshold = args.sc_threshold
        pipe = build(clip, args.refs, weights=args.weights, device_index=args.device_index,
                     mindim=args.mindim, ref_mindim=args.ref_mindim, max_refs=args.max_refs,
                     sc_threshold=threshold, output="confidence")
    except (vs.Error, ValueError, OSError) as e:
        print(f"suggest: {e}", file=sys.stderr)
        return 2
    conf_clip = pipe.clip
    means, scenes = [], []
    from tqdm import tqdm
    bar = tqdm(total=conf_clip.num_frames, unit="frame", desc="confidence", file=sys.stderr,
               disable=args.no_progress, dynamic_ncols=True)
    try:
        for f in conf_clip.frames():
            means.append(float(f.props["_RemasterConfidence"]))
            scenes.append(int(f.props["_RemasterScene"]))
            bar.update(1)
    except vs.Error as e:
        print(f"suggest: {e}", file=sys.stderr)
        return 1
    finally:
        bar.close()
    ranked = rank_scenes(means, scenes)
    picked = ranked[:args.n]
    print(f"source: {source} ({found}; {clip.num_frames} frames, {len(ranked)} scenes), "
          f"refs: {args.refs}, mindim {args.mindim}")
    print(f"{'rank':>4}  {'scene':>13}  {'frames':>6}  {'mean conf':>9}  {'suggest frame':>13}  "
          f"{'its conf':>8}")
    for i, s in enumerate(picked, 1):
        print(f"{i:>4}  {f'{s.start}-{s.stop - 1}':>13}  {s.stop - s.start:>6}  {s.mean:>9.4f}  "
              f"{s.frame:>13}  {s.frame_confidence:>8.4f}")
    tiles = [beside(_thumb(clip, s.frame, args.thumb), _map_thumb(conf_clip, s.frame, args.thumb))
             for s in picked]
    labels = [f"#{i} frame {s.frame}  scene {s.start}-{s.stop - 1}  conf {s.frame_confidence:.3f}"
              for i, s in enumerate(picked, 1)]
    sheet = contact_sheet(tiles, labels)
    sheet_path = Path(args.sheet)
    if not cv2.imwrite(str(sheet_path), sheet[..., ::-1]):
        print(f"suggest: could not write {sheet_path}", file=sys.stderr)
        return 1
    print(f"contact sheet: {sheet_path}")
    exported = []
    if export is not None:
        from ..references.suggest import ExportError, export_grey
        try:
            exported = export_grey(clip, [s.frame for s in picked], export, args.force)
        except (ExportError, vs.Error, OSError) as e:
            print(f"suggest: --export: {e}", file=sys.stderr)
            return 1
        print(f"exported {len(exported)} grey frames to {export}: colour them, then move "
              f"them into {args.refs}")
    print(json.dumps({"source": str(source), "refs": str(args.refs), "mindim": args.mindim,
                      "frames": clip.num_frames, "scenes": len(ranked),
                      "suggestions": [s.as_dict() for s in picked], "sheet": str(sheet_path),
                      "exported": [str(p) for p in exported]}))
    return 0


def _export_folder(args):
    """The --export folder (None without it), or why it is refused: checked before any
    work, so a bad folder costs no rendering."""
    if args.export is None:
        if args.force:
            return "--force needs --export DIR (it overwrites exported frames)"
        return None
    from ..references.suggest import export_problem
    folder = Path(args.export)
    why = export_problem(folder)
    if why:
        return f"--export {why}"
    refs = Path(args.refs)
    if refs.exists() and folder.exists() and folder.resolve() == refs.resolve():
        return (f"--export {args.export!r} is the refs folder: grey frames there would be "
                "read as references; allowed: another folder (colour the frames, then move "
                "them in)")
    return folder
