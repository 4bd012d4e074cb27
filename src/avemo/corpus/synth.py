"""The embedded default corpus: a small synthetic IEMOCAP_full_release.

Same folders, names, formats and label text as the real release (IEMOCAP_FORMAT.md), so
the real reader and every later stage run on it unchanged. Deterministic from a seed:
each dialogue draws from its own generator, so the result does not depend on the number
of worker processes. The generative rules are documented in docs/corpus.md.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pandas as pd
import soundfile as sf

from avemo.corpus import face, voice
from avemo.corpus.iemocap import CATEGORY_NAMES, EMO_HEADER, speaker_side
from avemo.parallel import parallel_map
from avemo.params import Synth

#: Dialogue name templates; markers alternate F, M. Includes lettered names as in the release. IEMOCAP has
#: about 30 dialogues a session: 32 names let a corpus of its size keep its dialogues' length. New names go
#: last: a dialogue's position here seeds its rendering, so the first ones keep their bytes.
DIALOG_TEMPLATES = ["impro01", "script01_1", "impro05a", "script02_2b", "impro03", "script03_1", "impro07", "script01_2",
                    "impro02", "impro04", "impro05b", "impro06", "impro08", "script01_3", "script02_1", "script02_2",
                    "script03_2", *(f"impro{n:02d}" for n in range(9, 16)),
                    *(f"script{n:02d}_{k}" for n in range(4, 8) for k in (1, 2))]
TARGETS = ("neu", "hap", "ang", "sad")
#: Mean (valence, activation, dominance) on the 1-5 scale per label code.
VAD = {
    "neu": (3.0, 2.5, 2.5), "hap": (4.0, 3.0, 3.0), "exc": (4.0, 4.0, 3.5), "ang": (1.8, 4.0, 4.0),
    "sad": (2.0, 2.0, 2.0), "fru": (2.0, 3.5, 3.5), "sur": (3.5, 4.0, 3.0), "fea": (2.0, 3.5, 2.0),
    "dis": (2.0, 3.0, 3.5), "oth": (3.0, 3.0, 3.0), "xxx": (2.8, 3.0, 3.0),
}
WORDS = ("well", "I", "you", "know", "what", "that", "just", "really", "think", "so", "we", "it's", "not",
         "going", "to", "the", "okay", "yeah", "there", "was", "never", "again", "right", "mean", "here")
LEFT_CENTRE, RIGHT_CENTRE = (0.25, 0.48), (0.75, 0.48)  # face centres as fractions of the frame


@dataclass
class Utterance:
    """The generator's ground truth for one utterance."""

    utterance_id: str
    dialog: str
    session: int
    markers: str
    gender: str
    speaker: str
    turn: str
    start: float
    end: float
    label: str
    emotion: str  # what drives voice and face: the label, or a blend for 'xxx'
    blend_with: str
    blend_weight: float
    turned_away: bool
    side: str  # 'left' or 'right' half of the split screen
    transcript: str


@dataclass
class DialoguePlan:
    name: str
    session: int
    markers: str
    length: float
    utterances: list[Utterance]
    speakers: dict[str, voice.Speaker]
    looks: dict[str, face.Look]
    background: tuple[int, int, int]


def plan_corpus(cfg: Synth) -> list[DialoguePlan]:
    """Names, speakers, labels and times of every dialogue: cheap, and all the ground truth."""
    codes = list(cfg.label_weights)
    weights = np.array([cfg.label_weights[c] for c in codes], dtype=float)
    weights /= weights.sum()
    if cfg.dialogues_per_session > len(DIALOG_TEMPLATES):
        raise ValueError(f"synth.dialogues_per_session is at most {len(DIALOG_TEMPLATES)}")
    plans = []
    for session in range(1, cfg.sessions + 1):
        srng = np.random.default_rng([cfg.seed, session])
        speakers = {g: voice.make_speaker(g, srng, cfg.pitch_scale) for g in "FM"}
        looks = {g: face.make_look(srng, cfg.face_scale) for g in "FM"}
        background = tuple(int(c) for c in srng.integers(70, 130, 3))
        for d in range(cfg.dialogues_per_session):
            rng = np.random.default_rng([cfg.seed, session, d, 0])
            markers = "FM"[d % 2]
            name = f"Ses0{session}{markers}_{DIALOG_TEMPLATES[d]}"
            plans.append(_plan_dialogue(cfg, rng, name, session, markers, codes, weights,
                                        speakers, looks, background))
    return plans


