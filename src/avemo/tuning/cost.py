"""What a trained model costs to serve: its parameter count and its latency for one clip on this CPU.

A search ranks trials on accuracy; a user who serves on a small machine also needs what each one costs.
Latency is the median of a few single-clip forward passes after a warm-up one (the first pass pays for
allocation), with torch's threads as the process has them (a stage pins `train.threads`): the figure a
served request of one 3 s clip waits for, on this machine. It is a measured time, so it differs a little
from run to run and between machines; the parameter count does not, so the search's front and compact pick
are on the parameter count (tuning/front.py) and the latency is recorded beside them (the trial's user attrs and
MLflow run), never in the search's output.
"""

from __future__ import annotations

import statistics
import time

import torch


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def latency_ms(model: torch.nn.Module, inputs: tuple[torch.Tensor, ...], repeats: int = 7) -> float:
    """Median milliseconds of `repeats` forward passes of one clip (`inputs`: the model's inputs for one item,
    without the batch axis), on the CPU, after one warm-up pass."""
    batch = [x.unsqueeze(0).cpu() for x in inputs]
    model = model.cpu().eval()
    times = []
    with torch.no_grad():
        model(*batch)
        for _ in range(repeats):
            start = time.perf_counter()
            model(*batch)
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def cost(model: torch.nn.Module, inputs: tuple[torch.Tensor, ...], repeats: int = 7) -> dict[str, float | int]:
    """{'parameters': count, 'latency_ms': median single-clip latency}: what a trial records."""
    return {"parameters": parameter_count(model), "latency_ms": round(latency_ms(model, inputs, repeats), 3)}
