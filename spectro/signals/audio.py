"""Signals in: decode, downmix, resample, and cut to fixed-length segments.

Every function here is pure numpy (no torch), so it runs cheaply inside the
decoding worker processes. A file that cannot become a signal raises
:class:`BadInput` with a short reason; the caller records it in errors.csv
and goes on.
"""

from __future__ import annotations

import os
import re
import stat
import struct
from typing import Optional

import numpy as np
import soundfile as sf
import soxr

from spectro.config import FeatureConfig
from spectro.errors import BadInput, first_line
from spectro.signals.matfiles import MAT_EXTENSIONS
from spectro.signals.tables import TABLE_EXTENSIONS

__all__ = [
    "AUDIO_EXTENSIONS",
    "ARRAY_EXTENSIONS",
    "RATELESS_EXTENSIONS",
    "is_vector",
    "BadInput",
    "load_audio",
    "not_regular",
    "check_signal",
    "fix_length",
    "segments",
    "window_starts",
    "window_bounds",
    "cut_windows",
]

AUDIO_EXTENSIONS = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".snd", ".w64", ".caf"}
)
ARRAY_EXTENSIONS = frozenset({".npy", ".npz"})
#: Files of samples that carry no sample rate: the user gives it (--sample-rate, or a manifest's rate column).
RATELESS_EXTENSIONS = ARRAY_EXTENSIONS | MAT_EXTENSIONS | TABLE_EXTENSIONS


def not_regular(path: str) -> Optional[str]:
    """Why ``path`` is not read (a FIFO, a device, a socket, a directory), or None for a regular file.

    Opening a FIFO waits for a writer that may never come, and a device
    may stream for ever: only regular files (or links to them) are read.
    A path that cannot be looked at is None here; reading it then says why.
    """
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _SPECIAL_KINDS if test(mode)), "a special file")
    return f"not a regular file ({kind}); only regular files are read"


_SPECIAL_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                  (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))


def load_audio(path: str, *, sample_rate: int) -> np.ndarray:
    """Decode an audio file to mono float32 at ``sample_rate``.

    Parameters
    ----------
    path : str
        Any format libsndfile reads (WAV, FLAC, OGG/Vorbis/Opus, MP3, AIFF...),
        any channel count, any sample format.
    sample_rate : int
        Target rate; the file is resampled with soxr's high-quality filter
        (what ``librosa.load`` uses by default).

    Returns
    -------
    y : np.ndarray [shape=(n,), dtype=float32]

    Raises
    ------
    BadInput
        Empty, truncated or undecodable files. A file holding fewer frames
        than its header announces is ``truncated`` (libsndfile would
        quietly return the frames present, and the clip would be padded).
    """
    try:
        if os.path.getsize(path) == 0:
            raise BadInput("empty file (0 bytes)")
        # The OS's own bytes: soundfile encodes a str path as strict UTF-8, which
        # fails on a file name that is not UTF-8 (held as lone surrogates).
        with sf.SoundFile(os.fsencode(path)) as f:
            announced = f.frames
            data = f.read(dtype="float32", always_2d=True)
            sr = f.samplerate
        # libsndfile trims a WAV/AIFF's frame count to the bytes present, so
        # read what the header itself says.
        announced = max(announced, header_frames(path) or 0)
    except BadInput:
        raise
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as err:
        raise BadInput(f"cannot decode: {decoder_reason(err)[:200]}") from None
    except OSError as err:
        raise BadInput(f"cannot read: {err.strerror or first_line(err)[:200]}") from None
    if data.size == 0:
        raise BadInput("no samples")
    if data.shape[0] < announced:
        raise BadInput(f"truncated: the header announces {announced} frames, the file holds {data.shape[0]}")
    y = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]  # (n,) mono
    return resample(y, orig_sr=sr, target_sr=sample_rate)


def decoder_reason(err: BaseException) -> str:
    """libsndfile's reason alone ("Format not recognised"), without its "Error opening b'PATH': " (a bytes
    repr of the path, which errors.csv and predict name beside the reason anyway)."""
    reason = getattr(err, "error_string", None) or first_line(err)
    return re.sub(r"^Error opening b?(['\"]).*?\1: ", "", str(reason)).strip() or type(err).__name__


def header_frames(path: str) -> Optional[int]:
    """Frames announced by a WAV (RIFF) or AIFF header, or None for other formats.

    WAV: the ``data`` chunk's byte size over the ``fmt `` block size; AIFF:
    ``numSampleFrames`` of the ``COMM`` chunk. A size of 0 or 0xFFFFFFFF
    (written by a recorder that never finished the header, or RF64) tells
    nothing and gives None.
    """
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12:
            return None
        if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
            order = "<"
        elif head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
            order = ">"
        else:
            return None
        block = None
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            cid, size = chunk[:4], struct.unpack(order + "I", chunk[4:])[0]
            if order == ">" and cid == b"COMM":
                body = f.read(6)
                return struct.unpack(">I", body[2:6])[0] if len(body) == 6 else None
            if cid == b"fmt ":
                body = f.read(min(size, 16))
                block = struct.unpack("<H", body[12:14])[0] if len(body) >= 14 else None
                f.seek(size - len(body) + (size & 1), os.SEEK_CUR)
                continue
            if cid == b"data":
                if not block or size in (0, 0xFFFFFFFF):
                    return None
                return size // block
            f.seek(size + (size & 1), os.SEEK_CUR)  # chunks are padded to an even size


