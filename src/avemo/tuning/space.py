"""Search spaces written in params.yaml, sampled by an Optuna trial into params overrides.

A space maps a knob to its choices: a list is categorical; `{low, high}` is a float range
(`log: true` for a log scale), integers if both bounds are integers (`step` allowed).
Knobs with dots are params.yaml paths (`train.loop.lr`, `models.audio.dropout`); the loop's
keys (`train.loop.*`) apply to the searched family (`train.<family>.*`), which is where the
loop reads a family's own settings. A few structured knobs build several params at once:

- `blocks`, `kernel`, `padding`, `channels`: the audio CNN's number of blocks, one kernel
  per block ("5x5", "3x7" = 3 frequency rows x 7 frames), padding on/off, the first block's
  channels (doubled once, then kept: params.yaml's 8, 16, 16);
- `video_blocks`, `video_channels`: the video 3-D CNN's depth and first width, sampled only
  when fusion starts from scratch (`train.fusion_init: scratch`): trained or pre-trained
  encoders bring their own architecture.

params.py checks a space when params.yaml loads (`check_space`): each key one of these shorthands or a
params path, each choice and bound a value of its field.
"""

from __future__ import annotations

from typing import Any

import optuna

from avemo.params import SHORTHANDS, Params


def suggest(trial: optuna.Trial, name: str, spec: Any) -> Any:
    """One knob: a list is categorical, a {low, high} mapping a float or int range."""
    if isinstance(spec, list):
        return trial.suggest_categorical(name, spec)
    if isinstance(spec, dict) and {"low", "high"} <= set(spec):
        if isinstance(spec["low"], int) and isinstance(spec["high"], int) and not spec.get("log"):
            return trial.suggest_int(name, spec["low"], spec["high"], step=spec.get("step", 1))
        return trial.suggest_float(name, float(spec["low"]), float(spec["high"]), log=bool(spec.get("log", False)))
    raise ValueError(f"search space: {name!r} must be a list of choices or {{low, high}}, not {spec!r}")


def kernel(text: str) -> list[int]:
    """'3x7' -> [3, 7] (frequency rows x time frames)."""
    try:
        rows, frames = (int(x) for x in str(text).lower().split("x"))
    except ValueError:
        raise ValueError(f"search space: kernel {text!r} must look like '5x5' or '3x7'") from None
    return [rows, frames]


def sample(trial: optuna.Trial, space: dict, family: str) -> dict[str, Any]:
    """The params overrides (path -> value) of one trial, sampled from the space."""
    overrides = {}
    for name, spec in space.items():
        if name in SHORTHANDS:
            continue
        value = suggest(trial, name, spec)
        target = f"train.{family}.{name.removeprefix('train.loop.')}" if name.startswith("train.loop.") else name
        overrides[target] = value
    if "blocks" in space:
        blocks = suggest(trial, "blocks", space["blocks"])
        width = suggest(trial, "channels", space.get("channels", [8]))
        overrides["models.audio.channels"] = audio_channels(width, blocks)
        overrides["models.audio.kernels"] = [kernel(suggest(trial, f"kernel_{b + 1}", space.get("kernel", ["3x3"])))
                                             for b in range(blocks)]
        overrides["models.audio.padding"] = [suggest(trial, "padding", space.get("padding", [True]))] * blocks
    if "video_blocks" in space and overrides.get("train.fusion_init", "scratch") == "scratch":
        blocks = suggest(trial, "video_blocks", space["video_blocks"])
        width = suggest(trial, "video_channels", space.get("video_channels", [8]))
        overrides["models.video.channels"] = [width * min(2 ** b, 4) for b in range(blocks)]
    return overrides


def audio_channels(width: int, blocks: int) -> list[int]:
    return [width * min(2 ** b, 2) for b in range(blocks)]


def knobs_of(typed: Params, space: dict, family: str) -> dict[str, Any] | None:
    """The knob values that reproduce `typed` (the hand-set recipe), to enqueue as the first trial
    so that a search never ends below its starting point; None if the space cannot express them."""
    params = typed.model_dump(mode="json")
    models, loop = params["models"], typed.train.loop_for(family).model_dump(mode="json")
    knobs: dict[str, Any] = {}
    for name in space:
        if name in SHORTHANDS:
            continue
        if name.startswith("train.loop."):
            knobs[name] = loop[name.removeprefix("train.loop.")]
        else:
            node: Any = params
            for key in name.split("."):
                node = node[key]
            knobs[name] = node
    if "blocks" in space:
        audio = models["audio"]
        knobs.update(blocks=len(audio["channels"]), channels=audio["channels"][0], padding=audio["padding"][0],
                     **{f"kernel_{b + 1}": f"{k[0]}x{k[1]}" for b, k in enumerate(audio["kernels"])})
        if audio_channels(knobs["channels"], knobs["blocks"]) != list(audio["channels"]):
            return None
    if "video_blocks" in space and knobs.get("train.fusion_init", "scratch") == "scratch":
        video = models["video"]
        knobs.update(video_blocks=len(video["channels"]), video_channels=video["channels"][0])
    return knobs if all(_allowed(space.get(_space_key(k)), v) for k, v in knobs.items()) else None


def _space_key(knob: str) -> str:
    return "kernel" if knob.startswith("kernel_") else knob


def _allowed(spec: Any, value: Any) -> bool:
    if isinstance(spec, list):
        return value in spec
    if isinstance(spec, dict):
        return spec["low"] <= value <= spec["high"]
    return False
