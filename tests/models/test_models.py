import pytest
import torch

from avemo.models.audio import PAPER, AudioNet, AudioNetConfig
from avemo.models.fusion import FusionNet
from avemo.models.video import VideoNet, VideoNetConfig

SMALL_VIDEO = VideoNetConfig(channels=(4, 8, 8, 8), fc=(32, 16))


@pytest.mark.parametrize("cfg", [
    AudioNetConfig(kind="cnn"),
    AudioNetConfig(kind="cnn_lstm"),
    AudioNetConfig(kind="cnn_rnn", bidirectional=False, rnn_layers=2),
    AudioNetConfig(kind="cnn_rnn", channels=(4, 4, 4, 4), kernels=((9, 9),) * 4, padding=(False,) * 4),
    AudioNetConfig(kind="cnn_lstm", channels=(4, 4, 4, 4), kernels=((9, 9),) * 4, padding=(False,) * 4),
    AudioNetConfig(**{**PAPER.__dict__, "kind": "cnn"}),
])
def test_audio_models_forward_and_backward(cfg):
    model = AudioNet(cfg, n_classes=4)
    x = torch.randn(2, 1, 200, 300)
    logits = model(x)
    assert logits.shape == (2, 4) and model.embed(x).shape == (2, cfg.fc)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_a_configuration_that_cannot_fit_the_input_fails_clearly():
    cfg = AudioNetConfig(channels=(4,) * 6, kernels=((15, 15),) * 6, padding=(False,) * 6)
    with pytest.raises(ValueError, match=r"block \d of 6 shrinks the \(200, 300\) input"):
        AudioNet(cfg, 4)
    with pytest.raises(ValueError, match="video model: block"):
        VideoNet(VideoNetConfig(channels=(4,) * 8, pools=6), 4)


def test_the_recurrent_models_read_time_as_a_sequence():
    """Shuffling time frames changes a recurrent model's output (the study's length-1 RNN would not care)."""
    torch.manual_seed(0)
    model = AudioNet(AudioNetConfig(kind="cnn_rnn"), 4).eval()
    x = torch.randn(1, 1, 200, 300)
    blocks = x.reshape(1, 1, 200, 10, 30)[:, :, :, torch.randperm(10)].reshape(1, 1, 200, 300)
    assert not torch.allclose(model(x), model(blocks), atol=1e-5)


def test_video_model_on_the_study_input_shape():
    model = VideoNet(SMALL_VIDEO, 4)
    frames = torch.randn(2, 3, 20, 60, 100)
    assert model(frames).shape == (2, 4) and model.embed(frames).shape == (2, 16)
    model(frames).sum().backward()


def test_fusion_output_changes_when_only_the_frames_change():
    torch.manual_seed(0)
    model = FusionNet(AudioNetConfig(), SMALL_VIDEO, 4).eval()
    spectrogram, frames = torch.randn(1, 1, 200, 300), torch.randn(1, 3, 20, 60, 100)
    with torch.no_grad():
        a, b = model(spectrogram, frames), model(spectrogram, frames + 1.0)
        c = model(spectrogram + 0.5, frames)
    assert not torch.allclose(a, b) and not torch.allclose(a, c)
    assert model.embed(spectrogram, frames).shape == (1, 64 + 16)


def test_video_model_with_batch_norm_has_one_per_conv_and_learns_a_separable_task_in_40_steps():
    torch.manual_seed(0)
    cfg = VideoNetConfig(channels=(4, 8, 8, 8), fc=(32, 16), batch_norm=True)
    model = VideoNet(cfg, 4)
    assert sum(isinstance(m, torch.nn.BatchNorm3d) for m in model.modules()) == 4
    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-3)
    for _ in range(40):
        y = torch.randint(0, 4, (16,))
        frames = torch.randn(16, 3, 20, 60, 100) + y.view(-1, 1, 1, 1, 1) * 0.5  # brightness tells the class
        loss = torch.nn.functional.cross_entropy(model(frames), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert loss.item() < 0.7  # chance is ln 4 = 1.39
