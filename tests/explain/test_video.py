"""On a corpus where one frame's top-right quarter carries the class: Grad-CAM on the last convolution
and occlusion find that frame and that region, and pass their deletion checks."""

import numpy as np
import pytest
import torch

from avemo.explain import explain_frames
from avemo.explain.gradcam import grid_centres, last_convolution, on_input_grid
from avemo.models.video import VideoNet, VideoNetConfig, VideoOnly
from tests.explain import corpus
from tests.explain.corpus import CARRIER_FRAME, CLASSES

TOP_RIGHT = 1  # of the 2 x 2 region grid: cells numbered row by row


def test_the_model_learnt_the_task(video_explanation):
    assert (video_explanation.targets == video_explanation.labels).mean() >= 0.95


def test_grad_cam_finds_the_carrier_frame_to_its_resolution(video_explanation):
    """The last convolution's moments each see 5 frames, so the peak may sit one frame off and the
    map spreads over the neighbours (each clip's map sums to one over its 12 frames)."""
    for c in range(len(CLASSES)):
        frames = video_explanation.class_frames("grad_cam")[c]
        assert abs(int(np.argmax(frames)) - CARRIER_FRAME) <= 1
        assert frames[CARRIER_FRAME - 1: CARRIER_FRAME + 2].sum() > 1.5 * 3 / len(frames)


def test_occlusion_finds_the_carrier_frame_exactly(video_explanation):
    assert (video_explanation.frames["occlusion"].argmax(axis=1) == CARRIER_FRAME).mean() >= 0.9


@pytest.mark.parametrize("method", ["grad_cam", "occlusion"])
def test_both_methods_find_the_carrier_region(video_explanation, method):
    for c, name in enumerate(CLASSES):
        region = video_explanation.class_regions(method)[c]
        quarters = [region[r: r + 8, q: q + 10].mean() for r in (0, 8) for q in (0, 10)]
        assert int(np.argmax(quarters)) == TOP_RIGHT
        assert video_explanation.metrics()["per_class"][name]["most_important_regions"][method][0] == TOP_RIGHT


@pytest.mark.parametrize("unit", ["frame", "region"])
@pytest.mark.parametrize("method", ["grad_cam", "occlusion"])
def test_the_video_deletion_checks_pass(video_explanation, method, unit):
    assert video_explanation.faithful(method, unit)


def test_the_grad_cam_grid_sits_at_its_receptive_field_centres():
    """The default video model's last convolution: 12 moments x 1 row x 6 columns, centred inside the input."""
    net = VideoNet(VideoNetConfig(channels=(8, 16, 32, 32), pools=2, stem_pool=(1, 2, 2), fc=(128, 64),
                                  batch_norm=True), len(CLASSES))
    frames, rows, cols = grid_centres(net, last_convolution(net), (12, 1, 6))
    assert frames.tolist() == list(range(4, 16))  # four unpadded 3-frame convolutions: 4 frames lost each side
    assert rows.tolist() == [28.5] and cols.tolist() == [28.5, 36.5, 44.5, 52.5, 60.5, 68.5]
    one_hot = torch.zeros(1, 12, 1, 6)
    one_hot[0, 0, 0, 0] = 1
    upsampled = on_input_grid(one_hot, [frames, rows, cols], (20, 60, 100))[0]
    assert upsampled[:5, 0, :29].eq(1).all() and upsampled[5:].eq(0).all()  # held before the first centre


def test_the_joint_loaders_video_model_is_explained_as_its_network(video_model):
    """`VideoOnly` (what the video stage trains, fed (spectrogram, frames)) explains like the VideoNet inside it."""
    y = corpus.labels(4, 10)
    frames = corpus.frames(y, 10)
    inner, wrapped = (explain_frames(m, frames, CLASSES, grid=(2, 2), repeats=1)
                      for m in (video_model, VideoOnly(video_model)))
    assert all(np.array_equal(inner.frames[m], wrapped.frames[m]) for m in inner.frames)
