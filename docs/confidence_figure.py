"""Makes docs/confidence.png: frames of the sample film, their colour output and their
match confidence (`vsremaster.Confidence`) side by side.

    python docs/confidence_figure.py                     # bundled weights, CPU, mindim 240
    python docs/confidence_figure.py --frames 20 222 330 --weights remasternet.pth.tar

One `Remaster(confidence=True)` and one `Confidence` of the same clip and arguments:
one computation serves both. The confidence is drawn with the inferno colour map
(black = 0, no reference resembles this; yellow = 1, matched a reference closely).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = Path(os.environ.get("VSREMASTER_SHARED", ROOT.parent / "shared")) / "samples" / "a-bomb"


def rgb_frame(clip, n: int, width: int) -> np.ndarray:
    """Frame n as uint8 RGB [h, width, 3]."""
    import vapoursynth as vs
    height = round(clip.height * width / clip.width / 2) * 2
    rgb = vs.core.resize.Bicubic(clip, width, height, format=vs.RGB24, matrix_in_s="709")
    f = rgb.get_frame(n)
    return np.stack([np.asarray(f[p]) for p in range(3)], -1).copy()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default=str(SAMPLES / "a-bomb_blast_effects_part.mp4"))
    parser.add_argument("--refs", default=str(SAMPLES / "references"))
    parser.add_argument("--weights", default=None)
    parser.add_argument("--frames", type=int, nargs="+", default=[20, 100, 222])
    parser.add_argument("--mindim", type=int, default=240)
    parser.add_argument("--width", type=int, default=256, help="width of each picture")
    parser.add_argument("--device-index", type=int, default=None)
    parser.add_argument("--output", default=str(ROOT / "docs" / "confidence.png"))
    parser.add_argument("--levels", type=int, default=64,
                        help="levels per colour channel written (default 64, 6 bits: the "
                             "PNG stays under 300 kB and looks the same; 256: exact)")
    args = parser.parse_args()

    import vapoursynth as vs

    import vsremaster
    from vsremaster.references.suggest import beside, contact_sheet, heat
    core = vs.core
    clip = core.bs.VideoSource(args.input)
    kw = dict(weights=args.weights, mindim=args.mindim, device_index=args.device_index)
    colour = vsremaster.Remaster(clip, args.refs, confidence=True, **kw)
    conf = vsremaster.Confidence(clip, args.refs, **kw)
    tiles, labels = [], []
    for n in args.frames:
        grey = rgb_frame(clip, n, args.width)
        c = rgb_frame(colour, n, args.width)
        f = conf.get_frame(n)
        small = cv2.resize(np.asarray(f[0]), (grey.shape[1], grey.shape[0]),
                           interpolation=cv2.INTER_AREA)
        tiles.append(beside(beside(grey, c), heat(small)))
        labels.append(f"frame {n}: source, Remaster, Confidence "
                      f"(mean {f.props['_RemasterConfidence']:.2f})")
        print(labels[-1], flush=True)
    sheet = contact_sheet(tiles, labels, columns=1)
    if args.levels < 256:
        # fewer distinct values compress far better (full 8 bits: about 440 kB)
        step = 256 // max(2, args.levels)
        sheet = np.minimum(sheet // step * step + step // 2, 255).astype(np.uint8)
    cv2.imwrite(args.output, sheet[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {args.output} ({Path(args.output).stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
