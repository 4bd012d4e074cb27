"""params.yaml, typed: the single source of every knob, validated once before any stage runs.

Each section is a frozen model; a stage receives the sections it declares in dvc.yaml, and the
libraries take the sections they compute with (a spectrogram takes `Spectrogram`, the loop
takes `Loop`). A misspelt key, a wrong type or an impossible value fails at load time with the
key's path and what was expected, and so does a key missing from the file: every knob lives
in params.yaml, where DVC can see it. Each class's defaults are params.yaml's values (a test holds
them equal), so `Params()` outside a project, or a library called with a bare section, computes
what the pipeline does; the study's own settings are named where they differ. A search trial or a study stage changes knobs through
`Params.override`, the one place where dotted-path changes are applied.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from avemo.models.kinds import KINDS, AudioLayers


class Section(BaseModel):
    """A params.yaml section: unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ParamsError(ValueError):
    """params.yaml does not describe a runnable pipeline; the message names every offending key."""


# -- ground floor knobs shared by every stage -------------------------------------------------------

ISA = Literal["avx2", "avx512", "native"]


class Compute(Section):
    cpu_isa: ISA = "avx2"  # the widest CPU code path numpy, OpenBLAS, OpenCV, oneDNN, MKL and ATen may use


class Corpus(Section):
    root: str = "data/raw/synthetic/IEMOCAP_full_release"


class Synth(Section):
    seed: int = 7
    sessions: int = Field(5, ge=1, le=5)
    dialogues_per_session: int = Field(4, ge=1, le=32)
    turns_per_dialogue: int = Field(35, ge=1)
    median_seconds: float = Field(2.8, gt=0)
    min_seconds: float = Field(0.9, gt=0)
    max_seconds: float = Field(10.0, gt=0)
    label_weights: dict[str, float] = Field(default_factory=lambda: {
        "neu": 0.20, "hap": 0.07, "exc": 0.11, "ang": 0.13, "sad": 0.13, "fru": 0.14,
        "sur": 0.02, "fea": 0.01, "dis": 0.005, "oth": 0.005, "xxx": 0.16})
    noise_dbfs: tuple[float, float] = (-58.0, -40.0)
    pitch_scale: float = Field(1.0, gt=0)  # speakers' mean pitch ranges
    emotion_strength: float = Field(1.0, ge=0)  # how far emotions move the voice from its neutral
    expression_strength: float = Field(1.0, ge=0)  # how far emotions move the face from its neutral
    face_scale: tuple[float, float] = (0.95, 1.1)  # head size range
    turned_away: float = Field(0.12, ge=0, le=1)
    width: int = Field(720, ge=64)
    height: int = Field(480, ge=64)
    fps: float = Field(29.97, gt=0)
    keyframe_interval: int = Field(300, ge=1)  # DivX's and Xvid's default maximum key-frame interval
    workers: int = Field(0, ge=0)  # 0: all cores

    @model_validator(mode="after")
    def _durations(self) -> "Synth":
        if not self.min_seconds <= self.median_seconds <= self.max_seconds:
            raise ValueError("needs min_seconds <= median_seconds <= max_seconds")
        return self


class Labels(Section):
    set: str = "standard4"
    sets: dict[str, dict[str, str]] = Field(default_factory=lambda: {
        "standard4": {"neu": "neutral", "hap": "happy", "exc": "happy", "ang": "angry", "sad": "sad"},
        "paper4": {"neu": "neutral", "hap": "happy", "ang": "angry", "sad": "sad"},
        "paper3": {"neu": "neutral", "ang": "angry", "sad": "sad"}})

    @model_validator(mode="after")
    def _known_set(self) -> "Labels":
        if self.set not in self.sets:
            raise ValueError(f"set {self.set!r} is not one of the sets {sorted(self.sets)}")
        return self


class Split(Section):
    scheme: Literal["fixed", "loso", "random"] = "fixed"
    test_session: int = Field(5, ge=1, le=5)
    val_session: int = Field(4, ge=1, le=5)
    val_fraction: float = Field(0.1, gt=0, lt=1)  # random scheme only
    test_fraction: float = Field(0.2, gt=0, lt=1)  # random scheme only
    seed: int = 0

    @model_validator(mode="after")
    def _sessions_differ(self) -> "Split":
        if self.test_session == self.val_session:
            raise ValueError("test_session and val_session must differ")
        return self


