"""The training loop (the paper's Eq. 3): restoration and colorization trained jointly.

Each step draws a batch of 5-frame clips with 0-6 references (one number per batch),
degrades the grey clips (Table 3 + the deterioration bank), and minimises

    loss = L1(R(x), L) + beta * L1(C(R(x), refs), ab)

with Adam. The recipe around it:

- learning rate: linear warmup over `warmup` steps, then a cosine decay from `lr` to
  `lr_min` at `steps` (`lr_at`, a pure function of the step, so resuming continues the
  same schedule; torch's LambdaLR applies it, `lr_schedule`); `schedule="constant"`
  keeps `lr` throughout;
- gradient clipping: the global gradient norm is clipped to `clip` (0 disables);
- an exponential moving average of the weights (`WeightEMA`, torch's AveragedModel,
  decay `ema`, warmed up as min(ema, (1 + step) / (10 + step))); validation and
  `best.safetensors` use it.

Batches are a pure function of (seed, step), so a resumed run draws exactly the batches
the interrupted one would have, and it ends where the uninterrupted run would. When
`max_minutes` runs out the sampler stops handing out steps and the batches the workers
already made are drained (not trained on), so the workers shut down the ordinary way.
Checkpoints in `out/`:

- `last.safetensors`: both networks' raw weights (the project's weights format, usable
  by `Remaster` and `evaluate`), metadata with the step and the width;
- `state.pt`: optimizer state, the EMA weights, step and config (`torch.save`, read with
  weights_only=True);
- `best.safetensors`: the EMA weights with the best validation loss so far;
- `log.jsonl`: training losses, learning rate, gradient norm, validation figures.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel

from ..color.lab import rgb_to_model
from ..model import NetworkC, NetworkR
from ..model.checkpoint import read_state_dicts, save_checkpoint
from .augment import TABLE3, Table3, degrade
from .data import ClipSampler, Item, load_items
from .deterioration import EVALUATION, Deteriorator, Settings

SIZES = {"full": 1.0, "lite": 0.25}
WEIGHTS_FILE = "last.safetensors"
BEST_FILE = "best.safetensors"
STATE_FILE = "state.pt"
LOG_FILE = "log.jsonl"


@dataclass
class TrainConfig:
    data_dir: str = ""
    out: str = "out"
    size: str = "lite"
    width: float | None = None        # overrides `size` (e.g. 0.125 for tests)
    steps: int = 100_000
    batch: int = 4
    crop: tuple[int, int] = (256, 256)
    frames: int = 5
    max_refs: int = 6
    lr: float = 2e-4
    lr_min: float = 1e-6              # the cosine ends here at `steps`
    warmup: int = 500                 # linear warmup steps
    schedule: str = "cosine"          # or "constant"
    clip: float = 1.0                 # global gradient-norm clip (0: off)
    ema: float = 0.999                # weight EMA decay (0: off; validation uses raw weights)
    name: str | None = None           # weights name prefix (default vsremaster-<size>)
    beta: float = 1.0
    device: str = "cpu"
    workers: int = 0
    seed: int = 0
    val_every: int = 500
    val_batches: int = 4
    save_every: int = 500
    log_every: int = 10
    amp: bool = True                  # bf16 autocast on CUDA
    progress: bool = True
    max_minutes: float | None = None  # stop (and save) after this much wall time
    init: str | None = None           # start from these weights (fresh optimizer)
    extra: dict = field(default_factory=dict)

    @property
    def model_width(self) -> float:
        return float(self.width if self.width is not None else SIZES[self.size])

    @property
    def model_name(self) -> str:
        return self.name or f"vsremaster-{self.size}"


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate of the update made at `step` (0-based): warmup, then cosine to lr_min."""
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule != "cosine":
        raise ValueError(f"unknown schedule {cfg.schedule!r} (cosine or constant)")
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    span = max(1, cfg.steps - cfg.warmup)
    t = min(1.0, (step - cfg.warmup) / span)
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1.0 + math.cos(math.pi * t))


def ema_decay(step: int, decay: float) -> float:
    """The EMA's decay after `step` updates: short memory first, `decay` later."""
    return min(decay, (1.0 + step) / (10.0 + step))


