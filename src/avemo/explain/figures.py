"""Figures of explanations (PNG). A method is drawn as an explanation only where it passed its
deletion check (`passed`: (method, unit) pairs, by default the explanation's own verdicts; a
single clip has no verdict of its own, so its figure takes the test set's). A panel with no
passing method says so instead. The deletion figure draws every method, passing or not: it is
the evidence for the verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Collection, Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402

from avemo.explain.audio import AudioExplanation, top_bands  # noqa: E402
from avemo.explain.deletion import Deletion  # noqa: E402
from avemo.explain.modality import ModalityShares  # noqa: E402
from avemo.explain.summary import class_means  # noqa: E402
from avemo.explain.video import VideoExplanation  # noqa: E402
from avemo.models.video import PIXEL_SCALES  # noqa: E402

Checks = Collection[tuple[str, str]]
LABELS = {"occlusion": "occlusion", "integrated_gradients": "integrated gradients", "grad_cam": "Grad-CAM"}
UNITS = {"occlusion": "drop in p of the class", "integrated_gradients": "contribution to p of the class",
         "grad_cam": "share of the clip's map"}


def passed_checks(explanation: AudioExplanation | VideoExplanation) -> set[tuple[str, str]]:
    """The (method, unit) pairs whose deletion check passed."""
    return {key for key, d in explanation.deletions.items() if d.passed}


def audio_figures(explanation: AudioExplanation, folder: Path) -> list[Path]:
    """Per-class band and moment importance, and the deletion curves, of a set of clips."""
    return [band_importance_figure(explanation, folder / "bands.png"),
            moment_importance_figure(explanation, folder / "moments.png"),
            deletion_figure(explanation.deletions, folder / "audio_deletion.png")]


def video_figures(explanation: VideoExplanation, folder: Path, normalise: str) -> list[Path]:
    """Per-class face-region maps and frame importance, and the deletion curves, of a set of clips."""
    return [face_region_figure(explanation, folder / "face_regions.png", normalise),
            frame_importance_figure(explanation, folder / "frames.png"),
            deletion_figure(explanation.deletions, folder / "video_deletion.png")]


def band_importance_figure(explanation: AudioExplanation, path: Path, passed: Checks | None = None) -> Path:
    """Bars: mean importance of each band over the clips of each class; the top bands shaded."""
    methods = _drawn(explanation, "band", passed)
    n_bands = explanation.bands[next(iter(explanation.bands))].shape[1]
    top = top_bands(n_bands, explanation.top_fraction)

    def draw(ax: Axes, method: str, c: int) -> None:
        values = explanation.class_bands(method)[c]
        share = class_means(explanation.top_band_share(method), explanation.labels, len(explanation.classes))[c]
        ax.bar(np.arange(n_bands), values, width=0.9, color=np.where(values >= 0, "tab:red", "tab:blue"))
        ax.axvspan(top.start - 0.5, top.stop - 0.5, color="0.85", zorder=0,
                   label=f"top {explanation.top_fraction:.0%} bands: {share:.0%} of |importance|")
        ax.set_xlabel("mel band (0 = lowest)")
        ax.legend(fontsize=7, loc="upper left")

    return _class_grid(explanation.classes, methods, draw, "band importance", path, "bands")


def moment_importance_figure(explanation: AudioExplanation, path: Path, passed: Checks | None = None) -> Path:
    """Curves: mean importance of each moment (window of frames) over the clips of each class."""
    methods = _drawn(explanation, "moment", passed)

    def draw(ax: Axes, method: str, c: int) -> None:
        ax.stairs(explanation.class_moments(method)[c], explanation.moment_edges(), baseline=None, color="tab:purple")
        ax.axhline(0, color="0.6", lw=0.8)
        ax.set_xlabel("frame")

    return _class_grid(explanation.classes, methods, draw, "moment importance", path, "moments")


def face_region_figure(explanation: VideoExplanation, path: Path, normalise: str, passed: Checks | None = None) -> Path:
    """Each class's mean face with its mean region-importance map laid over it."""
    methods = _drawn(explanation, "region", passed)
    faces = explanation.class_faces()

    def draw(ax: Axes, method: str, c: int) -> None:
        ax.imshow(display_rgb(faces[c], normalise))
        ax.imshow(explanation.class_regions(method)[c], cmap="inferno", alpha=0.55)
        ax.set_xticks([]), ax.set_yticks([])

    return _class_grid(explanation.classes, methods, draw, "face regions", path, "regions")


