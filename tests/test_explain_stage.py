"""The `explain` stage and command: outputs that reconcile with the test clips, figures on each model's run, and a
wav refused as `avemo predict` refuses it."""

import io
import json

import mlflow
import numpy as np
import pytest
import soundfile as sf
import torch

from avemo import cli
from tests.conftest import details, run_stage

pytestmark = pytest.mark.slow

#: The one mel band the constructed audio model reads (and so the fusion model's audio branch).
CARRIER_BAND = 5


def constructed(folder, carrier: int) -> None:
    """Rewrites the model in `folder` so that its answer is known: the audio network (alone or as the fusion
    model's branch) reads band `carrier` only (the band standardisation divides every other band by 1e9 and
    amplifies that one), and a fusion model's output layer ignores the video embedding."""
    from avemo.models.checkpoint import load_checkpoint, save_checkpoint

    net, spec = load_checkpoint(folder / "best.pt")
    audio = net.audio if spec.family == "fusion" else net
    with torch.no_grad():
        audio.input_std[:, :, [b for b in range(audio.input_std.shape[2]) if b != carrier]] = 1e9
        audio.input_std[:, :, carrier] /= 100  # and reads it loud: the answer moves with that band alone
        if spec.family == "fusion":
            net.head.weight[:, audio.embedding_dim:] = 0
    save_checkpoint(folder / "best.pt", net, spec)


@pytest.fixture(scope="module")
def explained(tiny_variant, tiny_video, tiny_splits, tmp_path_factory, empty_mlflow_store):
    """The three kept models of the tiny corpus (one seed, one epoch), explained; (folder, params, runs)."""
    import shutil

    from tests.conftest import project_params

    root = tmp_path_factory.mktemp("explain")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        (root / "mlruns").mkdir()
        shutil.copy(empty_mlflow_store, root / "mlruns" / "mlflow.db")
        tiny_splits.to_parquet(root / "splits.parquet")
        params = project_params().override({"train.seeds": [0], "train.loop.epochs": 1, "train.loop.batch_size": 8,
                                            "train.video.epochs": 1, "train.fusion.epochs": 1,
                                            "explain.clips_per_class": 2, "explain.background_per_class": 2,
                                            "explain.steps": 4, "explain.repeats": 1})
        data = ["--audio", tiny_variant, "--video", tiny_video[0], "--splits", root / "splits.parquet"]
        for family, extra in (("audio", []), ("video", []),
                              ("fusion", ["--init-audio", root / "audio", "--init-video", root / "video"])):
            run_stage(params, "train", "--family", family, *data, *extra, "--stage", f"train_{family}", "--model-dir",
                      root / family, "--metrics", root / f"{family}.json", "--details", root / f"{family}-details")
        for family in ("audio", "fusion"):
            constructed(root / family, CARRIER_BAND)
        run_stage(params, "explain", "--audio", tiny_variant, "--frames", tiny_video[0], "--splits",
                  root / "splits.parquet", *(x for f in ("audio", "video", "fusion") for x in (
                      f"--{f}-model", root / f, f"--{f}-details", root / f"{f}-details" / "details.json")),
                  "--details", root / "explain")
        runs = {f: details(root / f"{f}-details")["mlflow_run_id"] for f in ("audio", "video", "fusion")}
        yield root, params, runs


