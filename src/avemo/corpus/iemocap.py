"""Reading an IEMOCAP_full_release tree (the real one or the synthetic stand-in).

The reader never crashes on the real tree's mess: stray files are ignored, and every
malformed block, orphan wav or unreadable wav becomes a row of the skipped table, so that
utterances in = utterances kept + items skipped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import soundfile as sf

if TYPE_CHECKING:  # `avemo predict` reads UTTERANCE_RE: pandas (~0.3 s) is imported where a table is made
    import pandas as pd

DIALOG_PATTERN = r"Ses0[1-5][MF]_(?:impro|script)\d\d[ab]?(?:_\d[ab]?)?"
UTTERANCE_PATTERN = DIALOG_PATTERN + r"_[MF][X\d]{2}\d"
DIALOG_RE = re.compile(rf"^{DIALOG_PATTERN}$")
UTTERANCE_RE = re.compile(
    r"^(?P<dialog>Ses0(?P<session>[1-5])(?P<markers>[MF])_(?P<kind>impro|script)\d\d[ab]?(?:_\d[ab]?)?)"
    r"_(?P<turn>(?P<gender>[MF])[X\d]{2}\d)$"
)

def speaker_side(gender: str, markers: str) -> str:
    """The speaker's half of IEMOCAP's split screen: the left half shows the actor wearing the motion-capture
    markers (the dialogue name's M or F), the right half the other actor."""
    return "left" if gender == markers else "right"


LABEL_CODES = ("neu", "hap", "exc", "ang", "sad", "fru", "fea", "sur", "dis", "oth", "xxx")
#: Evaluators' category names as written on C-* lines, per label code.
CATEGORY_NAMES = {
    "neu": "Neutral",
    "hap": "Happiness",
    "exc": "Excited",
    "ang": "Anger",
    "sad": "Sadness",
    "fru": "Frustration",
    "fea": "Fear",
    "sur": "Surprise",
    "dis": "Disgust",
    "oth": "Other",
}
EMO_HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]"

_BLOCK_RE = re.compile(
    r"^\[\s*(?P<start>\d+(?:\.\d+)?)\s*-\s*(?P<end>\d+(?:\.\d+)?)\s*\]\s+(?P<name>\S+)\s+(?P<label>\S+)\s+"
    r"\[\s*(?P<v>-?\d+(?:\.\d+)?)\s*,\s*(?P<a>-?\d+(?:\.\d+)?)\s*,\s*(?P<d>-?\d+(?:\.\d+)?)\s*\]\s*$"
)
_CAT_RE = re.compile(r"^C-(?P<who>[EFM]\d+):\s*(?P<cats>[^()]*?)\s*(?:\((?P<note>.*)\))?\s*$")
_DIM_RE = re.compile(r"^A-(?P<who>[EFM]\d+):\s*val\s+(?P<v>\d+);\s*act\s+(?P<a>\d+);\s*dom\s+(?P<d>\d+);")

SKIPPED_COLUMNS = ["file", "line", "utterance_id", "reason"]


@dataclass
class EmoBlock:
    """One utterance's block of an EmoEvaluation file."""

    utterance_id: str
    start: float
    end: float
    label: str
    valence: float
    activation: float
    dominance: float
    votes: dict[str, list[str]] = field(default_factory=dict)
    self_votes: dict[str, list[str]] = field(default_factory=dict)
    dim_votes: dict[str, list[int]] = field(default_factory=dict)


def parse_emo_evaluation(text: str, source: str) -> tuple[list[EmoBlock], list[dict]]:
    """Parse an EmoEvaluation file into blocks, and problems (file, line, utterance, reason)."""
    blocks: list[EmoBlock] = []
    problems: list[dict] = []
    current: EmoBlock | None = None
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            current = None  # blank lines separate blocks
            continue
        if line.startswith("%"):
            continue
        if line.startswith("["):
            current = None
            block, reason = _parse_block_line(line)
            if block is None:
                problems.append(_problem(source, line_no, _guess_name(line), reason))
            else:
                blocks.append(block)
                current = block
            continue
        if line.startswith("C-") or line.startswith("A-"):
            if current is None:
                continue  # votes of a block already reported as malformed
            reason = _attach_vote(current, line)
            if reason:
                problems.append(_problem(source, line_no, current.utterance_id, reason))
                blocks.remove(current)
                current = None
            continue
        problems.append(_problem(source, line_no, _guess_name(line), f"unrecognised line: {line[:60]!r}"))
    return blocks, problems