def frame_importance_figure(explanation: VideoExplanation, path: Path, passed: Checks | None = None) -> Path:
    """Curves: mean importance of each frame over the clips of each class."""
    methods = _drawn(explanation, "frame", passed)

    def draw(ax: Axes, method: str, c: int) -> None:
        values = explanation.class_frames(method)[c]
        ax.plot(np.arange(len(values)), values, marker="o", ms=3, color="tab:green")
        ax.set_xlabel("frame")

    return _class_grid(explanation.classes, methods, draw, "frame importance", path, "frames")


def deletion_figure(deletions: Mapping[tuple[str, str], Deletion], path: Path) -> Path:
    """One panel per method and unit: the mean deletion curve against random order, with the verdict."""
    fig, axes = plt.subplots(1, len(deletions), figsize=(3.6 * len(deletions), 3.2), squeeze=False)
    for ax, ((method, unit), d) in zip(axes[0], deletions.items()):
        s = d.summary()
        ax.plot(d.fractions, d.curves.mean(0), color="tab:red", label=f"{LABELS[method]}: AUC {s['auc']:.3f}")
        ax.plot(d.fractions, d.random_curves.mean(0), color="0.5", ls="--", label=f"random: AUC {s['random_auc']:.3f}")
        verdict = "passes" if d.passed else "FAILS: not an explanation"
        ax.set_title(f"{unit}s, {LABELS[method]}\n{verdict} (gain {s['gain']:.3f}, "
                     f"95 % [{s['gain_low']:.3f}, {s['gain_high']:.3f}])", fontsize=8)
        ax.set_xlabel(f"share of {unit}s removed, most important first")
        ax.set_ylabel("p of the explained class")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7)
    return _save(fig, path)


