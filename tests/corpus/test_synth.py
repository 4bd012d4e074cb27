import hashlib

import cv2
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from avemo.corpus.iemocap import DIALOG_RE, UTTERANCE_RE, read_corpus
from avemo.corpus.synth import synthesize
from avemo.video.frames import key_frames
from tests.conftest import STANDARD4, TINY


def _digests(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_same_seed_gives_byte_identical_files_whatever_the_worker_count(tiny_corpus, tmp_path):
    root, _ = tiny_corpus
    again = tmp_path / "again"
    synthesize(TINY.model_copy(update={"workers": 1}), again)
    assert _digests(again / "IEMOCAP_full_release") == _digests(root)
    other = tmp_path / "other"
    synthesize(TINY.model_copy(update={"seed": TINY.seed + 1, "sessions": 1}), other)
    assert _digests(other / "IEMOCAP_full_release") != _digests(root)


def test_every_name_follows_the_iemocap_pattern(tiny_corpus):
    root, manifest = tiny_corpus
    assert all(UTTERANCE_RE.match(u) for u in manifest["utterance_id"])
    for path in root.glob("Session*/sentences/wav/*/*.wav"):
        if not path.name.startswith("._"):
            assert UTTERANCE_RE.match(path.stem) and path.parent.name == UTTERANCE_RE.match(path.stem)["dialog"]
    for sub, ext in (("dialog/EmoEvaluation", "txt"), ("dialog/transcriptions", "txt"),
                     ("dialog/wav", "wav"), ("dialog/avi/DivX", "avi")):
        files = list(root.glob(f"Session*/{sub}/*.{ext}"))
        assert len(files) == manifest["dialog"].nunique()
        assert all(DIALOG_RE.match(f.stem) for f in files)
    assert set(manifest["session"]) == {1, 2, 3, 4, 5}
    assert manifest.groupby("session")["gender"].nunique().eq(2).all()


def test_emo_evaluation_opens_with_the_header_and_separates_blocks(tiny_corpus):
    root, manifest = tiny_corpus
    text = next(root.glob("Session1/dialog/EmoEvaluation/*.txt")).read_text()
    assert text.startswith("% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n[")
    blocks = text.split("\n\n")[1:]
    assert all(b.splitlines()[1].startswith("C-E") for b in blocks if b.strip())
    assert any("\nC-F1:\t" in b or "\nC-M1:\t" in b for b in blocks)
    assert any("\nA-E" in b and "dom  " in b for b in blocks)


def test_wavs_are_16khz_mono_16bit(tiny_corpus):
    root, _ = tiny_corpus
    wavs = [p for p in root.glob("Session*/**/*.wav") if not p.name.startswith("._")]
    assert len(wavs) > 30
    for path in wavs:
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.subtype, info.format) == (16000, 1, "PCM_16", "WAV"), path


def test_avis_open_in_opencv_with_the_release_geometry_and_divx_key_frame_spacing(tiny_corpus):
    root, manifest = tiny_corpus
    for path in root.glob("Session*/dialog/avi/DivX/*.avi"):
        header = path.read_bytes()[:512]
        assert header.count(b"DIVX") == 2, path  # stream handler and bitmap compression: DivX's FourCC
        count = int(cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FRAME_COUNT))
        assert key_frames(str(path)).tolist() == list(range(0, count, TINY.keyframe_interval)), path
        cap = cv2.VideoCapture(str(path))
        assert cap.isOpened(), path
        assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (720, 480)
        assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(29.97, abs=0.01)
        last_end = manifest.loc[manifest["dialog"] == path.stem, "end"].max()
        assert cap.get(cv2.CAP_PROP_FRAME_COUNT) / 29.97 > last_end
        cap.release()


def test_reader_recovers_the_ground_truth_exactly(tiny_corpus):
    root, manifest = tiny_corpus
    utterances, skipped = read_corpus(root, STANDARD4)
    assert skipped.empty  # the stray ._ and .pk files are ignored, not skipped
    got = utterances.set_index("utterance_id").sort_index()
    want = manifest.set_index("utterance_id").sort_index()
    assert list(got.index) == list(want.index)
    for col in ("label", "start", "end", "session", "speaker", "gender", "markers", "dialog", "turn"):
        assert got[col].tolist() == want[col].tolist(), col
    assert np.allclose(got["wav_seconds"], want["end"] - want["start"], atol=1 / 16000)


def test_sentence_wav_is_the_dialogue_wav_between_the_label_times(tiny_corpus):
    root, manifest = tiny_corpus
    u = manifest.iloc[3]
    dialog, _ = sf.read(root / f"Session{u.session}/dialog/wav/{u.dialog}.wav", dtype="int16")
    sentence, _ = sf.read(root / f"Session{u.session}/sentences/wav/{u.dialog}/{u.utterance_id}.wav", dtype="int16")
    a = int(round(u.start * 16000))
    assert np.array_equal(sentence, dialog[a:a + len(sentence)])


def _mouth_pixels(frame: np.ndarray, half: int) -> int:
    """Pixels of the drawn mouth colour (BGR ~ (40, 30, 90)) in the lower-face band of one half."""
    part = frame[240:350, half * 360:(half + 1) * 360].astype(int)
    return int((np.abs(part - np.array([40, 30, 90])).sum(axis=2) < 60).sum())


def test_the_speaker_is_on_the_side_the_markers_rule_says(tiny_corpus):
    """Left half = actor wearing markers. The speaker's mouth moves; the listener's does not."""
    root, manifest = tiny_corpus
    checked = 0
    for u in manifest[~manifest["turned_away"]].itertuples():
        cap = cv2.VideoCapture(str(root / f"Session{u.session}/dialog/avi/DivX/{u.dialog}.avi"))
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(np.ceil(u.start * 29.97)))
        counts = []
        for _ in range(int((u.end - u.start) * 29.97) - 1):
            ok, frame = cap.read()
            assert ok
            counts.append([_mouth_pixels(frame, 0), _mouth_pixels(frame, 1)])
        cap.release()
        moving = np.std(np.array(counts), axis=0)
        expected = 0 if u.gender == u.markers else 1
        assert moving[expected] > 3 * moving[1 - expected], (u.utterance_id, moving)
        checked += 1
    assert checked >= 20
    assert {"left", "right"} == set(manifest["side"])


def test_labels_include_non_targets_and_happiness_is_the_scarcest_target():
    from avemo.corpus.synth import plan_corpus
    from avemo.params import Synth

    labels = pd.Series([u.label for p in plan_corpus(Synth()) for u in p.utterances])
    counts = labels.value_counts()
    assert {"exc", "fru", "xxx", "sur"} <= set(counts.index)
    assert counts["hap"] < min(counts["neu"], counts["ang"], counts["sad"])
    assert 400 <= labels.isin(["neu", "hap", "exc", "ang", "sad"]).sum() <= 600
