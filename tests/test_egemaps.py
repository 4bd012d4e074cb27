"""The egemaps stage: openSMILE's own eGeMAPS numbers for every item; what it cannot describe is skipped, with why."""

import json

import numpy as np
import opensmile
import pandas as pd
import pytest
import soundfile as sf

from tests.conftest import project_params, run_stage

PARAMS = project_params().override({"audio.workers": 2})


def egemaps_stage(variant, utterances, out):
    """`avemo egemaps` in this process; (features, skipped, counts)."""
    run_stage(PARAMS, "egemaps", variant, "--utterances", utterances, "--out", out / "egemaps",
              "--skipped", out / "skipped.csv", "--counts", out / "counts.json")
    return (pd.read_parquet(out / "egemaps" / "features.parquet"), pd.read_csv(out / "skipped.csv"),
            json.loads((out / "counts.json").read_text()))


def test_every_item_gets_the_88_functionals_opensmile_itself_computes(tiny_variant, tiny_utterances, tmp_path):
    utterances = tmp_path / "utterances.parquet"
    tiny_utterances.to_parquet(utterances)
    features, skipped, counts = egemaps_stage(tiny_variant, utterances, tmp_path)
    clips = pd.read_parquet(tiny_variant / "clips.parquet")
    assert features["clip_id"].tolist() == clips["clip_id"].tolist() and skipped.empty  # the variant's own items
    assert features.shape[1] == 1 + 88 and (features.dtypes.iloc[1:] == np.float32).all()
    assert counts["clips_in"] == counts["clips_out"] == len(clips) and counts["skipped"] == 0
    assert counts["opensmile"] == "2.6.0" and counts["determinism"]["cpu_isa"] == "avx2"

    # openSMILE's own call on a padded clip (its window: the whole wav) and on the first 3 s of a longer wav
    wav = dict(zip(tiny_utterances["utterance_id"], tiny_utterances["wav_path"]))
    for clip in (clips[clips["padded"]].iloc[0], clips[~clips["padded"]].iloc[0]):
        y, sr = sf.read(wav[clip["utterance_id"]], dtype="float32")
        window = y[int(clip["start"] * sr): int(clip["end"] * sr)]
        assert len(window) < len(y) or clip["padded"]
        assert_opensmiles_own(features.set_index("clip_id").loc[clip["clip_id"]], window, sr)


def assert_opensmiles_own(row: pd.Series, window: np.ndarray, sr: int) -> None:
    """The stage's row equals openSMILE's own eGeMAPSv02 functionals of the window, name by name, bit for bit."""
    expected = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                               feature_level=opensmile.FeatureLevel.Functionals).process_signal(window, sr)
    assert list(row.index) == list(expected.columns)
    np.testing.assert_array_equal(row.to_numpy(), expected.to_numpy()[0])


def test_a_corrupt_or_silent_wav_and_an_undescribable_window_are_skipped_with_the_reason(tiny_utterances,
                                                                                        tmp_path):
    good = tiny_utterances["wav_path"].iloc[0]
    y, sr = sf.read(good, dtype="float32")
    corrupt, silent, half = tmp_path / "corrupt.wav", tmp_path / "silent.wav", tmp_path / "half_silent.wav"
    corrupt.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + bytes(range(256)) * 4)
    sf.write(silent, np.zeros(sr * 2, np.float32), sr, subtype="PCM_16")
    sf.write(half, np.concatenate([y[:sr], np.zeros(sr, np.float32)]), sr, subtype="PCM_16")
    utterances = pd.DataFrame({"utterance_id": ["good", "corrupt", "silent", "half"],
                               "wav_path": [good, str(corrupt), str(silent), str(half)]})
    utterances.to_parquet(tmp_path / "utterances.parquet")
    variant = tmp_path / "full-raw"
    variant.mkdir()
    pd.DataFrame({"clip_id": ["good_c00", "corrupt_c00", "silent_c00", "half_c00", "half_c01", "good_c01"],
                  "utterance_id": ["good", "corrupt", "silent", "half", "half", "good"],
                  "start": [0.25, 0.0, 0.0, 0.0, 1.05, 0.5], "end": [1.0, 1.0, 1.0, 1.0, 1.95, 0.505],
                  "class": ["neutral", "sad", "angry", "happy", "happy", "neutral"]}).to_parquet(
        variant / "clips.parquet")
    features, skipped, counts = egemaps_stage(variant, tmp_path / "utterances.parquet", tmp_path)

    assert features["clip_id"].tolist() == ["good_c00", "half_c00"]
    assert_opensmiles_own(features.iloc[0, 1:], y[int(0.25 * sr): sr], sr)  # a window that starts inside its wav
    reasons = dict(zip(skipped["clip_id"], skipped["reason"]))
    assert reasons.keys() == {"corrupt_c00", "silent_c00", "half_c01", "good_c01"}
    assert reasons["corrupt_c00"].startswith("corrupt wav")
    assert reasons["silent_c00"].startswith("silent wav")
    assert reasons["half_c01"].startswith("silent clip window")
    assert "NaN" in reasons["good_c01"] and "0.01 s" in reasons["good_c01"]  # 5 ms: too short to describe
    assert skipped.set_index("clip_id").loc["corrupt_c00", "file"] == str(corrupt)
    assert counts["clips_in"] == 6 == counts["clips_out"] + counts["skipped"] and counts["skipped"] == 4
    assert counts["items_per_class"] == {"neutral": 1, "happy": 1, "angry": 0, "sad": 0}


def test_items_of_an_unknown_utterance_are_refused_by_name(tmp_path):
    from avemo.egemaps import plan_jobs

    clips = pd.DataFrame({"clip_id": ["x_c00"], "utterance_id": ["x"], "start": [0.0], "end": [1.0]})
    with pytest.raises(ValueError, match="not in the utterance table .e.g. x."):
        plan_jobs(clips, pd.DataFrame({"utterance_id": ["y"], "wav_path": ["y.wav"]}))