def modality_share_figure(shares: ModalityShares, path: Path) -> Path:
    """Stacked bars: the mean share of the decision from audio and from video, per class."""
    audio = shares.class_audio_share()
    fig, ax = plt.subplots(figsize=(1.4 * len(shares.classes) + 2, 3))
    x = np.arange(len(shares.classes))
    ax.bar(x, audio, color="tab:orange", label="audio")
    ax.bar(x, 1 - audio, bottom=audio, color="tab:cyan", label="video")
    counts = [int((shares.labels == c).sum()) for c in range(len(shares.classes))]
    ax.set_xticks(x, [f"{name}\n({n} clips)" for name, n in zip(shares.classes, counts)])
    ax.set_ylabel("share of the decision (Shapley)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    return _save(fig, path)


@dataclass(frozen=True)
class ClipScale:
    """What the model's input stands for: the frequency edges of its rows (Hz, rows + 1), the seconds of
    one column, and the dB range its [-1, 1] scale maps (the loader's `model_input`)."""

    hz_edges: np.ndarray
    frame_seconds: float
    floor_db: float
    ceiling_db: float

    @classmethod
    def of(cls, config: dict, seconds: float, sr: int) -> ClipScale:
        """From a registered model's serving config and the duration of the clip drawn (seconds of audio).

        Rows: STFT bins (k sr / n_fft) or mel bands (librosa's centres, as the audio stage computes
        them up to sr/2), each spanning half-way to its neighbours; with a frequency crop, the rows kept
        are stretched over the whole height, as `crop_frequency` does. Columns: one hop each, except a
        full utterance resized to `frames` columns (full_time_axis=resize).
        """
        import librosa

        c = config["spectrogram"]
        bins = c["bins"]
        centres = (librosa.mel_frequencies(bins + 2, fmin=0.0, fmax=sr / 2)[1:-1] if c["kind"] == "mel"
                   else np.arange(bins) * sr / c["n_fft"])
        stored = np.clip(np.concatenate([[1.5 * centres[0] - 0.5 * centres[1]], (centres[1:] + centres[:-1]) / 2,
                                         [1.5 * centres[-1] - 0.5 * centres[-2]]]), 0, sr / 2)
        keep = max(1, round(bins * (1 - config["crop_ratio"]))) if config["crop_ratio"] > 0 else bins
        hz_edges = np.interp(np.arange(bins + 1) * keep / bins, np.arange(bins + 1), stored)
        resized = config["segmentation"]["segmentation"] == "full" and c["full_time_axis"] == "resize"
        return cls(hz_edges, seconds / c["frames"] if resized else c["hop_length"] / sr, c["floor_db"],
                   c["ceiling_db"])

    def db(self, scaled: np.ndarray) -> np.ndarray:
        """The model's input ([-1, 1]) back in dB."""
        return (scaled + 1) / 2 * (self.ceiling_db - self.floor_db) + self.floor_db

    def band_range(self, band: int) -> list[float]:
        """[low, high] Hz of a shown row."""
        return [round(float(self.hz_edges[band])), round(float(self.hz_edges[band + 1]))]


def clip_figure(spectrogram: np.ndarray, explanation: AudioExplanation, path: Path, passed: Checks,
                scale: ClipScale, clip: int = 0) -> Path:
    """One clip: its spectrogram (the model's input, in dB, frequency in Hz by time in seconds), the
    importance of each band beside it and of each moment below it, for the methods that passed on the
    test set."""
    n_bands, n_frames = spectrogram.shape
    if len(scale.hz_edges) != n_bands + 1:
        raise ValueError(f"clip figure: the spectrogram has {n_bands} rows, its scale {len(scale.hz_edges) - 1}")
    fig = plt.figure(figsize=(9.5, 5), layout="constrained")
    grid = fig.add_gridspec(2, 3, width_ratios=(5, 1.4, 0.15), height_ratios=(3, 1.3))
    image = fig.add_subplot(grid[0, 0])
    bands, moments = fig.add_subplot(grid[0, 1], sharey=image), fig.add_subplot(grid[1, 0], sharex=image)
    mesh = image.pcolormesh(np.arange(n_frames + 1) * scale.frame_seconds, scale.hz_edges, scale.db(spectrogram),
                            cmap="magma", vmin=scale.floor_db, vmax=scale.ceiling_db)
    fig.colorbar(mesh, cax=fig.add_subplot(grid[0, 2]), label="dB")
    name = explanation.classes[explanation.targets[clip]]
    image.set_title(f"why {name} (p = {explanation.probabilities[clip]:.2f})")
    image.set_ylabel("frequency (Hz)")
    image.tick_params(labelbottom=False)
    centres = (scale.hz_edges[:-1] + scale.hz_edges[1:]) / 2
    for method in explanation.bands:
        if (method, "band") in passed:
            bands.plot(explanation.bands[method][clip], centres, label=LABELS[method])
        if (method, "moment") in passed:
            moments.stairs(explanation.moments[method][clip], explanation.moment_edges() * scale.frame_seconds,
                           baseline=None, label=LABELS[method])
    bands.tick_params(labelleft=False)
    bands.set_xlabel("importance (p)")
    moments.set_xlabel("time (s)")
    moments.set_ylabel("importance (p)")
    for ax, unit in ((bands, "band"), (moments, "moment")):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6)
        else:
            ax.text(0.5, 0.5, f"no method passed\nthe {unit} check", ha="center", va="center", fontsize=7,
                    transform=ax.transAxes)
    return _save(fig, path)