def _plan_dialogue(cfg, rng, name, session, markers, codes, weights, speakers, looks, background) -> DialoguePlan:
    t = round(float(rng.uniform(0.5, 1.5)), 4)
    gender = str(rng.choice(["F", "M"]))
    counters = {"F": 0, "M": 0}
    used_xx = set()
    utterances = []
    for _ in range(cfg.turns_per_dialogue):
        if rng.random() < 0.8:
            gender = "M" if gender == "F" else "F"
        duration = float(np.clip(rng.lognormal(math.log(cfg.median_seconds), 0.5), cfg.min_seconds, cfg.max_seconds))
        start, end = round(t, 4), round(t + duration, 4)
        turn = f"{gender}{counters[gender]:03d}"
        if rng.random() < 0.03 and counters[gender] % 10 not in used_xx:
            turn = f"{gender}XX{counters[gender] % 10}"  # the release has a few lettered turn ids
            used_xx.add(counters[gender] % 10)
        counters[gender] += 1
        label = str(rng.choice(codes, p=weights))
        emotion, other, w = label, label, 0.0
        if label == "xxx":  # no majority: a genuine mixture of two emotions
            emotion, other = (str(c) for c in rng.choice(TARGETS + ("fru",), 2, replace=False))
            w = float(rng.uniform(0.3, 0.7))
        n_words = max(1, int(duration * rng.uniform(2.0, 3.0)))
        words = " ".join(str(x) for x in rng.choice(WORDS, n_words))
        utterances.append(Utterance(
            utterance_id=f"{name}_{turn}", dialog=name, session=session, markers=markers, gender=gender,
            speaker=f"Ses0{session}{gender}", turn=turn, start=start, end=end, label=label, emotion=emotion,
            blend_with=other, blend_weight=w, turned_away=bool(rng.random() < cfg.turned_away),
            side=speaker_side(gender, markers), transcript=words[0].upper() + words[1:] + "."))
        t = end + float(rng.uniform(0.3, 1.0))
    return DialoguePlan(name, session, markers, round(t + 0.5, 4), utterances, speakers, looks, background)


def emotion_voice(u: Utterance, rng: np.random.Generator, strength: float = 1.0) -> voice.Prosody:
    p = voice.PROSODY[u.emotion]
    if u.blend_weight:
        p = voice.blend(p, voice.PROSODY[u.blend_with], u.blend_weight)
    if strength != 1.0:
        p = voice.blend(voice.PROSODY["neu"], p, strength)
    return voice.vary(p, rng)


def emotion_face(u: Utterance, rng: np.random.Generator, strength: float = 1.0) -> face.Expression:
    e = face.EXPRESSIONS[u.emotion]
    if u.blend_weight:
        e = face.blend(e, face.EXPRESSIONS[u.blend_with], u.blend_weight)
    if strength != 1.0:
        e = face.blend(face.EXPRESSIONS["neu"], e, strength)
    return face.vary(e, rng)


# --- label text ---------------------------------------------------------------------------

def emo_evaluation_text(plan: DialoguePlan, seed: int) -> str:
    """The EmoEvaluation file: header line, then one block per utterance, blank-line separated."""
    rng = np.random.default_rng([seed, plan.session, _dialog_index(plan), 1])
    parts = [EMO_HEADER, ""]
    for u in plan.utterances:
        evaluators = sorted(str(e) for e in rng.choice([f"E{i}" for i in range(1, 7)], 3, replace=False))
        cats = _categorical_votes(u.label, len(evaluators), rng)
        dims = {e: _dim_vote(u.label, rng) for e in evaluators[:2]}
        v, a, d = (np.mean([x[i] for x in dims.values()]) for i in range(3))
        lines = [f"[{u.start:.4f} - {u.end:.4f}]\t{u.utterance_id}\t{u.label}\t[{v:.4f}, {a:.4f}, {d:.4f}]"]
        lines += [f"C-{e}:\t{'; '.join(c)};\t()" for e, c in zip(evaluators, cats)]
        self_cat = CATEGORY_NAMES.get(u.label, "Frustration") if rng.random() < 0.7 else "Neutral"
        lines.append(f"C-{u.gender}1:\t{self_cat};\t({'' if rng.random() < 0.7 else 'mildly'})")
        dims[f"{u.gender}1"] = _dim_vote(u.label, rng)
        lines += [f"A-{who}:\tval {x[0]}; act {x[1]}; dom  {x[2]};\t()" for who, x in dims.items()]
        parts += lines + [""]
    return "\n".join(parts)


def _dialog_index(plan: DialoguePlan) -> int:
    suffix = plan.name.split("_", 1)[1]
    return DIALOG_TEMPLATES.index(suffix)


