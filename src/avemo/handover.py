"""The files one stage writes and another reads, typed: a training's details.json, a search's choice and summary,
the explanation's and the label-efficiency study's numbers, the corpus summary.

A writer checks its file against the model here before writing it, and a reader parses it back through the
same model, so a change to a file's layout fails in the stage that writes it, naming the file and the
field, instead of as a KeyError in the stage that reads it. Fields no other stage reads pass through
unchecked (`extra="allow"`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from avemo.params import explain_errors


class HandoverError(ValueError):
    """A stage's output file is not what the stage reading it expects."""


class Handover(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    @classmethod
    def checked(cls, content: dict[str, Any], path: Path) -> dict[str, Any]:
        """`content`, unchanged, once it is a valid file of this kind (a writer calls this before writing)."""
        cls.parse(content, path)
        return content

    @classmethod
    def parse(cls, content: dict[str, Any], path: Path):
        try:
            return cls.model_validate(content)
        except ValidationError as error:
            article = "an" if cls.__name__[0] in "AEIOU" else "a"
            raise HandoverError(explain_errors(error, f"{path}: not {article} {cls.__name__} file")) from None

    @classmethod
    def read(cls, path: Path):
        path = Path(path)
        if not path.exists():
            raise HandoverError(f"{path}: missing (the stage that writes it has not run)")
        return cls.parse(json.loads(path.read_text()), path)


class Figure(Handover):
    """One test metric over seeds: the mean, its interval, and each seed's value."""

    mean: float
    low: float
    high: float
    per_seed: dict[str, float]


class KeptModel(Handover):
    seed: int | str  # a reference's is "fit": no seed
    mlflow_run_id: str


class TrainingDetails(Handover):
    """reports/details/<stage>/details.json (a training or reference stage): its run, kept model and figures."""

    stage: str
    mlflow_run_id: str
    classes: list[str]
    test: dict[str, Figure]
    model: KeptModel


class Choice(Handover):
    trial: int
    overrides: dict[str, Any]
    why: str


class SearchChoice(Handover):
    """reports/tune/<family>.json (and the compact pick): the params a search chose, which --best applies."""

    study: str
    chosen: Choice


class Scored(Handover):
    trial: int
    val_ua: float  # on the selection half


class Best(Scored):
    params: dict[str, Any]


class TrialCounts(Handover):
    complete: int
    pruned: int
    fail: int


class Budget(Handover):
    trials: int
    epochs_per_trial: int


class Confirmation(Handover):
    """The best trial and the hand-set recipe trained again with fresh seeds, compared on the confirmation half."""

    comparison: dict[str, Any]  # stats.Comparison.to_dict()
    items: list[str]
    seeds: list[int]


class FrontTrial(Scored):
    parameters: int
    vs_best: dict[str, Any]  # stats.Comparison.to_dict()


class CompactPick(Scored):
    parameters: int
    why: str


class SearchSummary(SearchChoice):
    """reports/tune/<family>.json as the report reads it: the choice, and how the search went."""

    stage: str
    budget: Budget
    trials: TrialCounts
    time_limit_reached: bool = False
    searched_enough: bool = True
    selection_items: int | None = None
    best: Best
    hand_set: Scored | None = None  # None: the space cannot express the hand-set recipe
    confirmation: Confirmation | None = None  # None: the hand-set recipe ranked best
    space: dict[str, Any] = {}
    front: list[FrontTrial] = []
    compact: CompactPick | None = None


class BestAfter(Handover):
    trials: int
    best_trial: int
    best_value: float


class EpochRank(Handover):
    epoch: int
    rho: float | None
    trials: int


class Ranking(Handover):
    judged_from_epoch: int
    epochs: int
    by_epoch: list[EpochRank]


class SearchRecord(Handover):
    """reports/tune/<family>/search.json: the history, the importances, whether early epochs rank as the last."""

    best_after: list[BestAfter]
    importances: dict[str, float]
    ranking: Ranking


class Faithfulness(Handover):
    """One method's deletion check on the test clips (explain/deletion.py)."""

    gain: float
    gain_low: float | None
    gain_high: float | None
    passed: bool


class Faithful(Handover):
    faithfulness: dict[str, Faithfulness]  # by "method/unit"

    def passed(self) -> set[tuple[str, str]]:
        """The (method, unit) pairs that passed: what a single clip's figure may draw."""
        return {tuple(key.split("/")) for key, check in self.faithfulness.items() if check.passed}


class TopBands(Handover):
    fraction: float
    drop: float | None
    share: dict[str, float | None]


class AudioExplanation(Faithful):
    top_bands: TopBands


class AudioShare(Handover):
    audio_share: float | None


class FusionExplanation(AudioShare):
    per_class: dict[str, AudioShare] = {}


class Explanation(Handover):
    """reports/details/explain/explain.json: what the kept models look at, and which explanations are faithful."""

    clips: int
    test_clips: int
    mlflow_run_ids: dict[str, str]  # by family: the runs explained
    audio: AudioExplanation
    video: Faithful
    fusion: FusionExplanation


class ArmCell(Handover):
    ua: dict[str, float]  # stats.Interval's fields
    labels: int


class EfficiencyCell(Handover):
    scratch: ArmCell
    pretrained: ArmCell
    gain: dict[str, Any]  # stats.Comparison.to_dict()


class LabelEfficiency(Handover):
    """reports/label_efficiency.json: per share of the labels, each arm's test UA and the gain of pre-training."""

    mlflow_run_id: str
    fractions: dict[str, EfficiencyCell]


class CorpusSummary(Handover):
    """reports/corpus.json (the index stage): what the corpus holds."""

    utterances: int
    labelled: int
    classes: list[str]
    hours: float
