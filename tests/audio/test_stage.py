import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from avemo.audio.segment import SegmentPolicy
from avemo.audio.variant import VariantConfig, build_variant
from avemo.audio.wav import load_wav
from avemo.params import STUDY_SPECTROGRAM, Cleanup


def write(path, y, sr, subtype="PCM_16"):
    sf.write(path, y, sr, subtype=subtype)
    return str(path)


def speechlike(seconds, sr=16000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    return (0.2 * np.sin(2 * np.pi * 200 * t) * (np.sin(2 * np.pi * 3 * t) > 0) + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def test_bad_wavs_get_messages_that_name_the_problem(tmp_path):
    nan = speechlike(1.0)
    nan[100] = np.nan
    with pytest.raises(ValueError, match="1 NaN or infinite samples"):
        load_wav(write(tmp_path / "nan.wav", nan, 16000, "FLOAT"))
    with pytest.raises(ValueError, match="silent wav"):
        load_wav(write(tmp_path / "silent.wav", np.zeros(16000), 16000))
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")
    with pytest.raises(ValueError, match="corrupt wav"):
        load_wav(str(tmp_path / "corrupt.wav"))
    with pytest.raises(ValueError, match="not a wav file"):
        load_wav(b"RIFF\x00\x00WAVEfmt garbage")
    with pytest.raises(ValueError, match="unreadable file: No such file"):
        load_wav(str(tmp_path / "missing.wav"))
    y, note = load_wav(write(tmp_path / "8k.wav", speechlike(1.0, sr=8000), 8000))
    assert note == "resampled from 8000 Hz to 16000 Hz" and len(y) == 16000


def test_the_stage_reports_every_skip_and_counts_reconcile(tmp_path):
    names = ["Ses01F_impro01_F000", "Ses01F_impro01_F001", "Ses01F_impro01_F002", "Ses01F_impro01_F003", "Ses01F_impro01_F004"]
    good = speechlike(7.5)
    paths = [write(tmp_path / "a.wav", good, 16000), write(tmp_path / "b.wav", np.zeros(32000), 16000),
             write(tmp_path / "c.wav", speechlike(0.2), 16000), write(tmp_path / "d.wav", speechlike(2.0, sr=8000), 8000),
             write(tmp_path / "e.wav", speechlike(2.0), 16000)]
    seconds = [7.5, 2.0, 0.2, 2.0, 2.0]
    utterances = pd.DataFrame({
        "utterance_id": names, "wav_path": paths, "wav_seconds": seconds, "class": "neutral", "label": "neu",
        "session": 1, "speaker": "Ses01F", "dialog": "Ses01F_impro01", "markers": "F", "gender": "F",
        "start": 0.0, "avi_path": "x.avi"})
    cfg = VariantConfig(SegmentPolicy(), None, STUDY_SPECTROGRAM, workers=1)
    clips, skipped = build_variant(utterances, cfg, tmp_path / "out")
    reasons = dict(zip(skipped["utterance_id"], zip(skipped["action"], skipped["reason"])))
    assert reasons["Ses01F_impro01_F001"] == ("skipped", "silent wav (peak below -100 dBFS)")
    assert reasons["Ses01F_impro01_F002"][1].startswith("too short: 0.20 s")
    assert reasons["Ses01F_impro01_F003"] == ("resampled", "resampled from 8000 Hz to 16000 Hz")
    kept = clips["utterance_id"].nunique()
    assert kept + (skipped["action"] == "skipped").sum() == len(utterances)
    assert list(clips["clip_id"]) == ["Ses01F_impro01_F000_c00", "Ses01F_impro01_F000_c01",
                                      "Ses01F_impro01_F003_c00", "Ses01F_impro01_F004_c00"]
    assert clips["padded"].tolist() == [False, False, True, True]
    array = np.load(tmp_path / "out" / "spectrograms.npy", mmap_mode="r")
    assert array.shape == (4, 200, 300) and array.dtype == np.float16
    assert list(clips["row"]) == [0, 1, 2, 3]
    # The padded clip is filled with noise, not zeros: its last second is above the floor.
    assert np.asarray(array[3][:, 250:], np.float32).mean() > -59
    assert json.loads((tmp_path / "out" / "meta.json").read_text())["shape"] == [4, 200, 300]


def test_the_corpus_noise_is_estimated_only_for_variants_that_use_it():
    from avemo.audio.variant import needs_noise, plan_jobs

    utterances = pd.DataFrame({"utterance_id": ["u0", "u1"], "wav_path": ["a.wav", "b.wav"], "wav_seconds": [7.5, 2.0],
                               "session": [1, 2]})
    full, clip3s = SegmentPolicy(segmentation="full"), SegmentPolicy(segmentation="clip3s")
    raw = {name: VariantConfig(policy, None, STUDY_SPECTROGRAM) for name, policy in [("full", full), ("clip3s", clip3s)]}
    assert not needs_noise(plan_jobs(utterances, raw["full"])[0], raw["full"])  # never padded
    assert needs_noise(plan_jobs(utterances, raw["clip3s"])[0], raw["clip3s"])  # the 2 s utterance is padded
    assert not needs_noise(plan_jobs(utterances.iloc[:1], raw["clip3s"])[0], raw["clip3s"])  # 7.5 s: remainder dropped
    clean_full = VariantConfig(full, Cleanup(), STUDY_SPECTROGRAM)
    assert needs_noise(plan_jobs(utterances, clean_full)[0], clean_full)  # gating uses a noise sample


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "FLOAT", "PCM_U8"])
def test_wavs_load_as_soundfile_reads_them_whatever_the_format_from_a_file_or_bytes(tmp_path, subtype):
    path = write(tmp_path / "x.wav", speechlike(1.0), 16000, subtype)
    expected = sf.read(path, dtype="float32", always_2d=True)[0][:, 0]
    loaded, note = load_wav(path)
    assert note == "" and np.array_equal(loaded, expected)
    assert np.array_equal(load_wav(path, max_frames=4000)[0], loaded[:4000])
    assert np.array_equal(load_wav((tmp_path / "x.wav").read_bytes())[0], loaded)  # bytes: no reader's leftovers


