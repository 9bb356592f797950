"""`python -m vsremaster train`: gather the open data once, then train (resumably)."""
from __future__ import annotations

import sys

HELP = "train restoration + colorization networks on openly licensed data"


def add_arguments(parser) -> None:
    parser.add_argument("--data-dir", required=True, metavar="DIR",
                        help="prepared data folder (made by --prepare)")
    parser.add_argument("--prepare", action="store_true",
                        help="gather the data into --data-dir first (once; needs apt-get for "
                             "the Debian wallpapers); without --out, stop after that")
    parser.add_argument("--cache-dir", metavar="DIR", default=None,
                        help="where downloaded packages are unpacked (default ~/.cache/vsremaster/data)")
    parser.add_argument("--out", metavar="DIR", help="checkpoint folder")
    parser.add_argument("--size", choices=["full", "lite"], default="lite",
                        help="full: the released architecture; lite: width 0.25 (default)")
    parser.add_argument("--width", type=float, default=None, help="channel width (overrides --size)")
    parser.add_argument("--steps", type=int, default=100_000, help="train until this step")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--crop", type=int, nargs=2, default=[256, 256], metavar=("H", "W"))
    parser.add_argument("--lr", type=float, default=2e-4, help="peak learning rate")
    parser.add_argument("--lr-min", type=float, default=1e-6,
                        help="learning rate the cosine decay reaches at --steps (default 1e-6)")
    parser.add_argument("--warmup", type=int, default=500,
                        help="steps of linear warmup to --lr (default 500)")
    parser.add_argument("--schedule", choices=["cosine", "constant"], default="cosine",
                        help="cosine: warmup, then cosine decay to --lr-min at --steps (default); "
                             "constant: --lr throughout")
    parser.add_argument("--clip", type=float, default=1.0,
                        help="clip the global gradient norm to this (0: off; default 1.0)")
    parser.add_argument("--ema", type=float, default=0.999,
                        help="decay of the weights' moving average used for validation and "
                             "best.safetensors (0: off; default 0.999)")
    parser.add_argument("--name", default=None,
                        help="model name prefix in the weights' metadata (default vsremaster-SIZE)")
    parser.add_argument("--beta", type=float, default=1.0, help="weight of the ab loss (Eq. 3)")
    parser.add_argument("--max-refs", type=int, default=6)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--workers", type=int, default=0, help="data-loading processes")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-every", type=int, default=500)
    parser.add_argument("--val-batches", type=int, default=4)
    parser.add_argument("--save-every", type=int, default=500)
    parser.add_argument("--log-every", type=int, default=10, help="steps between log.jsonl lines")
    parser.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="stop and save after this much wall time")
    parser.add_argument("--init", metavar="WEIGHTS", default=None,
                        help="start from these weights with a fresh optimizer (ignored on --resume)")
    parser.add_argument("--resume", action="store_true", help="continue from --out's checkpoint")


def run(args) -> int:
    import torch

    from ..training.data import prepare
    from ..training.loop import TrainConfig, train

    if args.crop[0] % 16 or args.crop[1] % 16:
        print("train: --crop sides must be multiples of 16", file=sys.stderr)
        return 2
    if args.warmup < 0 or args.clip < 0 or not 0 <= args.ema < 1 or args.lr_min > args.lr:
        print("train: need --warmup >= 0, --clip >= 0, 0 <= --ema < 1 and --lr-min <= --lr",
              file=sys.stderr)
        return 2
    if args.prepare:
        prepare(args.data_dir, args.cache_dir)
        if not args.out:
            return 0
    if not args.out:
        print("train: --out DIR is required", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = TrainConfig(data_dir=args.data_dir, out=args.out, size=args.size, width=args.width,
                      steps=args.steps, batch=args.batch, crop=tuple(args.crop), lr=args.lr,
                      lr_min=args.lr_min, warmup=args.warmup, schedule=args.schedule,
                      clip=args.clip, ema=args.ema, name=args.name,
                      beta=args.beta, max_refs=args.max_refs, device=args.device,
                      workers=args.workers, seed=args.seed, val_every=args.val_every,
                      val_batches=args.val_batches, save_every=args.save_every, log_every=args.log_every,
                      amp=not args.no_amp, progress=not args.no_progress,
                      max_minutes=args.max_minutes, init=args.init)
    last = train(cfg, resume=args.resume)
    print("final: " + " ".join(f"{k}={v:.4f}" for k, v in last.items()))
    return 0
