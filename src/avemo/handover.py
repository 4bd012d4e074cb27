"""The files one stage writes and another reads, typed: a training's details.json and a search's choice.

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
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
            raise HandoverError(f"{path}: not a {cls.__name__} file ({problems})") from None

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
