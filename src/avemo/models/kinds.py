"""The audio model kinds and the audio network's knobs, without torch: params validation reads them at every
stage's start, and the data stages should neither import torch nor re-run when a network's code changes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: The audio model kinds, timm-style: each kind's recurrent read-out along time (the name of a torch.nn
#: recurrent class, or any `nn.RNNBase`-like class, built with the same arguments), or None for the CNN that
#: flattens or pools its map. Params validation, the search space, the study grid, the report and the
#: benchmarks read this table: a new kind is one entry here (models/audio.py builds it).
KINDS: dict[str, str | type | None] = {"cnn": None, "cnn_lstm": "LSTM", "cnn_rnn": "RNN"}

#: The CNN's read-outs of its feature map: 'flatten' (the study) or a pool over time (models/audio.py TIME_POOLS).
POOLINGS = ("flatten", "mean", "meanmax", "meanstd", "stats")


class AudioLayers(BaseModel):
    """The network's knobs: params.yaml's `models.audio` (params.AudioModel adds its preset) and, with the input
    shape, a built network's configuration (AudioNetConfig), so each field and its default is written once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str = "cnn"  # a key of KINDS
    channels: tuple[int, ...] = (8, 16, 16)
    kernels: tuple[tuple[int, int], ...] = ((5, 5), (3, 3), (3, 3))
    padding: tuple[bool, ...] = (True, True, True)  # per block: pad by kernel // 2, or not at all
    pool: int = Field(2, ge=1)
    hidden: int = Field(64, ge=1)  # recurrent hidden size per direction
    rnn_layers: int = Field(1, ge=1)
    bidirectional: bool = True
    rnn_dropout: float = Field(0.1, ge=0, lt=1)
    fc: int = Field(64, ge=1)  # the embedding size (the layer before the output)
    dropout: float = Field(0.2, ge=0, lt=1)
    batch_norm: bool = True  # after each convolution (not in the study)
    pooling: str = "meanstd"  # cnn: 'flatten' the map (the study), or pool it over time (TIME_POOLS)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in KINDS:
            raise ValueError(f"kind {value!r} is not one of the audio model kinds {list(KINDS)} (models/kinds.py)")
        return value

    @field_validator("pooling")
    @classmethod
    def _known_pooling(cls, value: str) -> str:
        if value not in POOLINGS:
            raise ValueError(f"pooling {value!r} is not one of {list(POOLINGS)}")
        return value

    @model_validator(mode="after")
    def _one_entry_per_block(self) -> "AudioLayers":
        if not len(self.channels) == len(self.kernels) == len(self.padding):
            raise ValueError("channels, kernels and padding need one entry per block")
        return self
