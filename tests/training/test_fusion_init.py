import pytest
import torch

from avemo.models.audio import AudioNet, AudioNetConfig
from avemo.models.checkpoint import ModelSpec, load_checkpoint, save_checkpoint
from avemo.models.fusion import FusionNet
from avemo.models.video import VideoNet, VideoNetConfig, VideoOnly
from avemo.training.recipe import initialise_branches

VIDEO = VideoNetConfig(channels=(4, 8, 8, 8), fc=(32, 16))
CLASSES = ("neutral", "happy", "angry", "sad")


def body(state: dict) -> dict:
    """A network's weights without its output layer."""
    return {k: v for k, v in state.items() if not k.startswith("head.")}


def test_fusion_starts_from_the_trained_single_modality_models(tmp_path):
    torch.manual_seed(1)
    audio, video = AudioNet(AudioNetConfig(), 4), VideoOnly(VideoNet(VIDEO, 4))
    (tmp_path / "a").mkdir(), (tmp_path / "v").mkdir()
    save_checkpoint(tmp_path / "a" / "best.pt", audio, ModelSpec("audio", CLASSES, audio=AudioNetConfig()))
    save_checkpoint(tmp_path / "v" / "best.pt", video, ModelSpec("video", CLASSES, video=VIDEO))
    torch.manual_seed(2)
    fusion = FusionNet(AudioNetConfig(), VIDEO, 4)
    head = fusion.head.weight.clone()
    initialise_branches(fusion, tmp_path / "a" / "best.pt", tmp_path / "v" / "best.pt")
    assert all(torch.equal(v, fusion.audio.state_dict()[k]) for k, v in body(audio.state_dict()).items())
    assert all(torch.equal(v, fusion.video.state_dict()[k]) for k, v in body(video.net.state_dict()).items())
    assert torch.equal(fusion.head.weight, head)  # the fusion head stays new
    # The branches' own output layers are not loaded: fusion never uses them.
    assert not torch.equal(fusion.audio.head.weight, audio.head.weight)
    spectrogram = torch.randn(1, 1, 200, 300)
    audio.eval(), fusion.eval()
    assert torch.allclose(fusion.audio.embed(spectrogram), audio.embed(spectrogram))


def test_a_branch_trained_with_another_class_set_still_initialises_fusion(tmp_path):
    (tmp_path / "a").mkdir()
    save_checkpoint(tmp_path / "a" / "best.pt", AudioNet(AudioNetConfig(), 4),
                    ModelSpec("audio", CLASSES, audio=AudioNetConfig()))
    fusion = FusionNet(AudioNetConfig(), VIDEO, 3)
    initialise_branches(fusion, tmp_path / "a" / "best.pt", None)
    assert fusion(torch.randn(1, 1, 200, 300), torch.randn(1, 3, 20, 60, 100)).shape == (1, 3)


def test_a_model_file_rebuilds_its_model_without_params_yaml(tmp_path):
    """best.pt carries the family, the classes and the architecture beside the weights (as nanoGPT's do)."""
    spec = ModelSpec("fusion", CLASSES[:3], AudioNetConfig(kind="cnn_lstm", input_shape=(64, 300)), VIDEO)
    model = spec.build().eval()
    save_checkpoint(tmp_path / "best.pt", model, spec)
    loaded, read = load_checkpoint(tmp_path / "best.pt")
    assert read == spec
    x = (torch.randn(2, 1, 64, 300), torch.randn(2, 3, 20, 60, 100))
    assert torch.equal(loaded(*x), model(*x))


def test_a_file_that_is_not_a_model_file_is_refused_with_its_name(tmp_path):
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt: not an avemo model file"):
        load_checkpoint(tmp_path / "other.pt")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "other.pt").read_bytes()[:50])
    with pytest.raises(ValueError, match="cut.pt: not a readable avemo model file"):
        load_checkpoint(tmp_path / "cut.pt")
