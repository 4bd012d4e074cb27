import pytest

from avemo.audio.segment import Clip, SegmentPolicy, plan_clips


def test_a_7_5_s_utterance_gives_two_clips_and_drops_the_tail_as_the_study_did():
    assert plan_clips(7.5, SegmentPolicy()) == [Clip(0, 0.0, 3.0, False), Clip(1, 3.0, 6.0, False)]


def test_a_padded_tail_when_the_policy_says_so():
    clips = plan_clips(7.5, SegmentPolicy(remainder="pad"))
    assert clips[-1] == Clip(2, 6.0, 7.5, True) and len(clips) == 3
    assert len(plan_clips(6.5, SegmentPolicy(remainder="pad", min_remainder=1.0))) == 2  # 0.5 s tail too short


def test_a_2_s_utterance_gives_one_padded_clip_or_nothing():
    assert plan_clips(2.0, SegmentPolicy()) == [Clip(0, 0.0, 2.0, True)]
    assert plan_clips(2.0, SegmentPolicy(short="drop")) == []


def test_full_segmentation_is_one_item_per_utterance():
    assert plan_clips(7.5, SegmentPolicy(segmentation="full")) == [Clip(0, 0.0, 7.5, False)]


def test_unknown_policy_is_refused_clearly():
    with pytest.raises(ValueError, match="segmentation must be"):
        SegmentPolicy(segmentation="clip5s")