def lr_schedule(opt: torch.optim.Optimizer, cfg: TrainConfig,
                step: int = 0) -> torch.optim.lr_scheduler.LambdaLR:
    """torch's scheduler for `lr_at`, positioned for the update made at `step` (0-based).

    A LambdaLR over the pure function rather than SequentialLR(LinearLR,
    CosineAnnealingLR): those compute each rate from the previous one and the cosine
    climbs again after its end, so a resumed run would not continue the same schedule."""
    for group in opt.param_groups:
        group["initial_lr"] = cfg.lr
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_at(s, cfg) / cfg.lr,
                                             last_epoch=step - 1)


class WeightEMA:
    """Exponential moving average of both networks' state (parameters and BatchNorm
    statistics), kept by torch's `AveragedModel`; integer buffers follow the raw model.

    `r` and `c` are ordinary NetworkR/NetworkC copies holding the averages, so they
    validate and save like the raw models.
    """

    def __init__(self, model_r, model_c, decay: float):
        self.decay = decay
        self._averaged = [AveragedModel(m, multi_avg_fn=self._fold, use_buffers=True)
                          for m in (model_r, model_c)]
        self.r, self.c = (a.module for a in self._averaged)
        for m in (self.r, self.c):
            m.eval()
            m.requires_grad_(False)

    @torch.no_grad()
    def _fold(self, averaged: list, raw: list, n_averaged: torch.Tensor) -> None:
        # `update` sets n_averaged to the step, so the warm-up follows it after a resume too
        # (torch's get_ema_multi_avg_fn has one fixed decay and blends integer buffers)
        weight = 1.0 - ema_decay(int(n_averaged) - 1, self.decay)
        for avg, now in zip(averaged, raw):
            if avg.is_floating_point():
                avg.lerp_(now, weight)
            else:
                avg.copy_(now)

    @torch.no_grad()
    def update(self, model_r, model_c, step: int) -> None:
        """Fold in the raw weights after the update that made `step` updates in all."""
        for averaged, raw in zip(self._averaged, (model_r, model_c)):
            averaged.n_averaged.fill_(step)
            averaged.update_parameters(raw)

    def state_dict(self) -> dict:
        return {"r": _cpu_state(self.r), "c": _cpu_state(self.c)}

    def load_state_dict(self, state: dict) -> None:
        self.r.load_state_dict(state["r"])
        self.c.load_state_dict(state["c"])


# --------------------------------------------------------------------------- batches