def clip_face_figure(explanation: VideoExplanation, path: Path, normalise: str, passed: Checks,
                     shares: ModalityShares | None = None, clip: int = 0) -> Path:
    """One clip's face: its mean face with each passing method's region map over it, its frame importance
    below, and (fusion) how much of the answer came from each modality, for the methods that passed on the
    test set."""
    regions = [m for m in explanation.regions if (m, "region") in passed]
    fig, axes = plt.subplots(2, max(1, len(regions)) + 1, figsize=(3.2 * (max(1, len(regions)) + 1), 5),
                             squeeze=False, layout="constrained")
    face = display_rgb(explanation.faces[clip], normalise)
    axes[0, 0].imshow(face)
    axes[0, 0].set_title(f"{explanation.classes[explanation.targets[clip]]} "
                         f"(p = {explanation.probabilities[clip]:.2f})", fontsize=8)
    for ax, method in zip(axes[0, 1:], regions):
        ax.imshow(face)
        ax.imshow(explanation.regions[method][clip], cmap="inferno", alpha=0.55)
        ax.set_title(f"face regions: {LABELS[method]}", fontsize=8)
    if not regions:
        axes[0, 1].text(0.5, 0.5, "no method passed\nthe region check", ha="center", va="center", fontsize=7)
    for ax in axes[0]:
        ax.set_xticks([]), ax.set_yticks([])
    frames = axes[1, 0]
    for method, values in explanation.frames.items():
        if (method, "frame") in passed:
            frames.plot(np.arange(len(values[clip])), values[clip], marker="o", ms=3, label=LABELS[method])
    frames.set_xlabel("frame")
    frames.set_ylabel("importance")
    if frames.get_legend_handles_labels()[0]:
        frames.legend(fontsize=6)
    else:
        frames.text(0.5, 0.5, "no method passed\nthe frame check", ha="center", va="center", fontsize=7,
                    transform=frames.transAxes)
    for ax in axes[1, 1:]:
        ax.axis("off")
    if shares is not None:
        share = shares.audio_share[clip]
        ax = axes[1, 1]
        ax.barh([0], [share], color="tab:blue", label="audio")
        ax.barh([0], [1 - share], left=[share], color="tab:orange", label="video")
        ax.set_xlim(0, 1), ax.set_yticks([])
        ax.axis("on")
        ax.set_title(f"modality shares: audio {share:.2f}" if share == share else "modality shares: neither "
                     "modality raises p", fontsize=8)
        ax.legend(fontsize=6, loc="lower right")
    return _save(fig, path)


def display_rgb(face: np.ndarray, normalise: str) -> np.ndarray:
    """(3, H, W) model-space frame -> (H, W, 3) RGB in [0, 1], undoing the video network's pixel scaling."""
    mean, sd = (np.asarray(v, dtype=np.float32)[:, None, None] for v in PIXEL_SCALES[normalise])
    return np.clip((face * sd + mean).transpose(1, 2, 0), 0, 1)


def _drawn(explanation: AudioExplanation | VideoExplanation, unit: str, passed: Checks | None) -> list[str]:
    passed = passed_checks(explanation) if passed is None else passed
    return [method for method, u in explanation.deletions if u == unit and (method, unit) in passed]


def _class_grid(classes: list[str], methods: list[str], draw: Callable[[Axes, str, int], None], title: str,
                path: Path, units: str) -> Path:
    """Rows: methods that passed; columns: classes. A note instead when no method passed."""
    if not methods:
        fig, ax = plt.subplots(figsize=(6, 1.5))
        ax.axis("off")
        ax.text(0.5, 0.5, f"{title}: no method passed the deletion check on {units},\nso none is drawn "
                "(see the deletion curves)", ha="center", va="center")
        return _save(fig, path)
    fig, axes = plt.subplots(len(methods), len(classes), figsize=(3.2 * len(classes), 2.6 * len(methods)),
                             squeeze=False)
    for r, method in enumerate(methods):
        for c, name in enumerate(classes):
            draw(axes[r, c], method, c)
            axes[r, c].set_title(f"{name}: {LABELS[method]}", fontsize=8)
        axes[r, 0].set_ylabel(UNITS[method], fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
