"""One training loop for every model: plain and readable, in the manner of nanoGPT.

AdamW (or the study's Adam) with a linear warm-up and a cosine decay of the learning rate,
gradient clipping, an exponential moving average (EMA) of the weights, and a final model
that is either the EMA after the last epoch or the epoch with the best validation UA, left in
the model (the caller saves it with what rebuilds it: models/checkpoint.py). Mixed precision on
CUDA. Deterministic for a seed, and resumable: every epoch writes `last.pt` in the resume folder,
from which a re-run after a kill continues and ends with the figures of an uninterrupted run.
Batches are (*inputs, target). What is learnt is a task: emotion classification (cross-entropy,
validated by UA) by default, or any object with the same three members, such as the audio-video
synchronisation pre-training (training/sync.py).

Under `torchrun` (a process group initialised by the caller) it trains with
DistributedDataParallel: each rank sees its shard of the training set (DistributedSampler),
the training loss is reduced across ranks, every rank evaluates the full validation set (the
replicas are identical, so are the metrics), and only rank 0 saves and reports.

The moving average is torch's own `AveragedModel` with its EMA update (buffers such as batch-norm
statistics follow the live model); it gives the same weights as the hand-written average it
replaced (checked bit for bit on a training run).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from avemo.determinism import pick_device
from avemo.metrics import classification_metrics
from avemo.params import Loop


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite (e.g. a learning rate far too high)."""


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@contextmanager
def process_group() -> Iterator[None]:
    """Under torchrun (WORLD_SIZE > 1): join the process group (NCCL on GPUs, gloo on CPUs), leave it after."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        yield
        return
    dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    try:
        yield
    finally:
        dist.destroy_process_group()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class History:
    epochs: list[dict] = field(default_factory=list)  # metrics: equal for equal seeds
    speed: list[dict] = field(default_factory=list)  # items/s and the share of time waiting for data
    best_epoch: int = -1
    best_score: float = -1.0  # the task's validation score (UA for classification) of the kept weights
    resumed_from: int = -1  # the first epoch this process trained after resuming; -1: not resumed


def learning_rate(step: int, total_steps: int, warmup_steps: int, cfg: Loop) -> float:
    """Linear warm-up from lr/100, then constant or a cosine decay to lr/100."""
    floor = cfg.lr / 100
    if step < warmup_steps:
        return floor + (cfg.lr - floor) * step / warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def evaluate(model: nn.Module, loader: DataLoader, device: torch.device, classes: list[str],
             loss_fn: nn.Module | None = None) -> tuple[dict, np.ndarray, np.ndarray]:
    """Metrics (and mean loss) of a model over a loader; also the targets and predictions."""
    metrics, y_true, probabilities = predict(model, loader, device, loss_fn)
    y_pred = probabilities.argmax(1) if len(probabilities) else np.zeros(0, int)
    out = classification_metrics(y_true, y_pred, classes)
    out.update(metrics)
    return out, y_true, y_pred


def predict(model: nn.Module, loader: DataLoader, device: torch.device,
            loss_fn: nn.Module | None = None) -> tuple[dict, np.ndarray, np.ndarray]:
    """({'loss': mean loss} if a loss is given, targets, class probabilities) over a loader."""
    model.eval()
    targets, probabilities, losses = [], [], []
    with torch.no_grad():
        for *inputs, y in loader:
            inputs, y = [x.to(device) for x in inputs], y.to(device)
            logits = model(*inputs).float()
            if loss_fn is not None:
                losses.append(loss_fn(logits, y).item() * len(y))
            targets.append(y.cpu().numpy())
            probabilities.append(torch.softmax(logits, 1).cpu().numpy())
    y_true = np.concatenate(targets) if targets else np.zeros(0, int)
    probs = np.concatenate(probabilities) if probabilities else np.zeros((0, 0), np.float32)
    return ({"loss": float(sum(losses) / max(1, len(y_true)))} if loss_fn is not None else {}), y_true, probs


class Classification:
    """The emotion task: cross-entropy on class logits, validated by UA (the score), WA, macro F1 and loss."""

    score = "ua"

    def __init__(self, classes: list[str], class_weights: np.ndarray | None, cfg: Loop, device: torch.device):
        self.classes = classes
        weight = torch.tensor(class_weights, dtype=torch.float32, device=device) if class_weights is not None else None
        self.train_loss = nn.CrossEntropyLoss(weight=weight, label_smoothing=cfg.label_smoothing)
        self.val_loss = nn.CrossEntropyLoss(weight=weight)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.train_loss(outputs.float(), targets)

    def validate(self, model: nn.Module, loader: DataLoader, device: torch.device) -> dict:
        metrics, _, _ = evaluate(model, loader, device, self.classes, self.val_loss)
        return {k: metrics[k] for k in ("loss", "wa", "ua", "f1_macro")}


def config_key(cfg: Loop, model: nn.Module, n_train: int, fingerprint: str = "") -> str:
    """What a checkpoint must match to be resumed: the config, the architecture, the data size, and
    the caller's fingerprint of everything else (the stage's inputs, params and code)."""
    text = json.dumps({"cfg": cfg.model_dump(), "model": repr(model), "n_train": n_train, "fingerprint": fingerprint},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save_atomically(obj: object, path: Path) -> None:
    """Write to a temporary file, then rename: a kill mid-write leaves the previous file whole."""
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def load_resumable(last: Path, key: str, device: torch.device) -> dict | None:
    """The state in `last.pt` if it belongs to this run; a foreign or unreadable one is set aside, with a message.

    `weights_only=True`: a checkpoint holds tensors and plain containers only, so loading one
    can never run code.
    """
    if not last.exists():
        return None
    try:
        state = torch.load(last, map_location=device, weights_only=True)
        reason = "" if state.get("key") == key else "it was written by another configuration, data set or code"
    except Exception as exc:  # noqa: BLE001 - a truncated or foreign file: never resumed
        state, reason = None, f"it cannot be read safely ({type(exc).__name__}: {exc})"
    if reason:
        aside = last.with_name(f"{last.stem}.stale-{int(time.time())}.pt")
        last.replace(aside)
        print(f"not resuming from {last}: {reason}; set aside as {aside.name}", flush=True)
        return None
    return state


def train(model: nn.Module, train_set: Dataset, val_set: Dataset, classes: list[str], cfg: Loop,
          resume_dir: Path, class_weights: np.ndarray | None = None,
          on_epoch: Callable[[int, dict], None] | None = None, fingerprint: str = "", task=None) -> History:
    """Train, and leave the final weights (the kept epoch's) in `model`.

    `task` (default: emotion classification over `classes`) gives the loss and the validation.
    `resume_dir` holds `last.pt`, the state to resume from; stages keep it outside DVC's
    outputs, which DVC deletes before a stage runs.
    """
    seed_everything(cfg.seed)
    rank, world = rank_and_world()
    device = pick_device(cfg.device)
    model.to(device)
    net = model  # what the optimiser steps: the DDP wrapper under torchrun
    if world > 1:
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    use_amp = cfg.amp and device.type == "cuda"
    optimizer_class = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    optimizer = optimizer_class(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    task = task or Classification(classes, class_weights, cfg, device)
    generator = torch.Generator().manual_seed(cfg.seed)
    sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed) if world > 1 else None
    train_loader = DataLoader(train_set, batch_size=cfg.batch_size, shuffle=sampler is None, sampler=sampler,
                              generator=generator, num_workers=cfg.num_workers, pin_memory=cfg.pin_memory)
    val_loader = DataLoader(val_set, batch_size=cfg.batch_size, num_workers=cfg.num_workers, pin_memory=cfg.pin_memory)
    steps_per_epoch = len(train_loader)
    total_steps, warmup_steps = cfg.epochs * steps_per_epoch, round(cfg.warmup_epochs * steps_per_epoch)
    average = None
    if cfg.ema_decay:
        average = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay))
        average.update_parameters(model)  # the average starts at the initial weights
    kept = average.module if average else model  # the weights that are validated and kept

    resume_dir.mkdir(parents=True, exist_ok=True)
    last = resume_dir / "last.pt"
    key = config_key(cfg, model, len(train_set), fingerprint)
    history, start, best_state = History(), 0, None
    state = load_resumable(last, key, device)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        if average:
            average.load_state_dict(state["average"])
        history, start = History(**state["history"]), state["epoch"] + 1
        history.resumed_from = start
        best_state = state["best"]
        if on_epoch and rank == 0:
            for record in history.epochs:  # replay what was logged before the interruption
                on_epoch(record["epoch"], record)

    step = start * steps_per_epoch
    for epoch in range(start, cfg.epochs):
        if cfg.select == "best" and cfg.patience and history.best_epoch >= 0 and epoch - history.best_epoch > cfg.patience:
            break  # early stopping
        if sampler is not None:
            sampler.set_epoch(epoch)
        if hasattr(train_set, "set_epoch"):  # data that changes by epoch (e.g. a curriculum of negatives)
            train_set.set_epoch(epoch)
        net.train()
        total, seen, waited = 0.0, 0, 0.0
        started = tick = time.perf_counter()
        for *inputs, y in train_loader:
            waited += time.perf_counter() - tick  # the step had to wait this long for its batch
            inputs, y = [x.to(device, non_blocking=True) for x in inputs], y.to(device, non_blocking=True)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, total_steps, warmup_steps, cfg)
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                loss = task.loss(net(*inputs), y)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.clip_grad_norm:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(net.parameters(), cfg.clip_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            if average:
                average.update_parameters(model)
            step += 1
            total, seen = total + loss.item() * len(y), seen + len(y)  # .item() waits for the device
            tick = time.perf_counter()
        elapsed = time.perf_counter() - started
        if not math.isfinite(total):
            raise TrainingDiverged(f"epoch {epoch}: the training loss is {total / max(1, seen)} (lr {cfg.lr}); "
                                   "lower train.loop.lr or raise train.loop.clip_grad_norm")
        history.speed.append({"epoch": epoch, "items_per_s": seen * world / elapsed, "data_wait_share": waited / elapsed})
        if world > 1:
            sums = torch.tensor([total, seen], dtype=torch.float64, device=device)
            dist.all_reduce(sums)
            total, seen = sums.tolist()
        val = task.validate(kept, val_loader, device)
        record = {"epoch": epoch, "train_loss": total / max(1, seen), **{f"val_{k}": v for k, v in val.items()},
                  "lr": optimizer.param_groups[0]["lr"]}
        history.epochs.append(record)
        improved = val[task.score] > history.best_score if cfg.select == "best" else True
        if improved:
            history.best_score, history.best_epoch = val[task.score], epoch
        if improved:
            best_state = {k: v.detach().clone() for k, v in kept.state_dict().items()}
        if rank == 0:
            save_atomically({"key": key, "epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                             "scaler": scaler.state_dict(), "generator": generator.get_state(),
                             "torch_rng": torch.get_rng_state(), "average": average.state_dict() if average else None,
                             "best": best_state, "history": asdict(history)}, last)
            if on_epoch:
                on_epoch(epoch, {**record, **history.speed[-1]})
        if world > 1:
            dist.barrier()  # checkpoints are on disk before any rank goes on
    if best_state is not None:
        model.load_state_dict(best_state)
    return history


def epochs_at_chance(history: History, n_classes: int, tolerance: float = 0.02) -> int:
    """Leading epochs whose training loss stayed within `tolerance` (relative) of ln(classes): a stalled start."""
    chance = math.log(n_classes)
    count = 0
    for record in history.epochs:
        if record["train_loss"] < chance * (1 - tolerance):
            break
        count += 1
    return count