def _problem(source: str, line_no: int | None, utterance_id: str, reason: str) -> dict:
    return {"file": source, "line": line_no, "utterance_id": utterance_id, "reason": reason}


def _guess_name(line: str) -> str:
    match = re.search(UTTERANCE_PATTERN, line)
    return match.group(0) if match else ""


def _parse_block_line(line: str) -> tuple[EmoBlock | None, str]:
    match = _BLOCK_RE.match(line)
    if not match:
        return None, f"malformed block line: {line[:80]!r}"
    name, label = match["name"], match["label"]
    if not UTTERANCE_RE.match(name):
        return None, f"utterance name {name!r} does not match the IEMOCAP pattern"
    if label not in LABEL_CODES:
        return None, f"unknown label code {label!r}"
    start, end = float(match["start"]), float(match["end"])
    if not end > start:
        return None, f"end time {end} is not after start time {start}"
    return EmoBlock(name, start, end, label, float(match["v"]), float(match["a"]), float(match["d"])), ""


def _attach_vote(block: EmoBlock, line: str) -> str:
    """Add a C-* or A-* line to its block; return a reason when it is malformed."""
    if line.startswith("C-"):
        match = _CAT_RE.match(line)
        if not match:
            return f"malformed categorical vote: {line[:60]!r}"
        cats = [c.strip() for c in match["cats"].split(";") if c.strip()]
        who = match["who"]
        (block.votes if who.startswith("E") else block.self_votes)[who] = cats
        return ""
    match = _DIM_RE.match(line)
    if not match:
        return f"malformed dimensional vote: {line[:60]!r}"
    block.dim_votes[match["who"]] = [int(match["v"]), int(match["a"]), int(match["d"])]
    return ""


def map_label(label: str, mapping: dict[str, str]) -> str | None:
    """The class of a raw label under a label set (None: not part of the set)."""
    return mapping.get(label)


def _agreement(block: EmoBlock) -> float:
    """Share of external evaluators whose votes include the majority category."""
    name = CATEGORY_NAMES.get(block.label)
    if not block.votes or name is None:
        return 0.0
    return sum(name in cats for cats in block.votes.values()) / len(block.votes)


def _wav_problem(path: Path) -> tuple[str, int, float]:
    """Header check of a sentence wav: (problem or '', sample rate, seconds)."""
    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises several types for corrupt headers
        return f"unreadable wav: {exc}".replace("\n", " "), 0, 0.0
    if info.frames == 0:
        return "empty wav (0 samples)", info.samplerate, 0.0
    return "", info.samplerate, info.frames / info.samplerate


