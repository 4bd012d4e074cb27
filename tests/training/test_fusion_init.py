import torch

from avemo.models.audio import AudioNet, AudioNetConfig
from avemo.models.fusion import FusionNet
from avemo.models.video import VideoNet, VideoNetConfig
from avemo.training.recipe import VideoOnly, initialise_branches

VIDEO = VideoNetConfig(channels=(4, 8, 8, 8), fc=(32, 16))


def body(state: dict) -> dict:
    """A network's weights without its output layer."""
    return {k: v for k, v in state.items() if not k.startswith("head.")}


def test_fusion_starts_from_the_trained_single_modality_models(tmp_path):
    torch.manual_seed(1)
    audio, video = AudioNet(AudioNetConfig(), 4), VideoOnly(VideoNet(VIDEO, 4))
    (tmp_path / "a").mkdir(), (tmp_path / "v").mkdir()
    torch.save(audio.state_dict(), tmp_path / "a" / "best.pt")
    torch.save(video.state_dict(), tmp_path / "v" / "best.pt")
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
    torch.save(AudioNet(AudioNetConfig(), 4).state_dict(), tmp_path / "a" / "best.pt")
    fusion = FusionNet(AudioNetConfig(), VIDEO, 3)
    initialise_branches(fusion, tmp_path / "a" / "best.pt", None)
    assert fusion(torch.randn(1, 1, 200, 300), torch.randn(1, 3, 20, 60, 100)).shape == (1, 3)
