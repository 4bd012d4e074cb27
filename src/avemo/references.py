"""The references beside every deep model, one row each: what a new reference adds, in one place.

A row names its features (side by side), the deep family it stands beside, its model, and how
the report labels it. Every list of references is read from this table: the `baseline` stage's
choices, the DVC stages `baseline@<name>` (dvc.yaml's foreach, checked against it by a test), the
report's comparisons, README's results table. Light on purpose (no scikit-learn, no torch), so
that `--help` and the report read it for free; baselines.py fits the rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from avemo.params import FAMILIES

FEATURES = ("logmel", "faces", "egemaps")
MODELS = ("logistic_regression", "svm")


@dataclass(frozen=True)
class Reference:
    """One reference: the DVC stages `baseline@<name>`, `baseline_loso@<name>-<fold>`, `baseline_3class@<name>`."""

    name: str
    family: str  # the deep models it stands beside; its runs go to their MLflow experiment, avemo-<family>
    features: tuple[str, ...]  # of FEATURES, side by side
    model: str  # of MODELS
    description: str
    label: str  # the report's name for it beside a deep model
    field: bool = False  # the field's standard reference (openSMILE eGeMAPS), not only the project's own

    def __post_init__(self) -> None:
        if (self.family not in FAMILIES or not self.features or not set(self.features) <= set(FEATURES)
                or self.model not in MODELS):
            raise ValueError(f"reference {self.name}: family one of {FAMILIES}, features of {FEATURES}, "
                             f"model one of {MODELS}")

    @property
    def needs_video(self) -> bool:
        """Face statistics need the video stage's frames, and its items without video are dropped or blanked."""
        return "faces" in self.features

    @property
    def needs_egemaps(self) -> bool:
        return "egemaps" in self.features


REFERENCES = {r.name: r for r in (
    Reference("audio", "audio", ("logmel",), "logistic_regression", "logistic regression on log-mel statistics",
              "logistic regression on log-mel statistics"),
    Reference("video", "video", ("faces",), "logistic_regression", "logistic regression on face-pixel statistics",
              "logistic regression on face statistics"),
    Reference("fusion", "fusion", ("logmel", "faces"), "logistic_regression",
              "logistic regression on log-mel and face-pixel statistics", "logistic regression on both"),
    Reference("egemaps", "audio", ("egemaps",), "logistic_regression",
              "logistic regression (balanced) on openSMILE eGeMAPSv02 functionals", "eGeMAPS + logistic regression",
              field=True),
    Reference("egemaps_svm", "audio", ("egemaps",), "svm", "SVM (RBF, balanced) on openSMILE eGeMAPSv02 functionals",
              "eGeMAPS + SVM", field=True),
    Reference("egemaps_fusion", "fusion", ("egemaps", "faces"), "logistic_regression",
              "logistic regression (balanced) on openSMILE eGeMAPSv02 functionals and face-pixel statistics",
              "eGeMAPS + face statistics, logistic regression", field=True),
)}


def project_reference(family: str) -> Reference:
    """The project's own reference of a family: a linear model on summary statistics of the same input."""
    return next(r for r in REFERENCES.values() if r.family == family and not r.field)


def compared_references(family: str) -> list[Reference]:
    """Every reference a family's deep model is compared with beside its project's own: the field's (none for
    video), and any row added since."""
    own = project_reference(family)
    return [r for r in REFERENCES.values() if r.family == family and r is not own]

