"""The seam figure of a slowly panning synthetic scene through the filter (issue 12).

A smooth random colour texture pans `--speed` px per frame (one scene, nothing else
changes); its L is the filter's input at its own size, its first frame the only
reference, the weights the bundled lite model unless `--weights`. A uniform pan changes
the chroma by about the same amount every frame, so every local step (a pair's chroma
change over the mean of its four neighbours' changes) should be about 1; a colour step
where the filter's cells meet shows as a large one there. Prints, per output, the
largest local step (the seam figure) and the pair where it is, the steps at the
filter's cell boundaries (multiples of `--chunk`, or the filter's default chunk for the
device) and the other temporal metrics; `--compare` adds the naive 15-frame window and
the authors' blocks of 5 on the same scene. One JSON line last.

`--film VIDEO --refs DIR` does the same on a black-and-white film instead (its first
`--frames` frames, grey, at short edge `--mindim`, the images in DIR as the
references, scenes as the filter detects them; the naive window runs per scene, and
each output's largest local steps are listed with their pairs).

    python benchmarks/pan_seam.py                              # 60 frames of 224x128
    python benchmarks/pan_seam.py --ours-variant context=chunk --compare
    python benchmarks/pan_seam.py --film ../shared/samples/a-bomb/a-bomb_blast_effects_part.mp4 \
        --refs ../shared/samples/a-bomb/references --frames 120 --compare
Targets (issue 12): seam figure <= 1.2 on the pan; on the film within 10 % of the naive
window's.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _boundaries(frames: int, chunk: int | None) -> list[int]:
    """Pairs t -> t+1 where one cell ends and the next begins."""
    return [t - 1 for t in range(chunk, frames, chunk)] if chunk else []


def main(argv=None) -> int:
    from vsremaster.bench.config import add_ours_options, ours_options
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--width", type=int, default=224)
    p.add_argument("--height", type=int, default=128)
    p.add_argument("--speed", type=int, default=1, help="pan in px per frame (default 1)")
    p.add_argument("--weights", help="weights file (default: the bundled lite model)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--chunk", type=int, default=None,
                   help="where to read the cell boundaries (default: the filter's chunk "
                        "argument if given, else its default for the device)")
    p.add_argument("--compare", action="store_true",
                   help="also the naive 15-frame window and the blocks of 5")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--film", help="a black-and-white video instead of the synthetic pan")
    p.add_argument("--refs", help="--film: the folder of reference images")
    p.add_argument("--mindim", type=int, default=240, help="--film: short edge (default 240)")
    add_ours_options(p)
    args = p.parse_args(argv)
    if args.film and not args.refs:
        p.error("--film needs --refs")
    try:
        ours_args, variants = ours_options(args.ours_args, args.ours_variant)
    except ValueError as e:
        p.error(str(e))

    import torch

    from vsremaster import remaster
    from vsremaster.bench.glue import bundled_weights
    from vsremaster.evaluation.seams import film_seam, pan_seam
    weights = args.weights or str(bundled_weights())
    kind = torch.device(args.device).type
    chunk = args.chunk or ours_args.get("chunk") or getattr(remaster, "DEFAULT_CHUNK", {}).get(kind)
    if args.film:
        res = film_seam(args.film, args.refs, weights, args.frames, args.mindim, args.device,
                        args.compare, ours_args, variants)
        cells = []
        print(f"Film {args.film}: {args.frames} frames at short edge {args.mindim}, "
              f"references {args.refs}; weights {weights}; scenes start at "
              f"{res['ours']['starts']}")
    else:
        res = pan_seam(weights, args.frames, args.width // 16 * 16, args.height // 16 * 16,
                       args.speed, args.device, args.compare, ours_args, variants, args.seed)
        cells = _boundaries(args.frames, chunk)
        print(f"Slowly panning scene: {args.frames} frames of {args.width // 16 * 16}x"
              f"{args.height // 16 * 16}, {args.speed} px/frame, first frame as reference; "
              f"weights {weights}; cell boundaries read at chunk {chunk}")
    print(f"{'output':<26} {'seam':>7} {'at':>4} {'mean|dab|':>9} {'CDC':>8}  "
          + ("largest local steps (pair t->t+1)" if args.film else
             "local steps at cell boundaries (pair t->t+1)"))
    for name, m in res.items():
        steps = {a + 2 + i: v for a, scene in zip(m["starts"], m["steps"])
                 for i, v in enumerate(scene)}
        shown = sorted(steps, key=steps.get, reverse=True)[:4] if args.film else \
            [t for t in cells if t in steps]
        at = "-" if m["seam_at"] is None else m["seam_at"]
        print(f"{name:<26} {m['seam']:>7.3f} {at:>4} {m['mean_dab']:>9.4f} {m['cdc']:>8.5f}  "
              + ", ".join(f"{t}: {steps[t]:.2f}" for t in shown))
    print("target: seam <= 1.2 on the pan; on a film within 10 % of the naive window's (issue 12)")
    record = {"frames": args.frames, "width": args.width // 16 * 16,
              "height": args.height // 16 * 16, "speed": args.speed, "weights": weights,
              "film": args.film, "refs": args.refs, "mindim": args.mindim,
              "chunk": chunk, "cell_boundaries": cells, "device": args.device,
              "ours_args": {k: str(v) for k, v in ours_args.items()},
              "seam": res["ours"]["seam"], "seam_at": res["ours"]["seam_at"], "outputs": res}
    print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
