"""`python -m vsremaster bench`: ours vs. the authors' way vs. the naive 15-frame window."""
from __future__ import annotations

import sys

HELP = "benchmark the filter against the authors' approach and the naive 15-frame window"


def _size(text: str) -> int:
    value = int(text)
    if value < 32:
        raise ValueError
    return value


def add_arguments(parser) -> None:
    from ..bench.config import METHODS, PRECISIONS, add_ours_options
    parser.add_argument("--width", type=_size, default=224, help="frame width (rounded down to 16; default 224)")
    parser.add_argument("--height", type=_size, default=160, help="frame height (rounded down to 16; default 160)")
    parser.add_argument("--frames", type=int, default=None,
                        help="frames (default 30; --sweep: 64 on CUDA, 10 on a CPU; --glue: 48)")
    parser.add_argument("--refs", type=int, default=6, help="reference images (default 6; 0: none)")
    parser.add_argument("--ref-size", type=_size, default=256,
                        help="short edge of the references in px (default 256)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="ours (and naive): auto = the filter's default (fp16 on CUDA, bf16 on a "
                             "CPU with AMX, else fp32); the baseline: see --baseline-precision")
    parser.add_argument("--baseline-precision", choices=("fp32", "ours"), default="fp32",
                        help="the baseline's precision: fp32 (default; the authors' script) or "
                             "ours (ours' precision, to compare the engines at equal precision)")
    parser.add_argument("--weights", metavar="PATH",
                        help="weights file, or 'golden': generated golden weights, full size "
                             "(the default; --glue: the bundled lite model)")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help="comma-separated subset of ours,baseline,naive (default all)")
    parser.add_argument("--naive-frames", type=int, default=None, metavar="K",
                        help="time the naive method on K evenly spaced output frames only "
                             "(each costs the same; default all)")
    parser.add_argument("--warmup", choices=("auto", "small", "full", "none"), default="auto",
                        help="untimed warm-up run per method: small (64x48), full (the "
                             "measured size) or none (default: small on CPU, full on CUDA)")
    parser.add_argument("--split", action="store_true",
                        help="time ours' network calls on CUDA too (synchronises; always on CPU)")
    parser.add_argument("--in-process", action="store_true",
                        help="run every method in this one process, one after another "
                             "(default: each in a fresh process; in one, a method's speed "
                             "depends on what ran before it: the heap it left)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic input")
    add_ours_options(parser)
    parser.add_argument("--sweep", action="store_true",
                        help="resolution sweep 360p-1080p: ours' peak memory vs. the baseline's "
                             "attention memory")
    parser.add_argument("--glue", action="store_true",
                        help="the cost around the networks: the same model work (112x64, "
                             "mindim 64) fed a 112x64 and a 1920x1080 8-bit clip through "
                             "VapourSynth, each in its own process: both fps, their ratio, "
                             "peak RSS")
    parser.add_argument("--glue-format", choices=("gray8", "yuv420p8"), default="gray8",
                        help="--glue: the clips' format (default gray8)")
    parser.add_argument("--threads", type=int, default=2,
                        help="--glue: VapourSynth threads (default 2)")


def run(args) -> int:
    from pathlib import Path

    from ..bench.config import METHODS, Config, ours_options, parse_device
    from ..bench.ours import precision_kwargs
    from ..bench.run import main
    try:
        device = parse_device(args.device)
    except (ValueError, RuntimeError) as e:
        print(f"bench: --device: {e}", file=sys.stderr)
        return 2
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        print(f"bench: --methods: unknown {bad or 'empty'}; choose from {','.join(METHODS)}",
              file=sys.stderr)
        return 2
    try:
        precision_kwargs(args.precision, device)
    except ValueError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 2
    if args.refs < 0 or (args.frames is not None and args.frames < 1) or args.threads < 1:
        print("bench: --refs must be >= 0, --frames and --threads >= 1", file=sys.stderr)
        return 2
    try:
        ours_args, variants = ours_options(args.ours_args, args.ours_variant)
    except ValueError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 2
    if args.weights and args.weights != "golden" and not Path(args.weights).is_file():
        print(f"bench: --weights: {args.weights} is not a file", file=sys.stderr)
        return 2
    cfg = Config(width=args.width, height=args.height,
                 frames=args.frames or (48 if args.glue else 30),
                 refs=args.refs, ref_size=args.ref_size, device=device,
                 precision=args.precision, baseline_precision=args.baseline_precision,
                 weights=args.weights, methods=methods,
                 naive_frames=args.naive_frames, warmup=args.warmup, split=args.split,
                 seed=args.seed, isolate=not args.in_process, ours_args=ours_args,
                 ours_variants=variants)
    try:
        return main(cfg, do_sweep=args.sweep, sweep_frames=args.frames,
                    glue={"fmt": args.glue_format, "threads": args.threads} if args.glue else None)
    except ValueError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 2
