import json
import shutil

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from avemo.corpus.iemocap import UTTERANCE_RE, parse_emo_evaluation, read_corpus
from avemo.labels import class_names
from tests.conftest import FIXTURES, STANDARD4


@pytest.fixture
def quirks():
    text = (FIXTURES / "emo_quirks.txt").read_text()
    return parse_emo_evaluation(text, "emo_quirks.txt")


def test_blocks_parse_times_labels_and_vad_exactly(quirks):
    blocks, _ = quirks
    assert [b.utterance_id for b in blocks] == [
        "Ses01F_impro01_F000", "Ses01F_impro01_M001", "Ses01F_impro01_MXX2", "Ses01F_impro01_F005"]
    first = blocks[0]
    assert (first.start, first.end, first.label) == (6.2901, 8.2357, "neu")
    assert (first.valence, first.activation, first.dominance) == (2.5, 2.5, 2.5)
    assert blocks[2].start == 15.5 and blocks[2].label == "xxx"
    assert (blocks[3].valence, blocks[3].activation, blocks[3].dominance) == (1.5, 1.5, 2.0)


def test_votes_keep_evaluators_self_evaluation_and_dimensions(quirks):
    first, second = quirks[0][:2]
    assert first.votes == {"E2": ["Neutral"], "E3": ["Neutral"], "E4": ["Neutral", "Frustration"]}
    assert first.self_votes == {"F1": ["Neutral"]}
    assert first.dim_votes == {"E3": [3, 2, 2], "E4": [2, 3, 3], "F1": [3, 2, 1]}
    assert second.votes["E3"] == ["Happiness", "Excited"]
    assert second.self_votes == {"M1": ["Happiness"]}


def test_malformed_blocks_are_reported_with_line_and_reason(quirks):
    _, problems = quirks
    by_utt = {p["utterance_id"]: p for p in problems}
    assert set(by_utt) == {"Ses01F_impro01_F002", "Ses01F_impro01_F003", "Ses01F_impro01_F004"}
    assert "not after start" in by_utt["Ses01F_impro01_F002"]["reason"]
    assert "unknown label code 'joy'" in by_utt["Ses01F_impro01_F003"]["reason"]
    assert "malformed block line" in by_utt["Ses01F_impro01_F004"]["reason"]
    assert by_utt["Ses01F_impro01_F004"]["line"] == 31
    assert all(p["file"] == "emo_quirks.txt" for p in problems)


def test_utterance_pattern_accepts_lettered_names():
    for name in ("Ses01F_impro05a_M013", "Ses05M_script01_1b_FXX0", "Ses03F_script02_2_M041"):
        assert UTTERANCE_RE.match(name), name
    assert not UTTERANCE_RE.match("._Ses01F_impro01_F000")
    assert UTTERANCE_RE.match("Ses05M_script01_1b_FXX0")["dialog"] == "Ses05M_script01_1b"


def test_class_order_follows_the_mapping():
    assert class_names(STANDARD4) == ["neutral", "happy", "angry", "sad"]


def _tree_with_quirks(root):
    """A one-dialogue release: the fixture labels, wavs for some blocks, and the usual mess."""
    dialog = root / "Session1" / "dialog"
    (dialog / "EmoEvaluation" / "Categorical").mkdir(parents=True)
    shutil.copy(FIXTURES / "emo_quirks.txt", dialog / "EmoEvaluation" / "Ses01F_impro01.txt")
    (dialog / "EmoEvaluation" / "._Ses01F_impro01.txt").write_bytes(b"\x00\x05\x16\x07")
    (dialog / "EmoEvaluation" / "Categorical" / "Ses01F_impro01_e2_cat.txt").write_text("junk\n")
    wavs = root / "Session1" / "sentences" / "wav" / "Ses01F_impro01"
    wavs.mkdir(parents=True)
    tone = 0.1 * np.sin(np.linspace(0, 2000, 16000))
    for name in ("F000", "M001", "MXX2", "F009"):  # F009 has no label; F005 has no wav
        sf.write(wavs / f"Ses01F_impro01_{name}.wav", tone, 16000, subtype="PCM_16")
    (wavs / "Ses01F_impro01_F000.pk").write_bytes(b"pickle")
    (wavs / "._Ses01F_impro01_F000.wav").write_bytes(b"\x00\x05")
    (wavs / "Ses01F_impro01_M001.wav").write_bytes(b"RIFF....WAVEjunk")  # corrupt
    return root


def test_reader_keeps_what_is_sound_and_reports_the_rest(tmp_path):
    utterances, skipped = read_corpus(_tree_with_quirks(tmp_path), STANDARD4)
    assert list(utterances["utterance_id"]) == ["Ses01F_impro01_F000", "Ses01F_impro01_MXX2"]
    row = utterances.iloc[0]
    assert (row["session"], row["speaker"], row["markers"], row["gender"], row["class"]) == (1, "Ses01F", "F", "F", "neutral")
    assert json.loads(row["votes"])["E4"] == ["Neutral", "Frustration"]
    assert row["duration"] == pytest.approx(8.2357 - 6.2901)
    assert pd.isna(utterances.iloc[1]["class"])  # xxx is outside the class set, but kept
    reasons = dict(zip(skipped["utterance_id"], skipped["reason"]))
    assert reasons["Ses01F_impro01_M001"].startswith("unreadable wav")
    assert reasons["Ses01F_impro01_F005"] == "label block without a sentence wav"
    assert reasons["Ses01F_impro01_F009"] == "wav without a label block"
    assert skipped["file"].str.endswith("Ses01F_impro01_M001.wav").any()
    # Everything that came in is accounted for: 7 blocks + 1 orphan wav = 2 kept + 6 skipped.
    assert len(utterances) + len(skipped) == 8


def test_missing_root_gives_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="corpus root not found"):
        read_corpus(tmp_path / "nope", STANDARD4)
    with pytest.raises(FileNotFoundError, match="no Session1..Session5"):
        read_corpus(tmp_path, STANDARD4)
