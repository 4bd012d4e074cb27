import argparse

import pandas as pd
import pytest

from avemo.data.splits import make_splits, speakers_in_two_roles


@pytest.fixture
def utterances():
    rows = [{"utterance_id": f"Ses0{s}{g}_impro01_{g}{k:03d}", "session": s, "speaker": f"Ses0{s}{g}"}
            for s in range(1, 6) for g in "FM" for k in range(20)]
    return pd.DataFrame(rows)


def test_fixed_fold_tests_on_session_5_and_validates_on_session_4(utterances):
    splits = make_splits(utterances, "fixed")
    assert set(splits.loc[splits.role == "test", "session"]) == {5}
    assert set(splits.loc[splits.role == "val", "session"]) == {4}
    assert set(splits.loc[splits.role == "train", "session"]) == {1, 2, 3}
    assert speakers_in_two_roles(splits).empty


def test_loso_gives_every_utterance_a_role_in_each_of_five_folds(utterances):
    splits = make_splits(utterances, "loso")
    assert splits.groupby("utterance_id")["fold"].nunique().eq(5).all()
    assert speakers_in_two_roles(splits).empty
    for fold, part in splits.groupby("fold"):
        assert part.loc[part.role == "test", "speaker"].nunique() == 2
        assert not set(part.loc[part.role == "test", "speaker"]) & set(part.loc[part.role != "test", "speaker"])


def test_the_study_random_split_is_speaker_dependent(utterances):
    splits = make_splits(utterances, "random", seed=1)
    assert not speakers_in_two_roles(splits).empty
    assert splits.role.value_counts()["test"] == pytest.approx(0.2 * len(utterances), rel=0.3)


def test_the_split_stage_refuses_a_speaker_in_two_roles(utterances, tmp_path):
    """A speaker id recorded in two sessions (Session 4's Ses04F again in Session 5) has validation and test
    utterances in the fixed fold: the stage names the speaker, the fold and the roles, and writes nothing."""
    from avemo.stages import split
    from tests.conftest import project_params

    utterances.loc[utterances["utterance_id"].str.startswith("Ses05F"), "speaker"] = "Ses04F"
    utterances.to_parquet(tmp_path / "utterances.parquet")
    args = argparse.Namespace(utterances=tmp_path / "utterances.parquet", out=tmp_path / "splits.parquet")
    with pytest.raises(ValueError) as refused:
        split.run(args, project_params().override({"split.scheme": "fixed"}))
    assert str(refused.value) == (f"{tmp_path / 'utterances.parquet'}: a speaker in two roles (Ses04F in fold 0 as "
                                  "test, val): the fixed split is not speaker-independent (one speaker id in two "
                                  "sessions?)")
    assert not args.out.exists()
    split.run(args, project_params().override({"split.scheme": "random"}))  # the study's split is so by design
    assert args.out.exists()