def _categorical_votes(label: str, n: int, rng: np.random.Generator) -> list[list[str]]:
    names = list(CATEGORY_NAMES.values())
    if label == "xxx":  # no majority: every evaluator picks a different category
        return [[str(c)] for c in rng.choice(names, n, replace=False)]
    majority = CATEGORY_NAMES[label]
    others = [c for c in names if c != majority]
    agree = n if rng.random() < 0.5 else n - 1
    votes = [[majority] for _ in range(agree)] + [[str(rng.choice(others))] for _ in range(n - agree)]
    if rng.random() < 0.15:
        votes[0].append(str(rng.choice(others)))  # evaluators may tick several categories
    rng.shuffle(votes)
    return votes


def _dim_vote(label: str, rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(np.clip(round(m + rng.normal(0, 0.6)), 1, 5)) for m in VAD[label])


def transcription_text(plan: DialoguePlan) -> str:
    return "".join(f"{u.utterance_id} [{u.start:08.4f}-{u.end:08.4f}]: {u.transcript}\n" for u in plan.utterances)


def categorical_text(plan: DialoguePlan) -> str:
    """An EmoEvaluation/Categorical/ file: the real tree has them; the reader must ignore them."""
    return "".join(f"{u.utterance_id} :{CATEGORY_NAMES.get(u.label, 'Other')}; ()\n" for u in plan.utterances)


# --- audio and video ----------------------------------------------------------------------

def render_dialogue(job: tuple[DialoguePlan, Synth, str]) -> str:
    """Write one dialogue's wavs (dialogue + sentences) and its split-screen avi."""
    plan, cfg, root_str = job
    cv2.setNumThreads(1)
    root = Path(root_str)
    rng = np.random.default_rng([cfg.seed, plan.session, _dialog_index(plan), 2])
    sr = voice.SAMPLE_RATE
    n = int(round(plan.length * sr))
    noise_db = float(rng.uniform(*cfg.noise_dbfs))
    audio = voice.room_noise(n, noise_db, rng)
    envelopes = []
    for u in plan.utterances:
        a, b = int(round(u.start * sr)), int(round(u.end * sr))
        speech, env = voice.speak((b - a) / sr, plan.speakers[u.gender], emotion_voice(u, rng, cfg.emotion_strength), rng)
        audio[a:b] += speech
        envelopes.append(env)
    audio = np.clip(audio, -1.0, 1.0)

    session_dir = root / f"Session{plan.session}"
    _write_wav(session_dir / "dialog" / "wav" / f"{plan.name}.wav", audio)
    for u in plan.utterances:
        a, b = int(round(u.start * sr)), int(round(u.end * sr))
        _write_wav(session_dir / "sentences" / "wav" / plan.name / f"{u.utterance_id}.wav", audio[a:b])

    expressions = [emotion_face(u, rng, cfg.expression_strength) for u in plan.utterances]
    frames = _render_frames(plan, cfg, envelopes, expressions, rng)
    write_divx_avi(session_dir / "dialog" / "avi" / "DivX" / f"{plan.name}.avi", frames, cfg)
    return plan.name


def _write_wav(path: Path, audio: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, voice.SAMPLE_RATE, subtype="PCM_16")


