"""Typed configurations, written as JSON next to every store and run.

:class:`FeatureConfig` is the single description of how a signal becomes an
image. ``preprocess`` writes it into the store, training copies it into every
run, and ``predict`` rebuilds exactly the same image from it, so there is no
train/serve skew. Defaults live here and nowhere else: the CLI passes only the
options a user actually set.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import typing
from dataclasses import dataclass
from typing import Any, Optional

from .errors import SpectroError

__all__ = ["FeatureConfig", "check_types"]

_WINDOWS = ("hann", "hamming", "blackman", "rectangular")
_FREQ_SCALES = ("linear", "mel", "log")
_CROPS = ("loudest", "center", "start")
_PADS = ("end", "center")
MAX_SAMPLE_RATE = 384_000  # the highest rate of common audio hardware; above it, a typo is likelier than a signal
MAX_IMAGE_PIXELS = 2**25  # 64 MB per float16 image: beyond this, one image no longer fits a training batch


def check_types(obj: Any, *, source: Optional[str] = None) -> None:
    """Check every field of the dataclass instance ``obj`` against its annotation.

    Understands ``int``, ``float`` (an int is accepted; NaN and infinities
    are not), ``bool``, ``str``, ``dict``, ``list``, ``tuple``,
    ``Optional[...]`` and ``Any``; other annotations are not checked. A bool
    is not accepted where a number is expected, though Python would.

    Raises
    ------
    SpectroError
        Naming ``source`` (e.g. the JSON file the values came from), the
        field and the offending value.
    """
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        problem = _type_problem(value, hints.get(f.name, Any))
        if problem:
            where = f"{source}: " if source else ""
            raise SpectroError(f"{where}field {f.name!r} must be {problem}, got {value!r}")


def _type_problem(value: Any, hint: Any) -> Optional[str]:
    """What ``value`` should have been to match ``hint`` (None when it matches)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        problems = [_type_problem(value, a) for a in inner]
        if any(p is None for p in problems):
            return None
        return " or ".join(p for p in problems if p) + (" or null" if type(None) in args else "")
    kind = origin or hint
    if kind is bool:
        return None if isinstance(value, bool) else "true or false"
    if kind is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "an integer"
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "a number"
        return None if math.isfinite(value) else "a finite number"
    if kind in (str, dict, list, tuple):
        return None if isinstance(value, kind) else f"a {kind.__name__}"
    return None  # Any, Literal, classes...: not checked here