@pytest.mark.parametrize("subtype", ["PCM_16", "FLOAT"])
def test_a_wav_cut_short_or_with_two_channels_is_refused_with_the_reason(tmp_path, subtype):
    data = Path(write(tmp_path / "x.wav", speechlike(3.0), 16000, subtype)).read_bytes()
    cut = len(data) // 3
    with pytest.raises(ValueError, match=r"truncated wav: its header announces 3.00 s, the file holds (0.9\d|1.00) s"):
        load_wav(data[:cut])
    assert len(load_wav(data[:cut], max_frames=8000)[0]) == 8000  # what was asked for is there
    size = data.index(b"data") + 4
    streamed = data[:size] + b"\xff\xff\xff\xff" + data[size + 4:cut]  # a streamed wav's placeholder: read to the end
    assert 0 < len(load_wav(streamed)[0]) < 16000
    stereo = np.stack([speechlike(1.0), speechlike(1.0, seed=1)], axis=1)
    with pytest.raises(ValueError, match=r"2 channels: .*`sox in.wav -c 1 out.wav`"):
        load_wav(write(tmp_path / "stereo.wav", stereo, 16000, subtype))


def test_a_truncated_corpus_wav_is_skipped_with_its_reason_not_read_short(tmp_path):
    whole = Path(write(tmp_path / "a.wav", speechlike(4.0), 16000)).read_bytes()
    (tmp_path / "b.wav").write_bytes(whole[: len(whole) // 2])
    utterances = pd.DataFrame({
        "utterance_id": ["Ses01F_impro01_F000", "Ses01F_impro01_F001"],
        "wav_path": [str(tmp_path / "a.wav"), str(tmp_path / "b.wav")], "wav_seconds": [4.0, 4.0],
        "class": "neutral", "label": "neu", "session": 1, "speaker": "Ses01F", "dialog": "Ses01F_impro01",
        "markers": "F", "gender": "F", "start": 0.0, "avi_path": "x.avi"})
    clips, skipped = build_variant(utterances, VariantConfig(SegmentPolicy(), None, STUDY_SPECTROGRAM, workers=1),
                                   tmp_path / "out")
    assert list(clips["utterance_id"]) == ["Ses01F_impro01_F000"]
    assert skipped.set_index("utterance_id").loc["Ses01F_impro01_F001", "reason"].startswith(
        "truncated wav: its header announces 4.00 s, the file holds 2.00 s")


def test_a_session_s_noise_pads_and_cleans_only_that_session_s_clips(tiny_utterances, tmp_path):
    """Louder room noise in Session 5's recordings changes Session 5's padded and cleaned clips and not one byte of
    any other session's: no session's noise shapes another's (a test session shapes nothing a model trains on)."""
    from avemo.audio.variant import variant_config
    from tests.conftest import project_params

    utterances = tiny_utterances[tiny_utterances["class"].notna()].reset_index(drop=True)
    louder = utterances.copy()
    for k in np.flatnonzero(utterances["session"] == 5):
        y, sr = sf.read(utterances.at[k, "wav_path"], dtype="float32")
        noisy = y + 0.05 * np.random.default_rng(k).standard_normal(len(y)).astype(np.float32)
        louder.at[k, "wav_path"] = write(tmp_path / f"{k}.wav", np.clip(noisy, -1, 1), sr)
    cfg = variant_config(project_params().audio.model_copy(update={"workers": 1}), "clip3s", "clean")
    clips, _ = build_variant(utterances, cfg, tmp_path / "as-recorded")
    again, _ = build_variant(louder, cfg, tmp_path / "session-5-louder")
    a = np.load(tmp_path / "as-recorded" / "spectrograms.npy")
    b = np.load(tmp_path / "session-5-louder" / "spectrograms.npy")
    assert list(clips["clip_id"]) == list(again["clip_id"])
    other = (clips["session"] != 5).to_numpy()
    assert np.array_equal(a[other], b[other])
    assert not np.array_equal(a[~other], b[~other])
    meta = json.loads((tmp_path / "as-recorded" / "meta.json").read_text())
    assert sorted(meta["noise_by_session"]) == [str(s) for s in sorted(utterances["session"].unique())]