def write_divx_avi(path: Path, frames: Iterable[np.ndarray], cfg: Synth) -> None:
    """Encode BGR frames (cfg.height x cfg.width) into a DivX avi with cfg's frame rate and key-frame spacing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="avi") as container:
        stream = _divx_stream(container, cfg)
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")))
        container.mux(stream.encode())  # flush the encoder


def _divx_stream(container: av.container.OutputContainer, cfg: Synth) -> av.VideoStream:
    """An MPEG-4 part 2 stream tagged DIVX, with DivX's key-frame spacing.

    OpenCV's writer always puts a key frame every 12 frames, which makes seeking far cheaper
    than in a DivX file (at most one every 300 frames by default); the video stage's seek
    policy and its benchmark need the real spacing. Quality settings are those of OpenCV's
    writer (bit rate 2 x fps x pixels, qmin 3); one encoder thread keeps files byte-identical
    on any machine.
    """
    stream = container.add_stream("mpeg4", rate=Fraction(cfg.fps).limit_denominator(1001))
    stream.codec_tag = "DIVX"
    stream.width, stream.height, stream.pix_fmt = cfg.width, cfg.height, "yuv420p"
    context = stream.codec_context
    context.gop_size, context.qmin, context.thread_count = cfg.keyframe_interval, 3, 1
    context.bit_rate = int(2 * cfg.fps * cfg.width * cfg.height)
    return stream


def _render_frames(plan: DialoguePlan, cfg: Synth, envelopes: list[np.ndarray],
                   expressions: list[face.Expression], rng: np.random.Generator) -> Iterator[np.ndarray]:
    """The split-screen BGR frames: both actors' drawn faces, the speaker's mouth following the voice."""
    n_frames = int(math.ceil(plan.length * cfg.fps))
    times = np.arange(n_frames) / cfg.fps
    starts = np.array([u.start for u in plan.utterances])
    active = np.searchsorted(starts, times, side="right") - 1
    background = np.empty((cfg.height, cfg.width, 3), np.uint8)
    background[:] = plan.background
    background[:, cfg.width // 2:] = np.clip(np.array(plan.background) + 12, 0, 255)
    jitter = _head_jitter(n_frames, rng)  # (frames, 2 actors, xy)
    listener = {g: face.vary(face.EXPRESSIONS["neu"], rng) for g in "FM"}
    centres = {plan.markers: LEFT_CENTRE, ("M" if plan.markers == "F" else "F"): RIGHT_CENTRE}
    for k in range(n_frames):
        frame = background.copy()
        i = active[k]
        speaking = i >= 0 and times[k] < plan.utterances[i].end
        for slot, (gender, (fx, fy)) in enumerate(centres.items()):
            expr, mouth, away = listener[gender], 0.0, False
            if speaking and plan.utterances[i].gender == gender:
                u = plan.utterances[i]
                expr, away = expressions[i], u.turned_away
                env = envelopes[i]
                mouth = float(env[min(len(env) - 1, int((times[k] - u.start) * voice.SAMPLE_RATE))])
                mouth = min(1.0, mouth / (env.max() or 1.0))
            offset = jitter[k, slot] * expr.motion
            centre = (int(fx * cfg.width + offset[0]), int(fy * cfg.height + offset[1]))
            face.draw_face(frame, centre, plan.looks[gender], expr, mouth, away)
        yield frame


def _head_jitter(n: int, rng: np.random.Generator) -> np.ndarray:
    """Slow head motion: an AR(1) walk per actor and axis, a few pixels wide."""
    steps = rng.normal(0, 1.2, (n, 2, 2))
    walk = np.zeros_like(steps)
    for k in range(1, n):
        walk[k] = 0.95 * walk[k - 1] + steps[k]
    return walk


# --- the whole corpus ---------------------------------------------------------------------

def synthesize(cfg: Synth, out: str | Path) -> pd.DataFrame:
    """Write the corpus under `out/IEMOCAP_full_release` and its ground truth `out/manifest.parquet`."""
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    root = out / "IEMOCAP_full_release"
    plans = plan_corpus(cfg)
    _write_release_files(root, plans, cfg)
    jobs = [(p, cfg, str(root)) for p in plans]
    for _ in parallel_map(render_dialogue, jobs, cfg.workers, "synth: dialogues", ordered=False):
        pass
    manifest = pd.DataFrame([asdict(u) for p in plans for u in p.utterances])
    manifest.to_parquet(out / "manifest.parquet", index=False)
    return manifest


def _write_release_files(root: Path, plans: list[DialoguePlan], cfg: Synth) -> None:
    root.mkdir(parents=True)
    (root / "README.txt").write_text(
        "Synthetic stand-in for IEMOCAP_full_release, generated by `avemo synth`.\n"
        "Same layout and formats as the real release; no real speech or faces. See docs/corpus.md.\n")
    (root / "Documentation").mkdir()
    (root / "Documentation" / "synthetic.txt").write_text(f"generator seed {cfg.seed}\n")
    for plan in plans:
        dialog = root / f"Session{plan.session}" / "dialog"
        for sub in ("EmoEvaluation/Categorical", "transcriptions"):
            (dialog / sub).mkdir(parents=True, exist_ok=True)
        (dialog / "EmoEvaluation" / f"{plan.name}.txt").write_text(emo_evaluation_text(plan, cfg.seed))
        (dialog / "EmoEvaluation" / "Categorical" / f"{plan.name}_e2_cat.txt").write_text(categorical_text(plan))
        (dialog / "transcriptions" / f"{plan.name}.txt").write_text(transcription_text(plan))
    # Stray files as in real copies: macOS resource forks and .pk files beside the wavs.
    first = plans[0]
    strays = root / f"Session{first.session}" / "sentences" / "wav" / first.name
    strays.mkdir(parents=True, exist_ok=True)
    (strays / f"._{first.utterances[0].utterance_id}.wav").write_bytes(b"\x00\x05\x16\x07" + bytes(60))
    (strays / f"{first.utterances[0].utterance_id}.pk").write_bytes(b"\x80\x04N.")