def to_model(clips: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB clips [B, T, H, W, 3] -> model L [B, 1, T, H, W] and ab [B, 2, T, H, W]."""
    rgb = torch.from_numpy(np.ascontiguousarray(clips)).permute(0, 1, 4, 2, 3)
    l, ab = rgb_to_model(rgb)
    return l.transpose(1, 2).contiguous(), ab.transpose(1, 2).contiguous()


class BatchMaker:
    """Turns sampled clips into network batches: x, l, ab [B, C, T, H, W], refs [B, N, 3, H, W]."""

    def __init__(self, items: list[Item], crop=(256, 256), frames: int = 5,
                 deteriorator: Deteriorator | None = None):
        self.sampler = ClipSampler(items, crop, frames)
        self.deteriorator = deteriorator or Deteriorator()

    def make(self, rng: np.random.Generator, batch: int, n_refs: int,
             settings: Settings | None = None, t3: Table3 | None = TABLE3) -> dict:
        pairs = [self.sampler.sample(rng, n_refs) for _ in range(batch)]
        l, ab = to_model(np.stack([c for c, _ in pairs]))
        grey = l[:, 0].numpy()
        x = np.stack([degrade(g, rng, self.deteriorator, settings, t3) for g in grey])
        refs = torch.from_numpy(np.stack([r for _, r in pairs])).permute(0, 1, 4, 2, 3)
        return {"x": torch.from_numpy(x)[:, None].contiguous(), "l": l, "ab": ab,
                "refs": refs.contiguous()}


class BatchDataset(torch.utils.data.Dataset):
    """Batch `i` is a pure function of (seed, i): resuming redraws the same batches."""

    def __init__(self, maker: BatchMaker, batch: int, seed: int, max_refs: int):
        self.maker, self.batch, self.seed, self.max_refs = maker, batch, seed, max_refs

    def __len__(self) -> int:
        return 1 << 40

    def __getitem__(self, i: int) -> dict:
        rng = np.random.default_rng([self.seed, int(i)])
        return self.maker.make(rng, self.batch, int(rng.integers(0, self.max_refs + 1)))


def _worker_init(_):
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


# --------------------------------------------------------------------------- models

def build_models(width: float, device="cpu") -> tuple[NetworkR, NetworkC]:
    return NetworkR(width).to(device), NetworkC(width).to(device)


def make_optimizer(model_r, model_c, lr: float) -> torch.optim.Adam:
    return torch.optim.Adam(list(model_r.parameters()) + list(model_c.parameters()), lr=lr)


def forward_losses(model_r, model_c, batch: dict, beta: float, device, amp: bool = False) -> dict:
    """Run both networks on a batch; return the loss terms (tensors) and outputs."""
    x, l, ab = (batch[k].to(device, non_blocking=True) for k in ("x", "l", "ab"))
    refs = batch["refs"]
    refs = refs.to(device, non_blocking=True) if refs.shape[1] > 0 else None
    use_amp = amp and torch.device(device).type == "cuda"
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
        restored = model_r(x)
        ab_pred = model_c(restored, refs)
    restored, ab_pred = restored.float(), ab_pred.float()
    loss_l = F.l1_loss(restored, l)
    loss_ab = F.l1_loss(ab_pred, ab)
    return {"loss": loss_l + beta * loss_ab, "loss_l": loss_l, "loss_ab": loss_ab,
            "restored": restored, "ab_pred": ab_pred, "x": x, "l": l, "ab": ab, "refs": refs}


def train_step(model_r, model_c, opt, batch: dict, beta: float, device, amp=False,
               lr: float | None = None, clip: float = 0.0) -> dict:
    """One Adam update (at learning rate `lr` when given; gradient norm clipped to `clip`).

    Returns the losses and `grad_norm`, the global gradient norm before clipping.
    """
    model_r.train()
    model_c.train()
    out = forward_losses(model_r, model_c, batch, beta, device, amp)
    opt.zero_grad(set_to_none=True)
    out["loss"].backward()
    params = [p for g in opt.param_groups for p in g["params"] if p.grad is not None]
    if clip and clip > 0:
        norm = torch.nn.utils.clip_grad_norm_(params, clip)
    else:
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params]))
    if lr is not None:
        for g in opt.param_groups:
            g["lr"] = lr
    opt.step()
    result = {k: float(out[k].detach()) for k in ("loss", "loss_l", "loss_ab")}
    result["grad_norm"] = float(norm)
    return result


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(F.mse_loss(a, b))
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


@torch.no_grad()
def validate(model_r, model_c, batches: list[dict], beta: float, device, amp=False) -> dict:
    """Mean losses and PSNRs (L, input L, ab, and the reference-mean-colour ab) on fixed batches."""
    model_r.eval()
    model_c.eval()
    acc: dict[str, list[float]] = {}
    for batch in batches:
        out = forward_losses(model_r, model_c, batch, beta, device, amp)
        vals = {"loss": float(out["loss"]), "loss_l": float(out["loss_l"]),
                "loss_ab": float(out["loss_ab"]),
                "psnr_l": _psnr(out["restored"], out["l"]),
                "input_psnr_l": _psnr(out["x"], out["l"]),
                "psnr_ab": _psnr(out["ab_pred"], out["ab"])}
        if out["refs"] is not None:
            b, n = out["refs"].shape[:2]
            _, ref_ab = rgb_to_model(out["refs"].flatten(0, 1))
            mean_ab = ref_ab.reshape(b, n, 2, -1).mean(dim=(1, 3))[:, :, None, None, None]
            vals["refmean_psnr_ab"] = _psnr(mean_ab.expand_as(out["ab"]), out["ab"])
        for k, v in vals.items():
            acc.setdefault(k, []).append(v)
    return {k: float(np.mean(v)) for k, v in acc.items()}


def validation_batches(items: list[Item], cfg: TrainConfig, n_refs: int = 1) -> list[dict]:
    """Fixed held-out batches: evaluation deterioration, one reference, seed-stable."""
    maker = BatchMaker(items, cfg.crop, cfg.frames)
    rng = np.random.default_rng([cfg.seed, 7919])
    return [maker.make(rng, cfg.batch, n_refs, settings=EVALUATION, t3=None)
            for _ in range(cfg.val_batches)]


# --------------------------------------------------------------------------- checkpoints

def save_weights(path: Path, model_r, model_c, name: str, **meta: str) -> None:
    """Write both networks to `path` atomically (the project's safetensors format)."""
    tmp = path.with_name(path.name + ".tmp")
    save_checkpoint(tmp, _cpu_state(model_r), _cpu_state(model_c), name=name, **meta)
    os.replace(tmp, path)


def save_training_state(out: Path, model_r, model_c, opt, step: int, cfg: TrainConfig,
                        best: float, weights_name: str = WEIGHTS_FILE,
                        ema: WeightEMA | None = None) -> None:
    """`last.safetensors` (raw weights) + `state.pt`; or, with another `weights_name`, only
    that weights file, holding the EMA weights when `ema` is given."""
    out.mkdir(parents=True, exist_ok=True)
    meta = {"step": str(step), "width": str(cfg.model_width), "size": cfg.size,
            "trained_by": "vsremaster.training"}
    if weights_name != WEIGHTS_FILE:
        if ema is not None:
            save_weights(out / weights_name, ema.r, ema.c, f"{cfg.model_name}-ema-step{step}",
                         ema=str(ema.decay), **meta)
        else:
            save_weights(out / weights_name, model_r, model_c, f"{cfg.model_name}-step{step}", **meta)
        return
    save_weights(out / weights_name, model_r, model_c, f"{cfg.model_name}-step{step}", **meta)
    state = {"step": step, "optimizer": opt.state_dict(), "best": best,
             "config": {k: (list(v) if isinstance(v, tuple) else v)
                        for k, v in asdict(cfg).items() if k != "extra"}}
    if ema is not None:
        state["ema"] = ema.state_dict()
    torch.save(state, out / (STATE_FILE + ".tmp"))
    os.replace(out / (STATE_FILE + ".tmp"), out / STATE_FILE)


def _cpu_state(model) -> dict:
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def load_training_state(out: Path, model_r, model_c, opt, device="cpu",
                        ema: WeightEMA | None = None) -> tuple[int, float]:
    """Restore weights, optimizer and EMA from `out`; return (step, best validation loss).

    A state without an EMA (older runs) starts the EMA from the restored raw weights.
    """
    state_r, state_c, _ = read_state_dicts(out / WEIGHTS_FILE)
    model_r.load_state_dict(state_r)
    model_c.load_state_dict(state_c)
    state = torch.load(out / STATE_FILE, map_location=device, weights_only=True)
    opt.load_state_dict(state["optimizer"])
    if ema is not None:
        ema.load_state_dict(state["ema"] if "ema" in state
                            else {"r": model_r.state_dict(), "c": model_c.state_dict()})
    return int(state["step"]), float(state.get("best", math.inf))


# --------------------------------------------------------------------------- the loop

class StepSampler:
    """Steps `start`..`stop - 1` for the DataLoader, until `halt()`: then it hands out no more.

    Halting instead of leaving the loop lets the DataLoader deliver what its workers
    already made and shut them down as after a finished run; a `break` out of the loop
    left workers mid-batch and they died by SIGABRT at exit.
    """

    def __init__(self, start: int, stop: int):
        self.start, self.stop, self.halted = start, stop, False

    def halt(self) -> None:
        self.halted = True

    def __iter__(self):
        for i in range(self.start, self.stop):
            if self.halted:
                return
            yield i

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


def _log(out: Path, record: dict) -> None:
    with open(out / LOG_FILE, "a") as f:
        f.write(json.dumps(record) + "\n")


def train(cfg: TrainConfig, resume: bool = False, items: list[Item] | None = None,
          val_items: list[Item] | None = None) -> dict:
    """Train until `cfg.steps`; return the last validation figures (or train losses)."""
    from tqdm import tqdm

    device = torch.device(cfg.device)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    items = items if items is not None else load_items(cfg.data_dir, "train")
    if val_items is None:
        try:
            val_items = load_items(cfg.data_dir, "heldout")
        except FileNotFoundError:
            val_items = items
    model_r, model_c = build_models(cfg.model_width, device)
    opt = make_optimizer(model_r, model_c, cfg.lr)
    step, best = 0, math.inf
    if cfg.init and not (resume and (out / STATE_FILE).exists()):
        state_r, state_c, _ = read_state_dicts(cfg.init)
        model_r.load_state_dict(state_r)
        model_c.load_state_dict(state_c)
    ema = WeightEMA(model_r, model_c, cfg.ema) if cfg.ema else None
    if resume and (out / STATE_FILE).exists():
        step, best = load_training_state(out, model_r, model_c, opt, device, ema)
    schedule = lr_schedule(opt, cfg, step)
    eval_r, eval_c = (ema.r, ema.c) if ema else (model_r, model_c)
    val = validation_batches(val_items, cfg) if cfg.val_every else []
    dataset = BatchDataset(BatchMaker(items, cfg.crop, cfg.frames), cfg.batch, cfg.seed, cfg.max_refs)
    sampler = StepSampler(step, cfg.steps)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=None, sampler=sampler, num_workers=cfg.workers,
        worker_init_fn=_worker_init if cfg.workers else None,
        pin_memory=device.type == "cuda", persistent_workers=False,
        # fork after cv2/torch thread pools ran in this process can deadlock the workers
        multiprocessing_context="spawn" if cfg.workers else None,
        prefetch_factor=4 if cfg.workers else None)
    last: dict = {}
    bar = tqdm(total=cfg.steps, initial=step, disable=not cfg.progress, dynamic_ncols=True,
               desc=f"train {cfg.size} w={cfg.model_width:g}")
    smooth = None
    t0 = time.time()
    for batch in loader:
        if sampler.halted:
            continue                  # made before the time limit; drained, not trained on
        lr = schedule.get_last_lr()[0]
        losses = train_step(model_r, model_c, opt, batch, cfg.beta, device, cfg.amp,
                            clip=cfg.clip)
        schedule.step()
        step += 1
        if ema is not None:
            ema.update(model_r, model_c, step)
        smooth = losses if smooth is None else {k: 0.95 * smooth[k] + 0.05 * v
                                                for k, v in losses.items()}
        bar.update(1)
        bar.set_postfix(loss=f"{smooth['loss']:.4f}", l=f"{smooth['loss_l']:.4f}",
                        ab=f"{smooth['loss_ab']:.4f}", lr=f"{lr:.2e}")
        last = dict(losses)
        if step % cfg.log_every == 0:
            _log(out, {"step": step, "time": round(time.time() - t0, 1), "lr": lr, **losses})
        if val and cfg.val_every and step % cfg.val_every == 0:
            last = validate(eval_r, eval_c, val, cfg.beta, device, cfg.amp)
            _log(out, {"step": step, "val": last, "ema": bool(ema)})
            bar.write(f"step {step}: val{' (EMA)' if ema else ''} "
                      + " ".join(f"{k}={v:.4f}" for k, v in last.items()))
            if last["loss"] < best:
                best = last["loss"]
                save_training_state(out, model_r, model_c, opt, step, cfg, best, BEST_FILE, ema)
        if step % cfg.save_every == 0 or step == cfg.steps:
            save_training_state(out, model_r, model_c, opt, step, cfg, best, ema=ema)
        if (cfg.max_minutes is not None and not sampler.halted
                and time.time() - t0 > 60 * cfg.max_minutes):
            bar.write(f"step {step}: time limit of {cfg.max_minutes:g} min reached")
            sampler.halt()
    bar.close()
    if val and cfg.val_every and sampler.halted and step % cfg.val_every:
        # stopped by the clock between validations: the last weights get their turn too
        last = validate(eval_r, eval_c, val, cfg.beta, device, cfg.amp)
        _log(out, {"step": step, "val": last, "ema": bool(ema)})
        if last["loss"] < best:
            best = last["loss"]
            save_training_state(out, model_r, model_c, opt, step, cfg, best, BEST_FILE, ema)
    if step % cfg.save_every and step != cfg.steps:
        save_training_state(out, model_r, model_c, opt, step, cfg, best, ema=ema)
    return last
