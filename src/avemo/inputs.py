"""What a request may carry, read safely: bytes in the request; local paths only where allowed.

A served model reads only what the request carries: a wav's bytes (`audio_b64`) and, for
fusion, a video clip's bytes (`video_b64`). Paths (`audio_path`, `video_path`) are for the CLI
and batch scoring (`Files(local=True)`); a server honours them only under the one folder its
operator names in AVEMO_SERVE_ROOT: resolved (no `..` or symlink out of it), regular files only
(no device, FIFO or /proc file), and one message for every refusal (missing, outside, a
device...), so that a client cannot probe which files exist. A video must be an AVI, MP4/MOV or
Matroska file: FFmpeg follows URLs found inside other formats (an HLS playlist), which would let
a client make the server send requests. Video bytes are decoded from a private temporary file.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from avemo.video.frames import container

ROOT_ENV = "AVEMO_SERVE_ROOT"
#: A minute of 16 kHz 16-bit mono is 1.9 MB; a bound keeps one request from filling the memory.
MAX_AUDIO_BYTES = 64 << 20
MAX_VIDEO_BYTES = 256 << 20  # an utterance's clip is a few MB; a whole IEMOCAP dialogue fits
#: Pseudo-files (devices, kernel tables) are never read, even under an allowed folder.
PSEUDO_FILESYSTEMS = (Path("/proc"), Path("/sys"), Path("/dev"))


class InputError(ValueError):
    """An input the model cannot answer for; the message names the input and the problem."""


@dataclass(frozen=True)
class Files:
    """Which local files rows may name: any regular file (`local`: the CLI, batch scoring), those
    under `root` (a server whose operator allowed one folder), or none (a server, by default)."""

    root: Path | None = None
    local: bool = False

    @classmethod
    def from_env(cls) -> Files:
        """A server's: none, or those under AVEMO_SERVE_ROOT, which must name a folder."""
        value = os.environ.get(ROOT_ENV, "")
        if not value:
            return cls()
        root = Path(value).resolve()
        if not root.is_dir():
            raise ValueError(f"{ROOT_ENV}={value}: not a folder")
        return cls(root=root)

    def label(self, field: str, k: int, given: str) -> str:
        """How messages name a path input: the path itself locally, the field and row on a server."""
        return given if self.local else f"{field} (row {k})"

    @contextmanager
    def open(self, given: str, label: str) -> Iterator[tuple[int, str]]:
        """(a read-only descriptor, a path naming that very file) of the regular file `given` names, if allowed.

        The path is /proc/self/fd/N where there is one: whoever opens it again (FFmpeg) gets the file
        checked here even if the name was swapped for a link in between.
        """
        path = self._resolve(given, label)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if self.local else os.O_NOFOLLOW))
        except (OSError, ValueError) as exc:
            raise self._refusal(label, getattr(exc, "strerror", None) or str(exc)) from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise self._refusal(label, "not a regular file")
            yield fd, f"/proc/self/fd/{fd}" if Path("/proc/self/fd").is_dir() else str(path)
        finally:
            os.close(fd)

    def _resolve(self, given: str, label: str) -> Path:
        if self.local:
            return Path(given)
        if self.root is None:
            raise InputError(f"{label}: this server reads no files: send the bytes, base64-encoded (audio_b64, "
                             f"video_b64); an operator can allow one folder with {ROOT_ENV}")
        try:
            path = (self.root / given).resolve(strict=True)  # an absolute `given` replaces the root
        except (OSError, RuntimeError, ValueError):
            raise self._refusal(label, "") from None
        if not path.is_relative_to(self.root) or any(path.is_relative_to(p) for p in PSEUDO_FILESYSTEMS):
            raise self._refusal(label, "")
        return path

    def _refusal(self, label: str, reason: str) -> InputError:
        if self.local:
            return InputError(f"{label}: {reason[:1].lower()}{reason[1:]}")
        return InputError(f"{label}: not a readable file under the served folder")


def given(value) -> bool:
    """Whether a field holds a value (a table's missing cells are None or NaN)."""
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def audio_bytes(row: dict, k: int, files: Files) -> tuple[str, bytes]:
    """(a label for messages, the wav's bytes) of row `k`."""
    if given(row.get("audio_b64")) and given(row.get("audio_path")):
        raise InputError(f"row {k}: give audio_b64 or audio_path, not both")
    if given(row.get("audio_b64")):
        label = f"audio_b64 (row {k})"
        return label, _decode(row["audio_b64"], label, "audio", MAX_AUDIO_BYTES)
    if given(row.get("audio_path")):
        label = files.label("audio_path", k, str(row["audio_path"]))
        with files.open(str(row["audio_path"]), label) as (fd, _):
            if os.fstat(fd).st_size > MAX_AUDIO_BYTES:
                raise InputError(f"{label}: larger than {MAX_AUDIO_BYTES >> 20} MiB")
            with os.fdopen(os.dup(fd), "rb") as f:
                return label, f.read()
    raise InputError(f"audio_b64 (row {k}): missing: each row needs a wav's bytes, base64-encoded")