# -- audio and video data ---------------------------------------------------------------------------

class Segment(Section):
    clip_seconds: float = Field(3.0, gt=0)
    remainder: Literal["drop", "pad"] = "drop"  # clip3s tail shorter than a clip
    short: Literal["drop", "pad"] = "pad"  # clip3s utterance shorter than a clip: pad with corpus noise
    min_remainder: float = Field(1.0, ge=0)  # remainder=pad: shortest tail worth a padded clip


class Cleanup(Section):
    """Band-pass, then stationary spectral gating (noisereduce): the study's DS II and IV."""

    low_hz: float = Field(80.0, gt=0)
    high_hz: float = Field(7600.0, gt=0)
    order: int = Field(4, ge=1)
    n_std_thresh: float = Field(2.0, gt=0)  # the study's threshold, in standard deviations of the noise
    prop_decrease: float = Field(0.9, ge=0, le=1)  # the study's reduction
    passes: int = Field(1, ge=1)  # the study ran spectral gating three times


class Cleanups(Section):
    raw: dict[str, Any] = Field(default_factory=dict)  # no clean-up: nothing to set
    clean: Cleanup = Field(default_factory=Cleanup)

    @field_validator("raw")
    @classmethod
    def _raw_is_empty(cls, value: dict) -> dict:
        if value:
            raise ValueError("the raw variants have no clean-up knobs; leave `raw: {}`")
        return value


class Spectrogram(Section):
    kind: Literal["mel", "stft"] = "mel"  # the study's: STUDY_SPECTROGRAM
    n_fft: int = Field(1024, ge=16)
    win_length: int = Field(1024, ge=16)
    hop_length: int = Field(160, ge=1)
    bins: int = Field(64, ge=1)  # mel bands, or the lowest `bins` STFT rows
    frames: int = Field(300, ge=1)  # time columns of a stored item
    floor_db: float = -60.0
    ceiling_db: float = 60.0
    full_time_axis: Literal["resize", "crop_pad"] = "resize"  # `full` items: resize (the study) or crop / pad

    @model_validator(mode="after")
    def _scale(self) -> "Spectrogram":
        if self.floor_db >= self.ceiling_db:
            raise ValueError("floor_db must be below ceiling_db")
        if self.win_length > self.n_fft:
            raise ValueError("win_length cannot exceed n_fft")
        return self


#: The study's spectrogram (PAPER.md): the lowest 200 rows of a 400-sample STFT, not params.yaml's log-mel.
STUDY_SPECTROGRAM = Spectrogram(kind="stft", n_fft=400, win_length=400, bins=200)


class Audio(Section):
    segment: Segment = Field(default_factory=Segment)
    min_seconds: float = Field(0.3, ge=0)  # shorter utterances are skipped (reported)
    workers: int = Field(0, ge=0)
    cleanup: Cleanups = Field(default_factory=Cleanups)
    spectrogram: Spectrogram = Field(default_factory=Spectrogram)


class Face(Section):
    cascade: str = "haarcascade_frontalface_default.xml"
    downscale: int = Field(3, ge=1)
    scale_factor: float = Field(1.2, gt=1)
    min_neighbors: int = Field(4, ge=0)
    min_size: int = Field(30, ge=1)  # pixels, on the down-scaled image
    detect_every: int = Field(4, ge=1)  # the detector runs on frames 0, k, 2k, ... of each clip
    margin: float = Field(1.25, gt=0)  # grow the detected box to take in the head
    smooth_frames: int = Field(5, ge=1)  # median window over frames
    fallback_box: tuple[float, float, float, float] = (0.15, 0.22, 0.7, 0.5)  # x, y, w, h: fractions of the half
    height: int = Field(60, ge=8)
    width: int = Field(100, ge=8)


class Video(Section):
    n_frames: int = Field(20, ge=1)
    workers: int = Field(0, ge=0)
    face: Face = Field(default_factory=Face)


# -- training ---------------------------------------------------------------------------------------

