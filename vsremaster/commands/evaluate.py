"""`python -m vsremaster evaluate CLIP [CLIP ...]`: the paper's protocol on colour clips.

Prints a table (the protocol's blocks of 5, deteriorated input, Reinhard transfer, and
with --temporal the real filter and the naive 15-frame window, per clip), the temporal
metrics (mean |delta ab|, seam figure, CDC) of each method's output, optionally the
reference-behaviour suite, the Spearman correlation of per-frame colour error and match
confidence (evaluation.confidence), and one JSON line last with the mean figures (also
written to --json PATH).
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

HELP = "score weights with the paper's protocol (grey + deteriorated clips, baselines)"


def add_arguments(parser) -> None:
    parser.add_argument("clips", nargs="+", metavar="CLIP", help="colour video files (any cv2 can read)")
    parser.add_argument("--weights", metavar="PATH",
                        help="weights file (default: the search order of vsremaster.weights)")
    parser.add_argument("--refs-every", type=int, default=None, metavar="N",
                        help="references = every N-th frame (default: the first frame only)")
    parser.add_argument("--no-refs", action="store_true",
                        help="colorize without references (as Remaster(refs=None)); the "
                             "transfer baseline is then left out")
    parser.add_argument("--frames", type=int, default=90, metavar="N",
                        help="frames read from each clip (default 90)")
    parser.add_argument("--mindim", type=int, default=320,
                        help="short edge of the processing size (default 320)")
    parser.add_argument("--chunk", type=int, default=5, help="frames per network call (default 5)")
    parser.add_argument("--color-mindim", type=int, default=None, metavar="N",
                        help="short edge the colorization runs at, as Remaster(color_mindim=N) "
                             "runs it (default: --mindim; ours gets color_mindim=N too)")
    parser.add_argument("--saturation", type=float, default=1.0, metavar="S",
                        help="score the model's a*b* scaled by S, as Remaster(saturation=S) "
                             "scales them (default 1.0; ours gets saturation=S too)")
    parser.add_argument("--suite", choices=["references"], default=None,
                        help="also run the reference-behaviour suite on each clip")
    parser.add_argument("--suite-frames", type=int, default=5, metavar="N",
                        help="frames per clip in the suite (default 5)")
    parser.add_argument("--no-confidence", action="store_true",
                        help="skip the Spearman correlation of per-frame colour error and match "
                             "confidence (it runs the colorization's matching once more, "
                             "one frame at a time)")
    parser.add_argument("--temporal", default="ours,block5,naive", metavar="METHODS",
                        help="methods scored for temporal consistency, a subset of "
                             "ours,block5,naive (default all; 'none': skip); ours = the real "
                             "filter through VapourSynth, naive = a 15-frame window per frame")
    from ..bench.config import add_ours_options
    add_ours_options(parser)
    parser.add_argument("--json", metavar="PATH", help="also write the JSON record to PATH")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")


def _weights_path(given):
    if given:
        return given
    try:
        from ..weights import find_weights
    except ImportError:
        raise SystemExit("evaluate: no weights given: use --weights PATH") from None
    return find_weights()


def _json_safe(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else (1e9 if v > 0 else -1e9)
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_json_safe(x) for x in v]
    return v


def run(args) -> int:
    import torch

    from ..bench.config import ours_options
    from ..evaluation.consistency import METHODS
    from ..evaluation.protocol import EvalConfig, evaluate_clip, summarise, table
    from ..model.checkpoint import CheckpointError, load_checkpoint
    from ..settings import MAX_SATURATION

    temporal = () if args.temporal.strip() in ("", "none") else \
        tuple(m.strip() for m in args.temporal.split(",") if m.strip())
    bad = [m for m in temporal if m not in METHODS]
    try:
        if bad:
            raise ValueError(f"--temporal: unknown {bad}; choose from {','.join(METHODS)} or none")
        ours_args, variants = ours_options(args.ours_args, args.ours_variant)
        if args.color_mindim is not None:
            if not 32 <= args.color_mindim <= args.mindim:
                raise ValueError(f"--color-mindim {args.color_mindim}: allowed: 32 to "
                                 f"--mindim ({args.mindim})")
            ours_args = {"color_mindim": args.color_mindim, **ours_args}
        if not (math.isfinite(args.saturation) and 0 <= args.saturation <= MAX_SATURATION):
            raise ValueError(f"--saturation {args.saturation!r}: allowed: a finite number "
                             f"from 0 to {MAX_SATURATION:g}")
        if args.saturation != 1.0:      # the real filter scales its colour the same way
            ours_args = {"saturation": args.saturation, **ours_args}
    except ValueError as e:
        print(f"evaluate: {e}", file=sys.stderr)
        return 2

    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        path = _weights_path(args.weights)
        model_r, model_c = load_checkpoint(path, device=device)
    except (CheckpointError, FileNotFoundError) as e:
        print(f"evaluate: {e}", file=sys.stderr)
        return 2
    cfg = EvalConfig(frames=args.frames, refs_every=args.refs_every, no_refs=args.no_refs,
                     mindim=args.mindim, chunk=args.chunk, device=device, temporal=temporal,
                     weights=str(path), ours_args=ours_args, ours_variants=variants,
                     confidence=not args.no_confidence, color_mindim=args.color_mindim,
                     saturation=args.saturation)
    t0 = time.time()
    results = []
    for clip in args.clips:
        try:
            results.append(evaluate_clip(clip, model_r, model_c, cfg))
        except OSError as e:
            print(f"evaluate: {e}", file=sys.stderr)
            return 2
    # the confidence figures come from the protocol's own pass; they are reported apart
    per_clip = [{"clip": r["clip"], **r.pop("confidence")} for r in results] \
        if cfg.confidence else None
    mean = summarise(results)
    print(f"weights: {path}")
    print(table(results, mean))
    record = {**mean, "weights": str(path), "clips": results,
              "refs_every": args.refs_every, "no_refs": args.no_refs, "mindim": args.mindim,
              "color_mindim": args.color_mindim,
              "saturation": args.saturation,
              "frames": args.frames,
              "seconds": round(time.time() - t0, 1)}
    if args.suite == "references":
        from ..evaluation.suites import run_suite, suite_table
        from ..training.data import read_video
        suite = {}
        for clip in args.clips:
            frames = read_video(clip, args.suite_frames)
            suite[clip] = run_suite(frames, model_r, model_c, args.mindim, args.chunk, device)
            print(f"\nreference suite: {clip}")
            print(suite_table(suite[clip]))
        record["suite"] = suite
    if per_clip is not None:
        from ..evaluation import confidence
        pooled = confidence.summary(per_clip)
        print("\nmatch confidence against per-frame colour error (Spearman)")
        print(confidence.table(per_clip, pooled))
        record["confidence"] = {**pooled, "clips": per_clip}
    line = json.dumps(_json_safe(record))
    if args.json:
        Path(args.json).write_text(line + "\n")
    print(line)
    return 0
