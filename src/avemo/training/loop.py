"""One training loop for every model: plain and readable, in the manner of nanoGPT.

Adam or AdamW with weight decay, early stopping on validation UA, the best checkpoint kept, mixed
precision on CUDA, deterministic seeding, and resumption from the last checkpoint: a re-run
after a kill continues where it stopped. Batches are (*inputs, target), so audio, video and
fusion models share it.

Under `torchrun` (a process group initialised by the caller) it trains with
DistributedDataParallel: each rank sees its shard of the training set (DistributedSampler),
the training loss is reduced across ranks, every rank evaluates the full validation set (the
replicas are identical, so are the metrics), and only rank 0 saves and reports.
"""

from __future__ import annotations

import hashlib
import json
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
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from avemo.metrics import classification_metrics


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 5
    batch_size: int = 32
    optimizer: str = "adamw"  # 'adamw' (decoupled decay) or 'adam' (the study's: decay as L2 in the gradient)
    lr: float = 1e-4  # the study: Adam, lr 1e-4, weight decay 0.01
    weight_decay: float = 0.01
    patience: int = 3  # epochs without a better validation UA before stopping
    seed: int = 0
    num_workers: int = 0
    pin_memory: bool = False
    amp: bool = True  # mixed precision, on CUDA only
    device: str = "auto"


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


def pick_device(name: str = "auto") -> torch.device:
    """CUDA (this rank's GPU under torchrun), then Apple MPS, then CPU."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class History:
    epochs: list[dict] = field(default_factory=list)  # metrics: equal for equal seeds
    speed: list[dict] = field(default_factory=list)  # items/s and the share of time waiting for data
    best_epoch: int = -1
    best_ua: float = -1.0


def evaluate(model: nn.Module, loader: DataLoader, device: torch.device, classes: list[str],
             loss_fn: nn.Module | None = None) -> tuple[dict, np.ndarray, np.ndarray]:
    """Metrics (and mean loss) of a model over a loader; also the targets and predictions."""
    model.eval()
    targets, predictions, losses = [], [], []
    with torch.no_grad():
        for *inputs, y in loader:
            inputs, y = [x.to(device) for x in inputs], y.to(device)
            logits = model(*inputs).float()
            if loss_fn is not None:
                losses.append(loss_fn(logits, y).item() * len(y))
            targets.append(y.cpu().numpy())
            predictions.append(logits.argmax(1).cpu().numpy())
    y_true = np.concatenate(targets) if targets else np.zeros(0, int)
    y_pred = np.concatenate(predictions) if predictions else np.zeros(0, int)
    metrics = classification_metrics(y_true, y_pred, classes)
    if loss_fn is not None:
        metrics["loss"] = float(sum(losses) / max(1, len(y_true)))
    return metrics, y_true, y_pred


def config_key(cfg: TrainConfig, model: nn.Module, n_train: int) -> str:
    """What a checkpoint must match to be resumed: the config, the architecture, the data size."""
    text = json.dumps({"cfg": asdict(cfg), "model": repr(model), "n_train": n_train}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def train(model: nn.Module, train_set: Dataset, val_set: Dataset, classes: list[str], cfg: TrainConfig,
          checkpoint_dir: Path, class_weights: np.ndarray | None = None,
          on_epoch: Callable[[int, dict], None] | None = None) -> History:
    """Train, keeping `best.pt` (best validation UA) and `last.pt` (for resuming) in checkpoint_dir."""
    seed_everything(cfg.seed)
    rank, world = rank_and_world()
    device = pick_device(cfg.device)
    model.to(device)
    net = model  # what the optimiser steps: the DDP wrapper under torchrun
    if world > 1:
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    use_amp = cfg.amp and device.type == "cuda"
    optimizers = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    if cfg.optimizer not in optimizers:
        raise ValueError(f"train.loop.optimizer must be one of {sorted(optimizers)}, not {cfg.optimizer!r}")
    optimizer = optimizers[cfg.optimizer](net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    weight = torch.tensor(class_weights, dtype=torch.float32, device=device) if class_weights is not None else None
    loss_fn = nn.CrossEntropyLoss(weight=weight)
    generator = torch.Generator().manual_seed(cfg.seed)
    sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed) if world > 1 else None
    train_loader = DataLoader(train_set, batch_size=cfg.batch_size, shuffle=sampler is None, sampler=sampler,
                              generator=generator, num_workers=cfg.num_workers, pin_memory=cfg.pin_memory)
    val_loader = DataLoader(val_set, batch_size=cfg.batch_size, num_workers=cfg.num_workers, pin_memory=cfg.pin_memory)

    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    last, best = checkpoint_dir / "last.pt", checkpoint_dir / "best.pt"
    key = config_key(cfg, model, len(train_set))
    history, start = History(), 0
    if last.exists():
        state = torch.load(last, map_location=device, weights_only=False)
        if state["key"] == key:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scaler.load_state_dict(state["scaler"])
            generator.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
            history, start = History(**state["history"]), state["epoch"] + 1
            if on_epoch and rank == 0:
                for record in history.epochs:  # replay what was logged before the interruption
                    on_epoch(record["epoch"], record)

    for epoch in range(start, cfg.epochs):
        if epoch - history.best_epoch > cfg.patience and history.best_epoch >= 0:
            break  # early stopping
        if sampler is not None:
            sampler.set_epoch(epoch)
        net.train()
        total, seen, waited = 0.0, 0, 0.0
        started = tick = time.perf_counter()
        for *inputs, y in train_loader:
            waited += time.perf_counter() - tick  # the step had to wait this long for its batch
            inputs, y = [x.to(device, non_blocking=True) for x in inputs], y.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                loss = loss_fn(net(*inputs).float(), y)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            total, seen = total + loss.item() * len(y), seen + len(y)  # .item() waits for the device
            tick = time.perf_counter()
        elapsed = time.perf_counter() - started
        history.speed.append({"epoch": epoch, "items_per_s": seen * world / elapsed, "data_wait_share": waited / elapsed})
        if world > 1:
            sums = torch.tensor([total, seen], dtype=torch.float64, device=device)
            dist.all_reduce(sums)
            total, seen = sums.tolist()
        val, _, _ = evaluate(model, val_loader, device, classes, loss_fn)
        record = {"epoch": epoch, "train_loss": total / max(1, seen), "val_loss": val["loss"],
                  "val_wa": val["wa"], "val_ua": val["ua"], "val_f1_macro": val["f1_macro"]}
        history.epochs.append(record)
        improved = val["ua"] > history.best_ua
        if improved:
            history.best_ua, history.best_epoch = val["ua"], epoch
        if rank == 0:
            if improved:
                torch.save(model.state_dict(), best)
            torch.save({"key": key, "epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "scaler": scaler.state_dict(), "generator": generator.get_state(),
                        "torch_rng": torch.get_rng_state(), "history": asdict(history)}, last)
            if on_epoch:
                on_epoch(epoch, {**record, **history.speed[-1]})
        if world > 1:
            dist.barrier()  # checkpoints are on disk before any rank goes on
    if best.exists():
        model.load_state_dict(torch.load(best, map_location=device, weights_only=True))
    return history
