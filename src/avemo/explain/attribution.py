"""Importance of each unit of an input for one class, by two methods that Captum implements.

- **Occlusion**: the drop of the class probability when one unit (a band, a moment, a frame, a
  region) is replaced by the baseline, all else kept (Captum's FeatureAblation with the unit
  mask). Model-agnostic and direct, but one unit at a time: units that carry the same evidence
  (neighbouring bands) hide each other.
- **Integrated gradients**: the gradient of the class probability integrated along the straight
  path from the baseline to the input, times the input's distance from the baseline (Captum's
  IntegratedGradients), summed over each unit. Its totals add up to p(input) - p(baseline), so
  it shares the evidence among units that carry it together.

Both use the same baseline, so "removing" means the same thing for every method and for the
deletion check.
"""

from __future__ import annotations

import torch
from captum.attr import FeatureAblation, IntegratedGradients

from avemo.explain.outputs import Scores
from avemo.explain.units import unit_count, unit_means, unit_totals


def occlusion(scores: Scores, x: torch.Tensor, mask: torch.Tensor, baseline: torch.Tensor, target: torch.Tensor,
              context: tuple[torch.Tensor, ...] = (), batch: int = 64) -> torch.Tensor:
    """(B, units): p(target | x) - p(target | x with the unit at the baseline), for each unit."""
    ablation = FeatureAblation(scores)
    per_eval = max(1, batch // max(1, len(x)))  # perturbed copies of the whole batch per forward pass
    values = ablation.attribute(x, baselines=baseline.expand(1, *x.shape[1:]), target=target,
                                additional_forward_args=context or None, feature_mask=mask.to(x.device),
                                perturbations_per_eval=min(per_eval, unit_count(mask)))
    return unit_means(values.detach(), mask)  # every element of a unit holds the unit's drop


def integrated_gradients(scores: Scores, x: torch.Tensor, masks: dict[str, torch.Tensor], baseline: torch.Tensor,
                         target: torch.Tensor, context: tuple[torch.Tensor, ...] = (), steps: int = 32,
                         batch: int = 64) -> dict[str, torch.Tensor]:
    """{unit kind: (B, units)}: integrated gradients of p(target) summed over each unit of each mask
    (one integration serves every mask)."""
    values = IntegratedGradients(scores).attribute(
        x, baselines=baseline.expand(1, *x.shape[1:]), target=target, additional_forward_args=context or None,
        n_steps=steps, internal_batch_size=batch)
    return {kind: unit_totals(values.detach(), mask) for kind, mask in masks.items()}