def read_corpus(root: str | Path, mapping: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Index an IEMOCAP_full_release tree: (utterances, skipped)."""
    import pandas as pd

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: corpus root not found (set corpus.root in params.yaml)")
    sessions = sorted(p for p in root.glob("Session[1-5]") if p.is_dir())
    if not sessions:
        raise FileNotFoundError(f"{root}: no Session1..Session5 folders; is this an IEMOCAP_full_release tree?")

    rows: list[dict] = []
    skipped: list[dict] = []
    for session_dir in sessions:
        labelled: dict[str, tuple[EmoBlock, Path]] = {}
        for emo_file in sorted((session_dir / "dialog" / "EmoEvaluation").glob("*.txt")):
            if not DIALOG_RE.match(emo_file.stem):
                continue  # stray files such as ._Ses01F_impro01.txt
            text = emo_file.read_text(encoding="utf-8", errors="replace")
            blocks, problems = parse_emo_evaluation(text, str(emo_file))
            skipped.extend(problems)
            for block in blocks:
                if block.utterance_id in labelled:
                    skipped.append(_problem(str(emo_file), None, block.utterance_id, "duplicate utterance block"))
                else:
                    labelled[block.utterance_id] = (block, emo_file)

        wavs = {
            p.stem: p
            for p in (session_dir / "sentences" / "wav").glob("*/*.wav")
            if UTTERANCE_RE.match(p.stem) and p.parent.name == UTTERANCE_RE.match(p.stem)["dialog"]
        }
        for name in sorted(set(wavs) - set(labelled)):
            skipped.append(_problem(str(wavs[name]), None, name, "wav without a label block"))
        for name, (block, emo_file) in sorted(labelled.items()):
            wav = wavs.get(name)
            if wav is None:
                skipped.append(_problem(str(emo_file), None, name, "label block without a sentence wav"))
                continue
            problem, sample_rate, seconds = _wav_problem(wav)
            if problem:
                skipped.append(_problem(str(wav), None, name, problem))
                continue
            rows.append(_utterance_row(block, wav, sample_rate, seconds, session_dir, mapping))

    utterances = pd.DataFrame(rows, columns=UTTERANCE_COLUMNS)
    return utterances, pd.DataFrame(skipped, columns=SKIPPED_COLUMNS)


UTTERANCE_COLUMNS = [
    "utterance_id", "session", "dialog", "kind", "markers", "gender", "speaker", "turn",
    "start", "end", "duration", "label", "class", "valence", "activation", "dominance",
    "n_evaluators", "agreement", "votes", "self_votes", "dim_votes",
    "wav_path", "wav_sample_rate", "wav_seconds", "avi_path", "has_avi",
]


def _utterance_row(block: EmoBlock, wav: Path, sample_rate: int, seconds: float, session_dir: Path,
                   mapping: dict[str, str]) -> dict:
    name = UTTERANCE_RE.match(block.utterance_id)
    avi = session_dir / "dialog" / "avi" / "DivX" / f"{name['dialog']}.avi"
    return {
        "utterance_id": block.utterance_id,
        "session": int(name["session"]),
        "dialog": name["dialog"],
        "kind": name["kind"],
        "markers": name["markers"],
        "gender": name["gender"],
        "speaker": f"Ses0{name['session']}{name['gender']}",
        "turn": name["turn"],
        "start": block.start,
        "end": block.end,
        "duration": round(block.end - block.start, 4),
        "label": block.label,
        "class": map_label(block.label, mapping),
        "valence": block.valence,
        "activation": block.activation,
        "dominance": block.dominance,
        "n_evaluators": len(block.votes),
        "agreement": _agreement(block),
        "votes": json.dumps(block.votes),
        "self_votes": json.dumps(block.self_votes),
        "dim_votes": json.dumps(block.dim_votes),
        "wav_path": str(wav),
        "wav_sample_rate": sample_rate,
        "wav_seconds": seconds,
        "avi_path": str(avi),
        "has_avi": avi.is_file(),
    }


def corpus_summary(utterances: pd.DataFrame, classes: list[str]) -> dict:
    """Counts per class, session and speaker, and hours of audio: the corpus metrics."""
    labelled = utterances[utterances["class"].notna()]
    return {
        "utterances": int(len(utterances)),
        "labelled": int(len(labelled)),
        "hours": round(float(utterances["wav_seconds"].sum()) / 3600, 4),
        "labelled_hours": round(float(labelled["wav_seconds"].sum()) / 3600, 4),
        "classes": classes,
        "per_class": {c: int((labelled["class"] == c).sum()) for c in classes},
        "per_label": {k: int(v) for k, v in utterances["label"].value_counts().sort_index().items()},
        "per_session": {f"Session{k}": int(v) for k, v in labelled["session"].value_counts().sort_index().items()},
        "per_speaker": {k: int(v) for k, v in labelled["speaker"].value_counts().sort_index().items()},
    }
