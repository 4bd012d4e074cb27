
import re

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from avemo.corpus.iemocap import speaker_side
from avemo.corpus.synth import write_divx_avi
from avemo.data.datasets import AudioVisualDataset
from avemo.params import Synth, Video
from avemo.video.extract import DialogueJob, build_video, process_dialogue
from avemo.video.frames import (
    clip_frame_times,
    decode_frames,
    frame_indices,
    key_frames,
)

FPS = 29.97


def two_colour_avi(path, seconds=3.0):
    """Left half red, right half blue (BGR), no faces: the crop must use the fallback box."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"DIVX"), FPS, (720, 480))
    frame = np.zeros((480, 720, 3), np.uint8)
    frame[:, :360] = (0, 0, 200)
    frame[:, 360:] = (200, 0, 0)
    for _ in range(int(seconds * FPS)):
        writer.write(frame)
    writer.release()
    return str(path)


@pytest.mark.parametrize("markers", ["F", "M"])
def test_the_crop_takes_the_speakers_half_for_both_marker_letters(tmp_path, markers):
    other = "M" if markers == "F" else "F"
    sides = (speaker_side(markers, markers), speaker_side(other, markers))  # the wearer's, the other actor's
    assert sides == ("left", "right")
    job = DialogueJob(two_colour_avi(tmp_path / "d.avi"), ("wearer", "other"), sides, ((0.2, 1.2), (1.5, 2.5)), (0, 1),
                      Video(n_frames=5))
    wearer, partner = process_dialogue(job)
    red, blue = np.array([200, 0, 0]), np.array([0, 0, 200])  # RGB out
    assert np.abs(wearer.frames.reshape(-1, 3).mean(0) - red).max() < 20  # left half: the marker wearer
    assert np.abs(partner.frames.reshape(-1, 3).mean(0) - blue).max() < 20
    assert wearer.face_frames == 0 and wearer.frames.shape == (5, 60, 100, 3)


def test_frame_times_fall_inside_the_clip_window():
    for start, end in ((0.0, 3.0), (12.34, 13.1), (100.0, 109.9)):
        times = clip_frame_times(start, end, 20)
        assert len(times) == 20 and (times > start).all() and (times < end).all()
        idx = frame_indices(times, FPS)
        assert (idx >= np.floor(start * FPS)).all() and (idx <= np.floor(end * FPS)).all()
        assert (np.diff(idx) >= 0).all()


def test_clip_ids_match_the_audio_variant_one_to_one(tiny_variant, tiny_video):
    _, table, skipped = tiny_video
    audio = pd.read_parquet(tiny_variant / "clips.parquet")
    assert table["clip_id"].tolist() == audio["clip_id"].tolist()
    assert skipped.empty and table["has_video"].all()
    frames = np.load(tiny_video[0] / "frames.npy", mmap_mode="r")
    assert frames.shape == (len(audio), 20, 60, 100, 3) and frames.dtype == np.uint8
    window = (audio["utt_start"] + audio["start"]) * FPS
    assert (table["first_frame"] >= np.floor(window)).all()
    assert (table["last_frame"] <= np.floor((audio["utt_start"] + audio["end"]) * FPS)).all()


def test_the_detector_finds_most_drawn_faces_and_counts_the_fallbacks(tiny_corpus, tiny_video):
    _, manifest = tiny_corpus
    _, table, _ = tiny_video
    away = table["utterance_id"].map(manifest.set_index("utterance_id")["turned_away"])
    facing = table[~away]
    assert (facing["face_frames"] > 0).mean() >= 0.9  # required: faces found in 90 % of facing clips
    assert table["fallback_box"].sum() == ((table["face_frames"] == 0) & table["has_video"]).sum()
    assert away.any(), "the tiny corpus has no head turned away: the fallback goes untested"
    assert table.loc[away, "fallback_box"].mean() >= 0.5  # a head turned away has no face to find


def test_a_corrupt_truncated_or_missing_avi_is_reported_not_fatal(tiny_variant, tmp_path):
    audio = pd.read_parquet(tiny_variant / "clips.parquet")
    dialogs = sorted(audio["dialog"].unique())[:3]
    part = audio[audio["dialog"].isin(dialogs)].copy()
    corrupt, truncated, missing = (tmp_path / f"{d}.avi" for d in dialogs)
    source = part.loc[part["dialog"] == dialogs[1], "avi_path"].iloc[0]
    data = open(source, "rb").read()
    header = data[: data.index(b"movi") + 4]  # a valid AVI header, cut where the frames begin
    assert header[:4] == b"RIFF" and header[8:12] == b"AVI " and b"hdrl" in header
    corrupt.write_bytes(header)
    truncated.write_bytes(data[: len(data) // 3])
    part["avi_path"] = part["dialog"].map({dialogs[0]: str(corrupt), dialogs[1]: str(truncated), dialogs[2]: str(missing)})
    table, skipped = build_video(part, Video(workers=1), tmp_path / "out")
    reasons = skipped.set_index("clip_id")["reason"]
    files = skipped.set_index("clip_id")["file"]
    for dialog, path, reason in ((dialogs[0], corrupt, r"video ended before frame \d+ \(truncated or corrupt\)"),
                                 (dialogs[2], missing, r"video missing or unreadable")):
        for clip in part.loc[part["dialog"] == dialog, "clip_id"]:  # every clip of the file, naming it
            assert re.fullmatch(reason, reasons[clip]) and files[clip] == str(path), (clip, reasons[clip])
    late = part[part["dialog"] == dialogs[1]].sort_values("utt_start").iloc[-1]["clip_id"]
    assert "video" in reasons[late] and ("too short" in reasons[late] or "ended before" in reasons[late])
    assert table["has_video"].sum() + len(skipped) == len(part)
    assert set(skipped["file"]) <= {str(corrupt), str(truncated), str(missing)}


def test_the_joint_loader_returns_aligned_audio_and_frames(tiny_variant, tiny_video, tiny_splits):
    classes = ["neutral", "happy", "angry", "sad"]
    ds = AudioVisualDataset(tiny_variant, tiny_video[0], tiny_splits, "val", classes)
    spec, frames, target = ds[0]
    assert spec.shape == (1, 64, 300) and frames.shape == (3, 20, 60, 100) and frames.dtype == torch.uint8
    assert classes[target] == ds.items["class"].iat[0]
    assert len(ds) == len(ds.items) == ds.items_in and ds.skipped.empty
    blank = AudioVisualDataset(tiny_variant, tiny_video[0], tiny_splits, "val", classes, missing_video="blank")
    blank._has_video[0] = False  # as if the clip had no video: a stack of the mean colour
    assert torch.equal(blank[0][1][:, 0, 0, 0], torch.tensor([124, 116, 104], dtype=torch.uint8))


def numbered_avi(path, frames=240, keyframe_interval=30):
    """A DivX avi whose frame k shows a 16 x 16 square of grey level k, key frames every `keyframe_interval`."""
    def picture(k):
        image = np.full((64, 96, 3), 128, np.uint8)
        image[:16, :16] = k % 256
        return image

    write_divx_avi(path, map(picture, range(frames)), Synth(width=96, height=64, keyframe_interval=keyframe_interval))
    return str(path)


def plain_decode(avi):
    """Every frame, in order, by plain sequential reading; frames are distinct (the square changes)."""
    cap, frames = cv2.VideoCapture(avi), []
    while (frame := cap.read()[1]) is not None:
        frames.append(frame)
    assert len({f[:16, :16].tobytes() for f in frames}) > 200
    return frames


class CountingCapture:
    """A VideoCapture that counts its seeks."""

    def __init__(self, path):
        self.cap, self.seeks = cv2.VideoCapture(path), 0

    def set(self, prop, value):
        self.seeks += 1
        return self.cap.set(prop, value)

    def grab(self):
        return self.cap.grab()

    def read(self):
        return self.cap.read()


def test_key_frames_come_from_the_index_and_a_file_without_one_has_fewer_or_none(tmp_path):
    avi = numbered_avi(tmp_path / "n.avi")
    assert key_frames(avi).tolist() == [0, 30, 60, 90, 120, 150, 180, 210]
    data = open(avi, "rb").read()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) // 2])  # loses the idx1 index at the end
    assert set(key_frames(str(tmp_path / "cut.avi")).tolist()) < {0, 30, 60, 90}  # only what FFmpeg read at open
    assert key_frames(str(tmp_path / "missing.avi")).size == 0


@pytest.mark.parametrize("wanted, seeks", [([0, 3, 4, 20, 40], 0),  # no key frame far enough ahead: decode on
                                           ([5, 100], 1),  # key frame 60 is 55 frames ahead: seek
                                           ([0, 61, 62, 150, 151, 239], 3)])  # from 30, 120, 210
def test_one_pass_seeks_only_past_a_key_frame_and_gives_the_frames_a_plain_decode_gives(tmp_path, wanted, seeks):
    avi = numbered_avi(tmp_path / "n.avi")
    cap = CountingCapture(avi)
    got = dict(decode_frames(cap, np.array(wanted), key_frames(avi)))
    plain = plain_decode(avi)
    assert cap.seeks == seeks
    assert sorted(got) == wanted
    assert all(np.array_equal(got[i], plain[i]) for i in wanted)


def test_without_an_index_the_pass_decodes_straight_through(tmp_path):
    avi = numbered_avi(tmp_path / "n.avi")
    cap = CountingCapture(avi)
    got = dict(decode_frames(cap, np.array([5, 100, 230]), np.empty(0, np.int64)))
    plain = plain_decode(avi)
    assert cap.seeks == 0 and sorted(got) == [5, 100, 230]
    assert all(np.array_equal(got[i], plain[i]) for i in (5, 100, 230))


def test_the_video_model_s_loader_skips_the_audio_and_trains_the_same_weights(tiny_variant, tiny_video, tiny_splits,
                                                                               tmp_path):
    """The video family reads frames only (the spectrogram it ignores was about half of its loading): same
    items, same frames, and a training run that ends on the very same weights as with the audio loaded."""
    from avemo.models.checkpoint import ModelSpec
    from avemo.models.video import video_config
    from avemo.params import Loop, VideoModel
    from avemo.training.loop import seed_everything, train
    from avemo.training.recipe import StageData, build_datasets
    from tests.conftest import project_params

    classes = ["neutral", "happy", "angry", "sad"]
    splits = tmp_path / "splits.parquet"
    tiny_splits.to_parquet(splits)
    video_family, fusion = (build_datasets(family, project_params(), StageData(tiny_variant, tiny_video[0], splits),
                                           classes) for family in ("video", "fusion"))
    assert video_family.train[0][0].shape == (0,) and fusion.train[0][0].shape == (1, 64, 300)
    joint, frames_only = (AudioVisualDataset(tiny_variant, tiny_video[0], tiny_splits, "train", classes,
                                             with_audio=audio) for audio in (True, False))
    assert len(joint) == len(frames_only) > 8 and frames_only[0][0].shape == (0,)
    assert all(torch.equal(joint[i][1], frames_only[i][1]) and joint[i][2] == frames_only[i][2]
               for i in range(len(joint)))
    weights = []
    for k, data in enumerate((joint, frames_only)):
        seed_everything(0)
        net = ModelSpec("video", tuple(classes), None, video_config(VideoModel(), data.frames_shape)).build()
        train(net, data, data, classes, Loop(epochs=2, batch_size=8, select="last"), tmp_path / str(k))
        weights.append(net.state_dict())
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])