@dataclass(frozen=True)
class FeatureConfig:
    """Every parameter that turns a 1-D signal into a spectrogram image.

    Length handling: with ``window`` unset, each clip becomes exactly
    ``duration`` seconds: a longer clip is cropped (``crop``: ``"loudest"``
    keeps the ``duration``-long stretch with the most energy, ``"center"`` the
    middle, ``"start"`` the beginning) and a shorter one is zero-padded
    (``pad``: ``"end"`` appends zeros, ``"center"`` splits them on both sides).
    With ``window`` set, a recording is cut into ``window``-second pieces every
    ``window_hop`` seconds (default: ``window``, no overlap); a final partial
    piece is kept, zero-padded, when it covers at least half a window, and a
    recording shorter than one window gives one padded window.

    Image: ``|STFT|**power`` (``power`` 1 = magnitude, 2 = power) on a
    ``freq_scale`` axis (``linear`` bins, ``mel`` filterbank as librosa's
    Slaney mel, or ``log``: triangular filters on log-spaced centres from
    ``fmin`` (default 32 Hz for ``log``) to ``fmax``), then, with ``db``, the
    decibel transform of :func:`librosa.power_to_db` (``10 log10`` for power,
    ``20 log10`` for magnitude; reference 1.0 so loudness is kept; floor
    ``top_db`` below each image's peak).
    """

    sample_rate: int = 16000
    duration: float = 1.0
    crop: str = "loudest"
    pad: str = "end"
    window: Optional[float] = None
    window_hop: Optional[float] = None
    n_fft: int = 512
    hop_length: int = 160
    win_length: Optional[int] = None
    window_fn: str = "hann"
    center: bool = True
    power: float = 2.0
    db: bool = True
    top_db: Optional[float] = 80.0
    freq_scale: str = "mel"
    n_mels: int = 64
    fmin: Optional[float] = None
    fmax: Optional[float] = None

    def __post_init__(self) -> None:
        def bad(msg: str) -> SpectroError:
            return SpectroError(f"invalid feature setting: {msg}")

        try:
            check_types(self)  # before any comparison: "big" <= 0 would be a TypeError, NaN passes every test
        except SpectroError as err:
            raise bad(str(err)) from None
        if self.sample_rate <= 0:
            raise bad(f"sample_rate must be positive, got {self.sample_rate}")
        if self.sample_rate > MAX_SAMPLE_RATE:
            raise bad(f"sample_rate {self.sample_rate} Hz is above {MAX_SAMPLE_RATE} Hz; is it a typo?")
        if self.duration <= 0:
            raise bad(f"duration must be positive, got {self.duration}")
        if self.window is not None and self.window <= 0:
            raise bad(f"window must be positive, got {self.window}")
        if self.window_hop is not None and (self.window is None or self.window_hop <= 0):
            raise bad("window_hop needs a positive value and --window")
        if self.crop not in _CROPS:
            raise bad(f"crop must be one of {_CROPS}, got {self.crop!r}")
        if self.pad not in _PADS:
            raise bad(f"pad must be one of {_PADS}, got {self.pad!r}")
        if self.n_fft < 16:
            raise bad(f"n_fft must be at least 16, got {self.n_fft}")
        if self.hop_length <= 0:
            raise bad(f"hop_length must be positive, got {self.hop_length}")
        if self.win_length is not None and not 0 < self.win_length <= self.n_fft:
            raise bad(f"win_length must be in (0, n_fft={self.n_fft}], got {self.win_length}")
        if self.window_fn not in _WINDOWS:
            raise bad(f"window function must be one of {_WINDOWS}, got {self.window_fn!r}")
        if self.power not in (1.0, 2.0):
            raise bad(f"power must be 1 (magnitude) or 2 (power), got {self.power}")
        if self.top_db is not None and self.top_db <= 0:
            raise bad(f"top_db must be positive, got {self.top_db}")
        if self.freq_scale not in _FREQ_SCALES:
            raise bad(f"freq_scale must be one of {_FREQ_SCALES}, got {self.freq_scale!r}")
        if self.freq_scale != "linear" and self.n_mels < 2:
            raise bad(f"n_mels must be at least 2, got {self.n_mels}")
        nyquist = self.sample_rate / 2
        if self.f_low < 0 or self.f_high > nyquist or self.f_low >= self.f_high:
            raise bad(
                f"need 0 <= fmin < fmax <= {nyquist:g} Hz (Nyquist), "
                f"got fmin={self.f_low:g}, fmax={self.f_high:g}"
            )
        if self.segment_seconds * self.sample_rate < self.n_fft:
            raise bad(
                f"a {self.segment_seconds:g} s segment is shorter than one STFT frame "
                f"(n_fft={self.n_fft} samples at {self.sample_rate} Hz)"
            )
        if self.n_freq * self.n_frames > MAX_IMAGE_PIXELS:
            raise bad(
                f"one image would be {self.n_freq} x {self.n_frames} pixels "
                f"({self.n_freq * self.n_frames * 2 / 2**20:.0f} MB in float16), more than "
                f"{MAX_IMAGE_PIXELS * 2 // 2**20} MB; use a shorter duration, a larger hop_length or fewer bands"
            )

    # -- derived quantities ------------------------------------------------
    @property
    def f_low(self) -> float:
        """Lowest filter edge in Hz (``fmin``, or 32 Hz on the log scale)."""
        if self.fmin is not None:
            return float(self.fmin)
        return 32.0 if self.freq_scale == "log" else 0.0

    @property
    def f_high(self) -> float:
        """Highest filter edge in Hz (``fmax``, or Nyquist)."""
        return float(self.fmax) if self.fmax is not None else self.sample_rate / 2

    @property
    def segment_seconds(self) -> float:
        """Length in seconds of the signal behind one image."""
        return self.window if self.window is not None else self.duration

    @property
    def segment_samples(self) -> int:
        """Length in samples of the signal behind one image."""
        return int(round(self.segment_seconds * self.sample_rate))

    @property
    def n_freq(self) -> int:
        """Number of frequency rows F of an image."""
        return self.n_fft // 2 + 1 if self.freq_scale == "linear" else self.n_mels

    @property
    def n_frames(self) -> int:
        """Number of time columns T of an image."""
        n = self.segment_samples
        if self.center:
            return 1 + n // self.hop_length
        return 1 + (n - self.n_fft) // self.hop_length

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """Shape ``(1, F, T)`` of one image."""
        return (1, self.n_freq, self.n_frames)

    # -- (de)serialisation -------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: Optional[str] = None) -> "FeatureConfig":
        """Rebuild a config from :meth:`to_dict`; ``source`` (a file name) is named in any error."""
        where = f"{source}: " if source else ""
        if not isinstance(d, dict):
            raise SpectroError(f"{where}feature settings must be a JSON object, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise SpectroError(f"{where}unknown feature settings: {sorted(unknown)}")
        try:
            return cls(**d)
        except SpectroError as err:
            raise SpectroError(f"{where}{err}") from None

    def replace(self, **changes: Any) -> "FeatureConfig":
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def fingerprint(self) -> str:
        """A short hash of every setting: equal configs give equal images."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]
