"""Speaker-independent splits: IEMOCAP's sessions each hold two speakers of their own.

Roles per fold: train, val, test. `fixed` is one fold (test = Session 5, val = Session 4 by
default); `loso` is leave-one-session-out (fold k tests on session k+1, validates on the
session before it); `random` is the study's speaker-dependent split, for comparison only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ROLES = ("train", "val", "test")


def items_for_role(clips: pd.DataFrame, splits: pd.DataFrame, role: str, fold: int, classes: list[str]) -> pd.DataFrame:
    """The clips of one role of one fold, restricted to the class set, with `target` (class index)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, not {role!r}")
    fold_roles = splits.loc[splits["fold"] == fold, ["utterance_id", "role"]]
    if fold_roles.empty:
        raise ValueError(f"fold {fold} is not in the splits table (folds: {sorted(splits['fold'].unique())})")
    items = clips.merge(fold_roles, on="utterance_id", how="inner")
    items = items[(items["role"] == role) & items["class"].isin(classes)].reset_index(drop=True)
    items["target"] = items["class"].map({c: i for i, c in enumerate(classes)}).astype(np.int64)
    return items


SPLIT_COLUMNS = ["utterance_id", "fold", "role", "session", "speaker"]
RANDOM_WARNING = ("split.scheme=random mixes speakers across train, val and test (the study's split): "
                  "its accuracies are speaker-dependent and not comparable with speaker-independent results")


def fold_table(utterances: pd.DataFrame, fold: int, role: np.ndarray) -> pd.DataFrame:
    """One row per utterance of one fold, with its role."""
    return pd.DataFrame({"utterance_id": utterances["utterance_id"], "fold": fold, "role": role,
                         "session": utterances["session"], "speaker": utterances["speaker"]})


def session_fold(utterances: pd.DataFrame, fold: int, test_session: int, val_session: int) -> pd.DataFrame:
    role = np.where(utterances["session"] == test_session, "test",
                    np.where(utterances["session"] == val_session, "val", "train"))
    return fold_table(utterances, fold, role)


def make_splits(utterances: pd.DataFrame, scheme: str, test_session: int = 5, val_session: int = 4,
                val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0) -> pd.DataFrame:
    """One row per (utterance, fold) with its role."""
    if scheme == "fixed":
        if test_session == val_session:
            raise ValueError("split.test_session and split.val_session must differ")
        return session_fold(utterances, 0, test_session, val_session)
    if scheme == "loso":
        sessions = sorted(utterances["session"].unique())
        folds = [session_fold(utterances, k, s, sessions[k - 1]) for k, s in enumerate(sessions)]
        return pd.concat(folds, ignore_index=True)
    if scheme == "random":
        rng = np.random.default_rng(seed)
        draw = rng.random(len(utterances))
        role = np.where(draw < test_fraction, "test", np.where(draw < test_fraction + val_fraction, "val", "train"))
        return fold_table(utterances, 0, role)
    raise ValueError(f"split.scheme must be 'fixed', 'loso' or 'random', not {scheme!r}")


def refit_roles(splits: pd.DataFrame) -> pd.DataFrame:
    """The roles of a final fit (`train.refit`): the validation session's utterances also join the training role,
    as sklearn's refit does once the choices are made, so the final model learns from every speaker the test
    session does not hold. They stay in the val role too, where the loop records them; that record is then on
    training items and chooses nothing (the loop keeps its last weights; only a search's ranking uses val, and a
    search never refits). The test role is untouched, so answers still pair with any model of the same fold."""
    return pd.concat([splits, splits[splits["role"] == "val"].assign(role="train")], ignore_index=True)


def speakers_in_two_roles(splits: pd.DataFrame) -> pd.DataFrame:
    """(fold, speaker) pairs that appear in more than one role: empty for a sound split."""
    roles = splits.groupby(["fold", "speaker"])["role"].nunique()
    return roles[roles > 1].reset_index()


def split_scheme(splits: pd.DataFrame) -> str:
    """Which scheme made a splits table: 'random' if a speaker has two roles, 'loso' with several folds, else 'fixed'."""
    if not speakers_in_two_roles(splits).empty:
        return "random"
    return "loso" if splits["fold"].nunique() > 1 else "fixed"


def split_tags(splits: pd.DataFrame, fold: int) -> dict[str, str]:
    """What a run's figures were measured on, as MLflow tags: the report compares only runs of the same split."""
    return {"split_scheme": split_scheme(splits), "split_fold": str(fold)}