class Balance(Section):
    mode: Literal["resample", "class_weight", "none"] = "resample"
    per_class: int | Literal["median", "max"] = "median"
    seed: int = 0

    @field_validator("per_class")
    @classmethod
    def _positive(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError("a number of items per class must be at least 1")
        return value


class Augment(Section):
    enabled: bool = False
    max_shift_rows: int = Field(10, ge=0)  # the study's 10-row crop from the top, resized back
    max_rotation_deg: float = Field(10.0, ge=0)
    freq_masks: int = Field(0, ge=0)  # SpecAugment: bands of up to freq_mask_rows rows set to the mean
    freq_mask_rows: int = Field(8, ge=0)
    time_masks: int = Field(0, ge=0)  # ... and spans of up to time_mask_frames frames
    time_mask_frames: int = Field(30, ge=0)


class Loop(Section):
    """The one training loop's settings (training/loop.py)."""

    epochs: int = Field(20, ge=1)
    batch_size: int = Field(16, ge=1)
    optimizer: Literal["adam", "adamw"] = "adamw"  # adam: the study's coupled L2 decay
    lr: float = Field(0.005, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_epochs: float = Field(1.0, ge=0)  # linear warm-up from lr/100
    schedule: Literal["constant", "cosine"] = "cosine"
    clip_grad_norm: float = Field(1.0, ge=0)  # 0: off
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    ema_decay: float = Field(0.95, ge=0, lt=1)  # per step; 0: no moving average
    select: Literal["best", "last"] = "last"
    patience: int = Field(0, ge=0)  # select=best: epochs without a better validation score; 0: never stop
    seed: int = 0
    num_workers: int = Field(0, ge=0)
    pin_memory: bool = False
    amp: bool = True  # mixed precision, on CUDA only
    device: str = "auto"


class LoopChanges(Section):
    """Changes to `train.loop` for one family or purpose: only the keys given."""

    epochs: int | None = Field(None, ge=1)
    batch_size: int | None = Field(None, ge=1)
    optimizer: Literal["adam", "adamw"] | None = None
    lr: float | None = Field(None, gt=0)
    weight_decay: float | None = Field(None, ge=0)
    warmup_epochs: float | None = Field(None, ge=0)
    schedule: Literal["constant", "cosine"] | None = None
    clip_grad_norm: float | None = Field(None, ge=0)
    label_smoothing: float | None = Field(None, ge=0, lt=1)
    ema_decay: float | None = Field(None, ge=0, lt=1)
    select: Literal["best", "last"] | None = None
    patience: int | None = Field(None, ge=0)

    def applied_to(self, loop: Loop) -> Loop:
        return loop.model_copy(update=self.model_dump(exclude_none=True))


FAMILIES = ("audio", "video", "fusion")
VARIANTS = ("full-raw", "full-clean", "clip3s-raw", "clip3s-clean")
FusionInit = Literal["branches", "pretrained", "scratch"]


class Train(Section):
    threads: int = Field(2, ge=1)  # intra-op threads: the count changes the weights, so it is part of the recipe
    seeds: tuple[int, ...] = Field((0, 1, 2), min_length=1)
    fold: int = Field(0, ge=0)
    refit: bool = False  # fit on the train and val roles (data/splits.refit_roles): final fits only, never a search
    fusion_init: FusionInit = "branches"
    crop_ratio: float = Field(0.0, ge=0, lt=1)  # drop this top share of frequency rows at load time
    balance: Balance = Field(default_factory=Balance)
    augment: Augment = Field(default_factory=Augment)
    missing_video: Literal["drop", "blank"] = "drop"
    video_normalise: Literal["imagenet", "unit"] = "imagenet"
    loop: Loop = Field(default_factory=Loop)
    audio: LoopChanges = Field(default_factory=LoopChanges)
    video: LoopChanges = Field(default_factory=lambda: LoopChanges(epochs=6, lr=0.002))
    fusion: LoopChanges = Field(default_factory=lambda: LoopChanges(epochs=6, lr=0.002))

    def loop_for(self, family: str, seed: int | None = None) -> Loop:
        """`train.loop` with the family's own changes (`train.<family>`), for one seed."""
        loop = getattr(self, family).applied_to(self.loop)
        return loop if seed is None else loop.model_copy(update={"seed": seed})


# -- pre-training, searches, references, models -----------------------------------------------------

class Sync(Section):
    loss: Literal["contrastive", "infonce"] = "infonce"
    margin: float = Field(1.0, gt=0)
    temperature: float = Field(0.1, gt=0)  # infonce
    embedding: int = Field(64, ge=1)  # size of the shared space both projections map into
    positive_share: float = Field(0.5, gt=0, lt=1)
    curriculum_start: tuple[float, float, float] = (1.0, 0.0, 0.0)  # shares of the negative kinds, first epoch
    curriculum_end: tuple[float, float, float] = (0.2, 0.4, 0.4)  # ... and last epoch
    shift_frames: tuple[int, int] = (50, 150)  # the hardest negatives: audio rolled by this many 10 ms frames
    seed: int = 0


class Efficiency(Section):
    fractions: tuple[float, ...] = (0.1, 0.25, 1.0)
    finetune: Literal["full", "linear"] = "full"
    loop: LoopChanges = Field(default_factory=lambda: LoopChanges(epochs=8, lr=0.003))

    @field_validator("fractions")
    @classmethod
    def _shares(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or any(not 0 < f <= 1 for f in value):
            raise ValueError("fractions must be shares in (0, 1]")
        return value


class Pretrain(Section):
    sync: Sync = Field(default_factory=Sync)
    loop: LoopChanges = Field(default_factory=lambda: LoopChanges(epochs=8, lr=0.002, select="best"))
    efficiency: Efficiency = Field(default_factory=Efficiency)


#: The searches' spaces (README: Searches): a list is a choice, {low, high[, log]} a range.
AUDIO_SPACE: dict[str, Any] = {
    "models.audio.kind": ["cnn", "cnn_lstm", "cnn_rnn"], "blocks": [2, 3],
    "kernel": ["3x3", "5x5", "7x7", "3x7", "7x3"], "padding": [True, False], "channels": [8, 16],
    "models.audio.hidden": [32, 64, 128], "models.audio.pooling": ["meanstd", "stats", "meanmax"],
    "models.audio.dropout": {"low": 0.0, "high": 0.5},
    "train.loop.lr": {"low": 0.0005, "high": 0.01, "log": True},
    "train.loop.weight_decay": {"low": 0.0001, "high": 0.1, "log": True}, "train.loop.batch_size": [16, 32],
    "train.crop_ratio": {"low": 0.0, "high": 0.6}, "train.augment.enabled": [False, True]}
FUSION_SPACE: dict[str, Any] = {
    "train.fusion_init": ["branches", "scratch"], "video_blocks": [3, 4], "video_channels": [8, 16],
    "models.video.dropout": {"low": 0.0, "high": 0.5},
    "train.loop.lr": {"low": 0.0003, "high": 0.005, "log": True},
    "train.loop.weight_decay": {"low": 0.0001, "high": 0.1, "log": True}, "train.loop.batch_size": [16, 32]}


class Search(Section):
    """One family's search: its budget in trials and epochs (a time limit, if any, is reported as such)."""

    trials: int = Field(4, ge=1)  # COMPLETE + PRUNED trials wanted; raising it continues the same study
    min_complete: int = Field(3, ge=1)  # fewer completed trials: the search says it searched too little
    timeout_s: float | None = Field(None, gt=0)  # optional: no new trial starts after this long
    epochs: int = Field(5, ge=1)  # per trial
    space: dict[str, Any] = Field(default_factory=dict)  # checked against the knobs it changes (check_space)


class Tune(Section):
    storage: str = "journal:optuna/journal.log"
    workers: int = Field(1, ge=0)  # local worker processes, each with train.threads intra-op threads
    seed: int = 0
    pruner: Literal["median", "hyperband", "none"] = "median"
    max_retry: int = Field(2, ge=0)
    min_gain: float = 0.0  # extra margin: the lower end of the best trial's interval must clear it
    # fresh seeds of the best and the hand-set configurations, compared on the confirmation half of the validation
    # items (which never ranks a trial): the search keeps its best trial only if that comparison says "better"
    confirm_seeds: tuple[int, ...] = Field((101, 102, 103), min_length=2)
    heartbeat_s: int = Field(10, ge=1)
    grace_s: int = Field(30, ge=1)
    audio: Search = Field(default_factory=lambda: Search(space=AUDIO_SPACE))
    fusion: Search = Field(default_factory=lambda: Search(trials=3, min_complete=2, epochs=4, space=FUSION_SPACE))


class EgemapsReference(Section):
    """The eGeMAPS references (references.REFERENCES), fitted with balanced class weights as the field fits them."""

    C: float = Field(0.5, gt=0)  # logistic regression (eGeMAPS alone, and beside the face statistics)
    svm_C: float = Field(1.0, gt=0)  # SVM, RBF kernel
    svm_gamma: float | Literal["scale", "auto"] = "scale"

    @field_validator("svm_gamma")
    @classmethod
    def _positive_gamma(cls, value: float | str) -> float | str:
        if isinstance(value, float) and value <= 0:
            raise ValueError("svm_gamma must be scale, auto or a positive number")
        return value


class Baseline(Section):
    C: float = Field(1.0, gt=0)  # inverse regularisation strength of the log-mel and face-statistics references
    max_iter: int = Field(5000, ge=1)  # every logistic regression's
    egemaps: EgemapsReference = Field(default_factory=EgemapsReference)


class AudioModel(AudioLayers, Section):
    """The audio network's knobs, as models/audio.py declares them (kind: one of its KINDS), and a preset."""

    preset: Literal["small", "paper"] = "small"  # paper: the study's exact layer sizes


class VideoModel(Section):
    channels: tuple[int, ...] = (8, 16, 32, 32)  # the study: (16, 32, 64, 128), 3 pools, fc (256, 64), no BN
    pools: int = Field(2, ge=0)  # MaxPool3d after the first `pools` convolutions
    stem_pool: tuple[int, int, int] = (1, 2, 2)  # average-pool frames, height, width first
    fc: tuple[int, int] = (128, 64)  # the second is the embedding size
    dropout: float = Field(0.2, ge=0, lt=1)
    batch_norm: bool = True


class Models(Section):
    audio: AudioModel = Field(default_factory=AudioModel)
    video: VideoModel = Field(default_factory=VideoModel)


class Explain(Section):
    """The `explain` stage: which test clips, and how hard each method looks (src/avemo/explain)."""

    clips_per_class: int = Field(8, ge=1)  # a class-balanced sample of the test clips
    background_per_class: int = Field(8, ge=1)  # training clips a removed modality is drawn from
    steps: int = Field(32, ge=2)  # integrated gradients: steps from the baseline to the clip
    repeats: int = Field(4, ge=1)  # random orders per clip in the deletion check
    top_fraction: float = Field(0.4, gt=0, lt=1)  # the study's crop question: the share of the highest bands
    seed: int = 0


Variant = Literal["full-raw", "full-clean", "clip3s-raw", "clip3s-clean"]


class Budget(Section):
    """A search's size: trials (COMPLETE + PRUNED) and epochs per trial."""

    trials: int = Field(ge=1)
    epochs: int = Field(ge=1)


class NestedBudget(Budget):
    """The audio search inside each leave-one-session-out fold: its training sessions, its validation session."""

    folds: tuple[int, ...] = (0, 1, 2, 3, 4)


class StudySearches(Section):
    """The study's real searches (study/dvc.yaml tune_{audio,fusion}_study set tune.<family> from these; the
    nested ones, tune_audio_loso@<fold>, from `loso`)."""

    audio: Budget = Field(default_factory=lambda: Budget(trials=60, epochs=20))
    fusion: Budget = Field(default_factory=lambda: Budget(trials=24, epochs=12))
    loso: NestedBudget = Field(default_factory=lambda: NestedBudget(trials=16, epochs=20))
    workers: int = Field(default=2, ge=1)  # local worker processes of each: not repeatable trial by trial, faster


class Study(Section):
    """What `make study` runs beyond the quick default (study/dvc.yaml)."""

    models: tuple[str, ...] = ("cnn", "cnn_lstm", "cnn_rnn")  # the study's Table 1: every model (KINDS) ...
    grid_variants: tuple[Variant, ...] = VARIANTS  # ... on each of DS I-IV
    loso_folds: tuple[int, ...] = (0, 1, 2, 3)  # fold 4 (test Session 5, validate 4) is the fixed split
    refit_folds: tuple[int, ...] = (0, 1, 2, 3, 4)  # the final-fit rows (train.refit): every fold, fold 4 too
    three_classes: str = "paper3"  # the label set of the 3-class rows
    search: StudySearches = Field(default_factory=StudySearches)

    @model_validator(mode="after")
    def _refit_rows_fill_the_folds(self) -> "Study":
        if tuple(self.refit_folds) != (*self.loso_folds, 4):
            raise ValueError(f"refit_folds must be loso_folds and the fixed split's fold 4, {[*self.loso_folds, 4]} "
                             f"(the report's columns), not {list(self.refit_folds)}")
        return self

    @field_validator("models")
    @classmethod
    def _known_kinds(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [m for m in value if m not in KINDS]
        if unknown:
            raise ValueError(f"{unknown} are not audio model kinds {list(KINDS)} (models/kinds.py)")
        return value


class Params(Section):
    compute: Compute = Field(default_factory=Compute)
    corpus: Corpus = Field(default_factory=Corpus)
    synth: Synth = Field(default_factory=Synth)
    labels: Labels = Field(default_factory=Labels)
    split: Split = Field(default_factory=Split)
    audio: Audio = Field(default_factory=Audio)
    video: Video = Field(default_factory=Video)
    train: Train = Field(default_factory=Train)
    pretrain: Pretrain = Field(default_factory=Pretrain)
    tune: Tune = Field(default_factory=Tune)
    baseline: Baseline = Field(default_factory=Baseline)
    models: Models = Field(default_factory=Models)
    explain: Explain = Field(default_factory=Explain)
    study: Study = Field(default_factory=Study)

    @model_validator(mode="after")
    def _known_three_classes(self) -> "Params":
        if self.study.three_classes not in self.labels.sets:
            raise ValueError(f"study.three_classes={self.study.three_classes!r} is not one of labels.sets")
        return self

    def override(self, changes: dict[str, Any]) -> "Params":
        """A copy with dotted-path changes set (`{"train.loop.lr": 0.01}`), validated like the file."""
        if not changes:
            return self
        return validate(self._changed(changes), "override")

    def _changed(self, changes: dict[str, Any]) -> dict:
        """The plain tree with dotted-path changes set, not yet validated."""
        tree = self.model_dump(mode="json")
        for path, value in changes.items():
            node = tree
            *parents, leaf = path.split(".")
            for key in parents:
                if not isinstance(node.get(key), dict):
                    near = difflib.get_close_matches(key, [k for k, v in node.items() if isinstance(v, dict)], n=1)
                    raise ParamsError(f"override {path}: {key!r} is not a section of params.yaml"
                                      + (f"; did you mean {near[0]!r}?" if near else ""))
                node = node[key]
            node[leaf] = value
        return tree

    def yaml_values(self, keys: list[str]) -> dict[str, Any]:
        """Plain values of some dotted keys (for MLflow params and fingerprints)."""
        tree = self.model_dump(mode="json")
        out = {}
        for key in keys:
            node: Any = tree
            for part in key.split("."):
                node = node[part]
            out[key] = node
        return out


def validate(tree: dict, source: str) -> Params:
    """A Params from a plain tree, or a ParamsError naming each bad key and what was expected."""
    params = _typed(tree, source)
    for family, field in Tune.model_fields.items():
        if field.annotation is Search:
            problems = check_space(params, getattr(params.tune, family).space, family)
            if problems:
                raise ParamsError(f"{source}: " + "; ".join(f"tune.{family}.space.{p}" for p in problems))
    return params


def _typed(tree: dict, source: str) -> Params:
    try:
        params = Params.model_validate(tree)
    except ValidationError as exc:
        raise ParamsError(explain_errors(exc, source)) from None
    missing = _missing_keys(params, tree)
    if missing:
        raise ParamsError(f"{source}: " + "; ".join(f"{m}: missing (every knob lives in params.yaml)"
                                                    for m in missing))
    return params


#: A search space's own knobs (tuning/space.py builds several params from each), with the values each takes.
SHORTHANDS: dict[str, Any] = {"blocks": PositiveInt, "channels": PositiveInt, "padding": bool,
                              "kernel": Annotated[str, StringConstraints(pattern=r"^\d+x\d+$")],
                              "video_blocks": PositiveInt, "video_channels": PositiveInt}


def check_space(params: Params, space: dict[str, Any], family: str) -> list[str]:
    """What is wrong with a search space, one line per knob: every key a params path (`train.loop.*` the
    family's loop, `train.<family>.*`) or a shorthand, every choice and both bounds a value of its field."""
    problems, paths = [], _paths(params.model_dump(mode="json"))
    for key, spec in space.items():
        if isinstance(spec, list) and spec:
            values = spec
        elif isinstance(spec, dict) and {"low", "high"} <= set(spec) <= {"low", "high", "log", "step"} \
                and all(isinstance(spec[b], int | float) and not isinstance(spec[b], bool) for b in ("low", "high")) \
                and spec["low"] <= spec["high"] and (spec["low"] > 0 or not spec.get("log")):
            values = [spec["low"], spec["high"]]
        else:
            problems.append(f"{key}: a list of choices or {{low, high}} (low <= high, low > 0 if log), not {spec!r}")
            continue
        for value in values:
            problem = _bad_knob(params, paths, key, value, family)
            if problem:
                problems.append(f"{key}: {problem}")
                break
    return problems


def _bad_knob(params: Params, paths: list[str], key: str, value: Any, family: str) -> str | None:
    if key in SHORTHANDS:
        try:
            TypeAdapter(SHORTHANDS[key]).validate_python(value, strict=key == "padding")
        except ValidationError as exc:
            return f"{value!r}: {exc.errors()[0]['msg']}"
        return None
    if key not in paths:
        near = difflib.get_close_matches(key, [*paths, *SHORTHANDS], n=1)
        return ("not a params.yaml knob nor one of the shorthands " + ", ".join(SHORTHANDS)
                + (f"; did you mean {near[0]!r}?" if near else ""))
    target = f"train.{family}.{key.removeprefix('train.loop.')}" if key.startswith("train.loop.") else key
    try:
        _typed(params._changed({target: value}), target)
    except ParamsError as exc:
        return str(exc).removeprefix(f"{target}: ").removeprefix("override ")
    return None


def set_changes(pairs: list[str]) -> dict[str, Any]:
    """`--set KEY=VALUE` pairs as dotted-path changes; values are YAML (true, 3, [0, 1])."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ParamsError(f"--set {pair!r}: expected KEY=VALUE, e.g. --set train.fold=2")
        out[key] = yaml.safe_load(value)
    return out


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate the params file once."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no params file (run from the project root or pass --params)")
    try:
        tree = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML ({exc})") from None
    return validate(tree, str(path))


def _paths(tree: dict, prefix: str = "") -> list[str]:
    """Every dotted path of a plain tree, sections and knobs."""
    out = []
    for key, value in tree.items():
        out.append(f"{prefix}{key}")
        if isinstance(value, dict):
            out += _paths(value, f"{prefix}{key}.")
    return out


def explain_errors(exc: ValidationError, source: str) -> str:
    """A validation error as one line a user reads: where, what, and (a misspelt key) the nearest real one."""
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"] if not str(part).startswith(("function-", "literal[")))
        if error["type"] == "extra_forbidden":
            near = _close_key(error["loc"])
            hint = f"; did you mean {near!r}?" if near else ""
            lines.append(f"{where}: unknown key{hint}")
        elif error["type"] == "value_error":  # a section's own rule: the message says what is expected
            lines.append(f"{where}: {error['msg'].removeprefix('Value error, ')}")
        elif error["type"] == "missing":  # its input is the enclosing section: not worth printing
            lines.append(f"{where}: {error['msg']}")
        else:
            lines.append(f"{where}: {error['msg']} (got {error['input']!r})")
    return f"{source}: " + "; ".join(dict.fromkeys(lines))


def _close_key(loc: tuple) -> str | None:
    """The field of the enclosing section that a misspelt key most resembles."""
    model: type[BaseModel] = Params
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    found = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
    return found[0] if found else None


def _missing_keys(model: BaseModel, tree: Any, prefix: str = "") -> list[str]:
    """Fields the file did not state (they would silently take a default DVC cannot see)."""
    if not isinstance(tree, dict):
        return []
    missing = []
    for name, field in type(model).model_fields.items():
        path = f"{prefix}{name}"
        if name not in tree:
            if field.default is not None or field.default_factory is not None:
                missing.append(path)  # an optional knob (default None) may be left out
            continue
        value = getattr(model, name)
        if isinstance(value, Section):
            missing += _missing_keys(value, tree[name], f"{path}.")
    return missing