@contextmanager
def video_file(row: dict, k: int, files: Files) -> Iterator[tuple[str, str]]:
    """(a label for messages, a path FFmpeg may open) of row `k`'s video, checked to be AVI, MP4/MOV or
    Matroska. Bytes go to a private temporary file (mode 0600), removed afterwards."""
    if given(row.get("video_b64")) and given(row.get("video_path")):
        raise InputError(f"row {k}: give video_b64 or video_path, not both")
    if given(row.get("video_b64")):
        label = f"video_b64 (row {k})"
        data = _decode(row["video_b64"], label, "video", MAX_VIDEO_BYTES)
        _check_container(data[:12], label)
        fd, path = tempfile.mkstemp(prefix="avemo-video-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            yield label, path
        finally:
            os.unlink(path)
    elif given(row.get("video_path")):
        label = files.label("video_path", k, str(row["video_path"]))
        with files.open(str(row["video_path"]), label) as (fd, path):
            _check_container(os.pread(fd, 12, 0), label)
            yield label, path
    else:
        raise InputError(f"video_b64 (row {k}): missing: this fusion model also needs the utterance's video "
                         "clip, base64-encoded (AVI, MP4/MOV or Matroska)")


#: Without a window the video must be the utterance's own clip: at most this much longer than its audio.
WHOLE_CLIP_SLACK = 1.0


def window(row: dict, k: int) -> tuple[float | None, float | None]:
    """(start or None for the video's start, end or None for its end) of row `k`, in seconds within its video."""
    start, end = (_seconds(row.get(f), f"{f} (row {k})") for f in ("start", "end"))
    return start, end


def check_window(start: float | None, end: float | None, audio_seconds: float, video_seconds: float | None,
                 fps: float, label: str) -> None:
    """The window must lie in the video and hold the audio (to a frame: the two are cut separately). With no
    window at all, the video must be the utterance's own clip: a dialogue's video would be scored from its
    first frame, whoever speaks there."""
    if start is None and end is None and video_seconds and video_seconds > audio_seconds + WHOLE_CLIP_SLACK:
        raise InputError(f"{label}: no window given, and the video lasts {video_seconds:.2f} s for "
                         f"{audio_seconds:.2f} s of audio: give the utterance's window in it (avemo predict "
                         "--start/--end; a request's start/end, seconds), or send the utterance's own clip")
    start = start or 0.0
    end = video_seconds if end is None else end
    length = f"the video lasts {video_seconds:.2f} s" if video_seconds else "the video's length is unknown"
    slack = 1 / fps
    problem = ("starts before the video" if start < 0 else
               "ends before it starts" if end is not None and end <= start else
               "ends past the video" if video_seconds and end > video_seconds + slack else
               f"is shorter than the audio ({audio_seconds:.2f} s)" if end is not None and
               start + audio_seconds > end + slack else "")
    if problem:
        shown = f"{start:.2f}-{end:.2f} s" if end is not None else f"from {start:.2f} s"
        raise InputError(f"{label}: window {shown} {problem} ({length})")


def side(row: dict, k: int) -> str:
    """The speaker's half of the split screen: `left` shows the actor wearing the motion-capture markers."""
    value = row.get("side")
    if not given(value):
        raise InputError(f"side (row {k}): missing: 'left' or 'right', the speaker's half of the frame (left: "
                         "the actor wearing the motion-capture markers)")
    if value not in ("left", "right"):
        raise InputError(f"side (row {k}): {str(value)[:40]!r}: must be 'left' or 'right'")
    return value


def _decode(value, label: str, what: str, limit: int) -> bytes:
    text = str(value)
    if len(text) > limit // 3 * 4 + 4:
        raise InputError(f"{label}: larger than {limit >> 20} MiB")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"{label}: not base64-encoded bytes") from None
    if not data:
        raise InputError(f"{label}: empty {what}")
    return data


def _check_container(head: bytes, label: str) -> None:
    if container(head) is None:
        raise InputError(f"{label}: not an AVI, MP4/MOV or Matroska video")


def _seconds(value, label: str) -> float | None:
    if not given(value):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{label}: {str(value)[:40]!r} is not a number of seconds") from None
    if not math.isfinite(seconds):
        raise InputError(f"{label}: {seconds} is not a number of seconds")
    return seconds