def resample(y: np.ndarray, *, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample a 1-D float signal with soxr (high quality); no-op at equal rates."""
    if orig_sr == target_sr:
        return np.ascontiguousarray(y, dtype=np.float32)
    return soxr.resample(y, orig_sr, target_sr, quality="HQ").astype(np.float32, copy=False)


def check_signal(y: np.ndarray, *, min_samples: int) -> np.ndarray:
    """Validate a decoded signal, returning it as contiguous float32.

    Rejects NaN/Inf samples, signals shorter than ``min_samples`` (one STFT
    frame) and all-zero (silent) signals: a silent file is almost always a
    failed recording, and its image would be a constant floor that teaches a
    classifier nothing but the label's prior.
    """
    y = np.ascontiguousarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise BadInput(f"expected a 1-D signal, got shape {y.shape}")
    if not np.isfinite(y).all():
        raise BadInput("NaN or Inf samples")
    if y.shape[0] < min_samples:
        raise BadInput(f"too short: {y.shape[0]} samples, fewer than one STFT frame ({min_samples})")
    if not np.any(y):
        raise BadInput("silent (all samples are zero)")
    return y


def fix_length(y: np.ndarray, *, length: int, crop: str = "loudest", pad: str = "end") -> np.ndarray:
    """Crop or zero-pad ``y`` to exactly ``length`` samples.

    ``crop``: ``"loudest"`` keeps the window with the most energy (found with a
    cumulative sum, O(n)), ``"center"`` the middle, ``"start"`` the beginning.
    ``pad``: ``"end"`` appends zeros, ``"center"`` splits them on both sides.
    """
    n = y.shape[0]
    if n > length:
        start = _crop_start(y, length, crop)
        return y[start : start + length]
    if n < length:
        before = (length - n) // 2 if pad == "center" else 0
        return np.pad(y, (before, length - n - before))
    return y


def segments(y: np.ndarray, cfg: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """Cut one signal into the fixed-length segments behind its images.

    Returns
    -------
    segs : np.ndarray [shape=(k, cfg.segment_samples), dtype=float32]
    bounds : np.ndarray [shape=(k, 2), dtype=float64]
        Start and end of each segment in seconds of the (resampled) signal.
    """
    sr, length = cfg.sample_rate, cfg.segment_samples
    if cfg.window is None:
        seg = fix_length(y, length=length, crop=cfg.crop, pad=cfg.pad)
        start = _crop_start(y, length, cfg.crop)
        return seg[None, :], np.array([[start / sr, min(start + length, y.shape[0]) / sr]])
    starts = window_starts(y.shape[0], cfg)
    return cut_windows(y, starts, length), window_bounds(y.shape[0], starts, cfg)


def window_starts(n: int, cfg: FeatureConfig) -> np.ndarray:
    """First sample of each window of a signal of ``n`` samples [shape=(k,), dtype=int64] (``cfg.window`` set).

    Every ``window_hop`` seconds a window starts while it fits whole; a final
    partial window is kept when at least half full; a signal shorter than one
    window gives one (padded) window.
    """
    length = cfg.segment_samples
    hop = int(round((cfg.window_hop or cfg.window) * cfg.sample_rate))
    if hop < 1:
        raise BadInput(f"window hop {cfg.window_hop or cfg.window:g} s is less than one sample at {cfg.sample_rate} Hz")
    starts = np.arange(0, max(n - length, 0) + 1, hop, dtype=np.int64)
    nxt = int(starts[-1]) + hop
    if n > starts[-1] + length and n - nxt >= length / 2:
        starts = np.append(starts, nxt)  # a final partial window, kept when at least half full
    return starts


def window_bounds(n: int, starts: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Start and end in seconds of the windows at ``starts`` of a signal of ``n`` samples [shape=(k, 2)]."""
    sr = cfg.sample_rate
    return np.stack([starts / sr, np.minimum(starts + cfg.segment_samples, n) / sr], axis=1)


def cut_windows(y: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """The windows of ``y`` at ``starts``, zero-padded past its end [shape=(len(starts), length), dtype=float32].

    Only these windows are copied, so a long recording can be cut a block of
    windows at a time.
    """
    segs = np.zeros((len(starts), length), dtype=np.float32)
    for i, s in enumerate(starts):
        piece = y[s : s + length]
        segs[i, : piece.shape[0]] = piece
    return segs


def _crop_start(y: np.ndarray, length: int, crop: str) -> int:
    """Start (in samples) of the ``length``-long stretch that ``crop`` keeps."""
    n = y.shape[0]
    if n <= length or crop == "start":
        return 0
    if crop == "center":
        return (n - length) // 2
    energy = np.concatenate(([0.0], np.cumsum(y.astype(np.float64) ** 2)))  # (n + 1,)
    return int(np.argmax(energy[length:] - energy[:-length]))


def is_vector(shape: tuple[int, ...]) -> bool:
    """One signal: one dimension longer than 1, the others 1 (``(n,)``, ``(n, 1)`` as loadmat gives, ``(1, n)``)."""
    return sum(d > 1 for d in shape) == 1


def load_array_signal(arr: np.ndarray, *, what: Optional[str] = None) -> np.ndarray:
    """Validate a 1-D numeric array (or a column or row vector) from a .npy/.npz file as a float32 signal."""
    if arr.dtype.kind not in "fiub":
        raise BadInput(f"array{' ' + what if what else ''} has non-numeric dtype {arr.dtype}")
    if not is_vector(arr.shape):
        shape = "x".join(map(str, arr.shape)) or "scalar"
        raise BadInput(f"array{' ' + what if what else ''} is not a 1-D signal (shape {shape})")
    return np.asarray(arr).reshape(-1).astype(np.float32)