def test_the_stage_explains_a_class_balanced_sample_of_the_test_clips_and_checks_every_method(explained, tiny_splits,
                                                                                             tiny_variant):
    import pandas as pd

    root, params, runs = explained
    summary = json.loads((root / "explain" / "explain.json").read_text())
    clips = pd.read_parquet(tiny_variant / "clips.parquet")
    test = clips[clips["utterance_id"].isin(tiny_splits.loc[tiny_splits["role"] == "test", "utterance_id"])
                 & clips["class"].isin(["neutral", "happy", "angry", "sad"])]
    assert summary["test_clips"] <= len(test) and set(summary["clip_ids"]) <= set(test["clip_id"])
    per_class = test.set_index("clip_id").loc[summary["clip_ids"], "class"].value_counts()
    assert summary["clips"] == len(summary["clip_ids"]) and (per_class <= 2).all()  # explain.clips_per_class
    for family in ("audio", "video"):
        assert summary[family]["clips"] == summary["clips"]
        checks = summary[family]["faithfulness"]
        assert checks and all(isinstance(c["passed"], bool) and c["clips"] == summary["clips"] for c in checks.values())
    # The constructed models' answers are known: the audio model reads one band, so both methods rank it first in
    # every class and deleting it first costs more than at random; the fusion model ignores its video, so removing
    # the video changes nothing.
    audio = summary["audio"]
    for name, per_class in audio["per_class"].items():
        if per_class["clips"]:
            assert {m: v[0] for m, v in per_class["most_important_bands"].items()} == {
                "occlusion": CARRIER_BAND, "integrated_gradients": CARRIER_BAND}, name
    for method in ("occlusion", "integrated_gradients"):  # the only band it reads, deleted first, costs at once
        band = audio["faithfulness"][f"{method}/band"]
        assert band["gain"] > 0 and band["auc"] < band["random_auc"], method
    fusion = summary["fusion"]
    for part in (fusion, *(c for c in fusion["per_class"].values() if c["clips"])):
        assert part["video_drop"] == pytest.approx(0, abs=1e-6) and part["video_shapley"] == pytest.approx(0, abs=1e-6)
    for figure in ("audio/bands.png", "audio/moments.png", "audio/audio_deletion.png", "video/face_regions.png",
                   "video/frames.png", "fusion/modality_shares.png"):
        assert (root / "explain" / figure).stat().st_size > 5_000, figure
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        client = mlflow.MlflowClient(f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
        for family, run_id in runs.items():  # on each model's own run
            assert "explain/explain.json" in {a.path for a in client.list_artifacts(run_id, "explain")}, family


def test_the_command_refuses_a_bad_wav_as_predict_does(explained, tiny_variant, tmp_path, capsys, monkeypatch):
    from avemo.registry import log_version
    from avemo.serving import serving_config

    root, params, _ = explained
    monkeypatch.chdir(root)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    log_version("avemo-audio", root / "audio" / "best.pt", serving_config(params, tiny_variant), {"dvc_stage": "test"})
    buffer = io.BytesIO()
    t = np.arange(32000) / 16000
    sf.write(buffer, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000, format="WAV", subtype="PCM_16")
    (tmp_path / "good.wav").write_bytes(buffer.getvalue())
    (tmp_path / "cut.wav").write_bytes(buffer.getvalue()[:20000])
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVE junk")
    verdicts = ["--verdicts", str(root / "explain" / "explain.json"), "--model", "avemo-audio@challenger",
                "--out", str(tmp_path / "maps")]
    assert cli.main(["explain", str(tmp_path / "good.wav"), *verdicts]) == 0
    answer = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert answer["emotion"] and (tmp_path / "maps" / "good.png").stat().st_size > 5_000
    for name, message in (("cut.wav", "truncated wav"), ("corrupt.wav", "corrupt wav"), ("none.wav", "no such file")):
        assert cli.main(["explain", str(tmp_path / name), *verdicts]) == 1
        out = capsys.readouterr()
        assert f"{name}: {message}" in " ".join((out.out + out.err).split()) and "Traceback" not in out.err, name


def test_a_fusion_model_explains_one_clip_with_its_face_and_the_share_of_each_modality(explained, tiny_variant,
                                                                                       tiny_utterances, tmp_path,
                                                                                       capsys, monkeypatch):
    """After the stage (as after `make repro`), `avemo explain clip.wav --video ...` with the fusion model draws the
    clip's face and gives the share of each modality; the constructed fusion model ignores the video embedding,
    so the whole answer is the audio's."""
    from avemo.registry import log_version
    from avemo.serving import serving_config

    root, params, _ = explained
    monkeypatch.chdir(root)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    log_version("avemo-fusion", root / "fusion" / "best.pt", serving_config(params, tiny_variant), {"dvc_stage": "test"})
    assert (root / "explain" / "background.pt").stat().st_size > 10_000  # the stage keeps its background
    u = tiny_utterances[tiny_utterances["has_avi"] & (tiny_utterances["wav_seconds"] > 3.2)].iloc[0]
    assert cli.main(["explain", u["wav_path"], "--video", u["avi_path"], "--start", str(u["start"]), "--end",
                     str(u["end"]), "--model", "avemo-fusion@challenger", "--verdicts",
                     str(root / "explain" / "explain.json"), "--out", str(tmp_path / "maps")]) == 0
    answer = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    stem = u["wav_path"].rsplit("/", 1)[-1].removesuffix(".wav")
    assert answer["face_figure"].endswith(f"{stem}-face.png") and (tmp_path / "maps" / f"{stem}-face.png").stat(
        ).st_size > 5_000
    modality = answer["modality"]
    assert modality["video_shapley"] == pytest.approx(0, abs=1e-4)  # the video moves nothing: all of it is audio's
    assert modality["audio_share"] == (1.0 if modality["audio_shapley"] > 0 else None)  # None: neither raises p
    assert modality["p_without_video"] == pytest.approx(answer["p"], abs=1e-4)  # no video: the same answer
    assert answer["region_grid"] == [3, 5] and set(answer["top_regions"]) <= {"grad_cam", "occlusion"}
    (root / "explain" / "background.pt").rename(tmp_path / "moved.pt")  # without the stage's background: told why
    try:
        assert cli.main(["explain", u["wav_path"], "--video", u["avi_path"], "--start", str(u["start"]), "--end",
                         str(u["end"]), "--model", "avemo-fusion@challenger", "--verdicts",
                         str(root / "explain" / "explain.json"), "--out", str(tmp_path / "maps")]) == 1
        out = capsys.readouterr()
        assert "background.pt: no background of training clips" in " ".join((out.out + out.err).split())
    finally:
        (tmp_path / "moved.pt").rename(root / "explain" / "background.pt")
