"""On a corpus where one mel band, in one span of frames, carries the class: both methods find that
band and that moment, their deletion curves fall faster than random, and the crop answer follows."""

import json

import numpy as np
import pytest
import torch

from avemo.explain import explain_spectrograms
from avemo.explain.audio import METHODS, top_bands
from avemo.explain.baselines import band_means
from avemo.explain.deletion import deletion_checks
from avemo.explain.outputs import audio_scores
from avemo.explain.units import band_mask
from tests.explain.corpus import BANDS, CARRIER_BAND, CLASSES, FRAMES


def test_the_model_learnt_the_task(audio_explanation, audio_test_set):
    _, y = audio_test_set
    assert (audio_explanation.targets == y.numpy()).mean() >= 0.95


@pytest.mark.parametrize("method", METHODS)
def test_both_methods_rank_the_carrier_band_first(audio_explanation, method):
    bands = audio_explanation.bands[method]
    assert (bands.argmax(axis=1) == CARRIER_BAND).mean() >= 0.9  # clip by clip
    for c in range(len(CLASSES)):  # and in each class's mean
        assert np.argmax(audio_explanation.class_bands(method)[c]) == CARRIER_BAND


@pytest.mark.parametrize("method", METHODS)
def test_both_methods_find_the_carrier_moment(audio_explanation, method):
    moment = 20 // audio_explanation.window  # the carrier frames 20-29 are moment 2
    assert all(np.argmax(audio_explanation.class_moments(method)[c]) == moment for c in range(len(CLASSES)))


@pytest.mark.parametrize("unit", ["band", "moment"])
@pytest.mark.parametrize("method", METHODS)
def test_the_deletion_curve_falls_faster_than_random(audio_explanation, method, unit):
    check = audio_explanation.deletions[(method, unit)]
    assert check.passed and audio_explanation.faithful(method, unit)
    assert check.interval.low > 0.1  # a wide margin: the carrier goes first, at random it goes anywhere
    assert check.curves[:, 1].mean() < check.random_curves[:, 1].mean() - 0.2  # the first removal already tells


def test_a_ranking_that_puts_the_carrier_last_fails_the_check(audio_model, audio_test_set, audio_explanation):
    x, _ = audio_test_set
    ranking = audio_explanation.bands["occlusion"][:12]
    checks = deletion_checks("band", {"occlusion": ranking, "reversed": -ranking}, audio_scores(audio_model), x[:12],
                             band_mask(BANDS, FRAMES), band_means(audio_model, FRAMES),
                             audio_explanation.targets[:12])
    assert checks[("occlusion", "band")].passed
    assert not checks[("reversed", "band")].passed and checks[("reversed", "band")].gain.mean() < 0


def test_one_clip_has_no_verdict_of_its_own(audio_model, audio_test_set):
    x, _ = audio_test_set
    one = explain_spectrograms(audio_model, x[:1], CLASSES, steps=8, repeats=2)
    assert not any(d.passed for d in one.deletions.values())
    assert np.isnan(one.deletions[("occlusion", "band")].interval.low)
    json.dumps(one.metrics(), allow_nan=False)  # null, not NaN, where there is no interval
    assert one.bands["occlusion"].argmax() == CARRIER_BAND  # its importances are still there to draw


def test_the_crop_answer_counts_the_highest_bands(audio_explanation):
    assert top_bands(BANDS, 0.4) == slice(10, 16)  # the carrier band (11) is among them
    metrics = audio_explanation.metrics()
    assert all(share > 0.6 for share in metrics["top_bands"]["share"].values())
    assert metrics["top_bands"]["drop"] > 0.2  # setting them all to their means costs the class probability
    assert metrics["per_class"]["high"]["most_important_bands"]["occlusion"][0] == CARRIER_BAND
    assert sum(metrics["at_baseline"].values()) == pytest.approx(1, abs=1e-4)
    json.dumps(metrics, allow_nan=False)  # plain numbers, ready for a metrics file


def test_the_answer_depends_on_the_baseline(audio_model, audio_test_set):
    """Silence (the dB floor, -1 in model space) instead of the band means: the model reads silence
    as "low", an uninformative band at -1 moves it more than the carrier does for "low" clips, and
    the moment ranking gains too little on random order to pass."""
    x, y = audio_test_set
    floor = -torch.ones(1, 1, BANDS, FRAMES)
    explanation = explain_spectrograms(audio_model, x[:16], CLASSES, labels=y[:16].numpy(), baseline=floor,
                                       steps=16, repeats=2)
    assert explanation.metrics()["at_baseline"]["low"] > 0.99
    assert np.argmax(explanation.class_bands("occlusion")[CLASSES.index("low")]) != CARRIER_BAND
    moments = explanation.deletions[("occlusion", "moment")]
    assert moments.interval.low > 0 and not moments.passed  # consistent, but under the margin
