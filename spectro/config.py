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
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional

from spectro.errors import SpectroError

__all__ = ["FeatureConfig", "TrainConfig", "WINDOWS", "FREQ_SCALES", "COMPRESSIONS", "CROPS", "PADS", "OPTIMIZERS",
           "SCHEDULES", "DEVICES", "OPTIMIZER_DEFAULTS", "TIME_SHIFT_FRACTION", "NET_ONLY_FIELDS", "RUNTIME_FIELDS",
           "check_types", "MAX_SAMPLE_RATE", "MAX_IMAGE_PIXELS", "VAL_FRACTION", "MIN_HOLDOUT", "INFERRED_MAX_RATE",
           "INFERRED_MAX_DURATION", "INFERRED_WINDOW_SECONDS", "INFERRED_HOP_SECONDS", "FOLDS", "SEED",
           "STFT_DEVICE", "PATH_COLUMN", "LABEL_COLUMN", "EXAMPLES_PER_CLASS", "EVAL_SPLITS", "INPUTS", "COLORMAPS",
           "CHANNELS", "IMAGE_RESIZE", "IMAGE_FIELDS"]

#: What a store's images come from: signals through the STFT, or images made elsewhere (pictures, 2-D arrays).
INPUTS = ("signal", "image")
#: Colormaps a colormapped picture can be inverted through (matplotlib's 256-entry tables).
COLORMAPS = ("viridis", "magma", "inferno", "plasma", "jet", "gray")
#: How several columns of a CSV/TSV file of samples become one signal (or a column's name).
CHANNELS = ("mean", "first")
#: How pictures of another size are resized to ``image_size`` (PIL's filter, on the inverted intensities).
IMAGE_RESIZE = "bilinear"
WINDOWS = ("hann", "hamming", "blackman", "rectangular")
FREQ_SCALES = ("linear", "mel", "log")
#: How an image's levels are compressed: decibels, or per-channel energy normalisation.
COMPRESSIONS = ("db", "pcen")
CROPS = ("loudest", "center", "start")
PADS = ("end", "center")
OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "onecycle", "step")
DEVICES = ("auto", "cuda", "mps", "cpu")
#: Defaults that depend on the optimizer: (learning rate, weight decay).
OPTIMIZER_DEFAULTS = {"sgd": (0.05, 5e-4), "adamw": (1e-3, 0.05)}
#: ``--time-shift`` given without a value: shift by up to this fraction of the width.
TIME_SHIFT_FRACTION = 0.1
#: ``--gain-eq`` given without a value: random gain and EQ of up to this many dB.
GAIN_EQ_DB = 6.0
MAX_SAMPLE_RATE = 384_000  # the highest rate of common audio hardware; above it, a typo is likelier than a signal
MAX_IMAGE_PIXELS = 2**25  # 64 MB per float16 image: beyond this, one image no longer fits a training batch
#: Default share of the training groups held out for validation (one of 8 group folds).
VAL_FRACTION = 0.125
#: A hold-out smaller than this many clips picks no epoch: validation is then skipped, every training
#: row trains and the last epoch is kept. On the Hedgewars voices (README, "Accuracy") a 15-20 clip
#: hold-out chose an early, noisy "best" epoch: ResNet-18 .393 with it, .536 without, on the same folds.
MIN_HOLDOUT = 100

# -- Feature settings read from the data (spectro.signals.defaults) when not given --------------
#: The sources' most common rate, capped here (8 kHz speech stays 8 kHz: never upsampled).
INFERRED_MAX_RATE = 16000
#: The 95th percentile of the clip lengths, capped here.
INFERRED_MAX_DURATION = 10.0
#: n_fft about this long at the rate, rounded to a power of two; the hop this long.
INFERRED_WINDOW_SECONDS = 0.032
INFERRED_HOP_SECONDS = 0.010

# -- Defaults of the API functions (the command line shows them in its help; one home each) -----
#: Folds ``preprocess`` assigns when the source gives none, and the seed that shuffles them.
FOLDS = 5
SEED = 0
#: Where ``preprocess`` computes the STFTs.
STFT_DEVICE = "cpu"
#: Columns of a manifest CSV that name each file and its label.
PATH_COLUMN = "path"
LABEL_COLUMN = "label"
#: Example images per class drawn by ``show_examples`` (``spectro show``, ``preprocess --png``).
EXAMPLES_PER_CLASS = 3
#: What ``evaluate`` can score: a run's own splits, or every row of a store.
EVAL_SPLITS = ("test", "val", "train", "all")


class _Config:
    """What both configs share: JSON-ready dicts, strict loading, validated copies."""

    #: Fields added after stores, runs and stamps were first written, with the value they had before (their
    #: "off"): at that value :meth:`identity` leaves a field out, so what was written before it existed keeps
    #: its fingerprint, name or stamp, and turning it on changes them.
    ADDED: ClassVar[dict[str, Any]] = {}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def identity(self) -> dict[str, Any]:
        """:meth:`to_dict` without the :attr:`ADDED` fields that are at their former value: what to hash."""
        return {k: v for k, v in self.to_dict().items() if k not in self.ADDED or v != self.ADDED[k]}

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: str = "") -> Any:
        """Rebuild from :meth:`to_dict`'s output; unknown fields are an error naming ``source``."""
        where = f"{source}: " if source else ""
        if not isinstance(d, dict):
            raise SpectroError(f"{where}expected a JSON object of {cls.__name__} fields, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise SpectroError(f"{where}unknown {cls._what} settings: {sorted(unknown)}")
        try:
            return cls(**d)
        except SpectroError as err:
            if not source:
                raise
            raise SpectroError(f"{where}{err}") from None
        except (TypeError, ValueError) as err:  # a hand-edited file: "ten" where a number belongs
            raise SpectroError(f"{where}bad {cls._what} settings ({err})") from None

    def replace(self, **changes: Any) -> Any:
        """A copy with ``changes`` applied (validated again); an unknown field is a SpectroError."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise SpectroError(f"unknown {self._what} setting(s): {sorted(unknown)}")
        return dataclasses.replace(self, **changes)


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


#: The FeatureConfig fields of a store of images made elsewhere (all that its config.json records).
IMAGE_FIELDS = ("input", "colormap", "crop_box", "image_size", "resize")


@dataclass(frozen=True)
class FeatureConfig(_Config):
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

    ``compression``: ``"db"`` (the default) is the decibel transform above;
    ``"pcen"`` replaces it by per-channel energy normalisation
    (:func:`spectro.signals.features.pcen`: :func:`librosa.pcen` with its
    default parameters on the power spectrogram scaled by ``2**31``), an
    adaptive gain per band that makes the images far less sensitive to the
    recording's gain. PCEN needs ``power=2``; ``db`` must stay ``True`` (its
    default: ``db=False`` asks for linear units, a contradiction) and
    ``top_db`` is ignored.

    Files that carry no rate (``.npy``/``.npz``, MATLAB ``.mat``, CSV/TSV)
    hold samples at ``sample_rate`` (or at a manifest's per-file rate).
    ``mat_key``: a regular expression picking the signal among a ``.mat``'s
    arrays (None: its one 1-D numeric array); ``column``: the CSV/TSV column
    of samples (a name or a 0-based index); ``channels``: what several
    columns become without ``column``: ``"mean"``, ``"first"`` or a column's
    name (see :mod:`spectro.signals.matfiles` and :mod:`spectro.signals.tables`).

    ``input="image"``: the images were made elsewhere (pictures or 2-D
    arrays, :mod:`spectro.signals.pictures`) and no STFT field applies (none
    is written to config.json). ``colormap``: the colormap the pictures were
    drawn with, inverted to intensity (``"gray"``: grey levels);
    ``crop_box``: ``(left, top, right, bottom)`` pixels kept of each picture
    (axes, ticks and colour bars cut away); ``image_size``: ``(F, T)`` of
    every image; ``resize``: pictures of another size are resized to it
    (:data:`IMAGE_RESIZE` interpolation) instead of refused.
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
    compression: str = "db"
    # -- how a file becomes a signal (files that carry no rate: .npy/.npz, .mat, CSV/TSV) --
    mat_key: Optional[str] = None
    column: Optional[str] = None
    channels: str = "mean"
    # -- images made elsewhere (input "image": no STFT; the fields above do not apply) --
    input: str = "signal"
    colormap: Optional[str] = None
    crop_box: Optional[tuple] = None
    image_size: Optional[tuple] = None
    resize: bool = False

    _what: ClassVar[str] = "feature"
    #: Fields that ``preprocess`` reads from the data when they are not given (see :mod:`spectro.signals.defaults`).
    INFERABLE: ClassVar[tuple[str, ...]] = ("sample_rate", "n_fft", "hop_length", "duration")
    #: Allowed values of the fields that take a name (the CLI's choices).
    CHOICES: ClassVar[dict[str, tuple]] = {"crop": CROPS, "pad": PADS, "window_fn": WINDOWS,
                                           "freq_scale": FREQ_SCALES, "compression": COMPRESSIONS}
    ADDED: ClassVar[dict[str, Any]] = {"compression": "db", "mat_key": None, "column": None, "channels": "mean",
                                       "input": "signal", "colormap": None, "crop_box": None, "image_size": None,
                                       "resize": False}

    def __post_init__(self) -> None:
        def bad(msg: str) -> SpectroError:
            return SpectroError(f"invalid feature setting: {msg}")

        for name in ("crop_box", "image_size"):  # JSON gives lists; a frozen config must hash
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        try:
            check_types(self)  # before any comparison: "big" <= 0 would be a TypeError, NaN passes every test
        except SpectroError as err:
            raise bad(str(err)) from None
        if self.input not in INPUTS:
            raise bad(f"input must be one of {INPUTS}, got {self.input!r}")
        if self.colormap is not None and self.colormap not in COLORMAPS:
            raise bad(f"colormap must be one of {', '.join(COLORMAPS)}, got {self.colormap!r}")
        if self.crop_box is not None and (len(self.crop_box) != 4 or not all(
                isinstance(v, int) and v >= 0 for v in self.crop_box)
                or self.crop_box[0] >= self.crop_box[2] or self.crop_box[1] >= self.crop_box[3]):
            raise bad(f"crop box must be LEFT,TOP,RIGHT,BOTTOM pixels with LEFT < RIGHT and TOP < BOTTOM, "
                      f"got {self.crop_box}")
        if self.image_size is not None and (len(self.image_size) != 2 or not all(
                isinstance(v, int) and v >= 2 for v in self.image_size)):
            raise bad(f"image size must be FxT, two sizes of 2 pixels or more, got {self.image_size}")
        if self.resize and self.image_size is None:
            raise bad("resize needs an image size (--image-size FxT)")
        if self.input == "image":
            if self.image_size is not None and self.image_size[0] * self.image_size[1] > MAX_IMAGE_PIXELS:
                raise bad(f"images of {self.image_size[0]} x {self.image_size[1]} pixels are too large")
            return  # no STFT: its settings stay at their defaults, unused
        if self.sample_rate <= 0:
            raise bad(f"sample_rate must be positive, got {self.sample_rate}")
        if self.sample_rate > MAX_SAMPLE_RATE:
            raise bad(f"sample_rate {self.sample_rate} Hz is above {MAX_SAMPLE_RATE} Hz; is it a typo?")
        if self.duration <= 0:
            raise bad(f"duration must be positive, got {self.duration}")
        if self.window is not None and self.window <= 0:
            raise bad(f"window must be positive, got {self.window}")
        if self.window_hop is not None and (self.window is None or self.window_hop <= 0):
            raise bad("window_hop needs a positive value and a window")
        if self.crop not in CROPS:
            raise bad(f"crop must be one of {CROPS}, got {self.crop!r}")
        if self.pad not in PADS:
            raise bad(f"pad must be one of {PADS}, got {self.pad!r}")
        if self.n_fft < 16:
            raise bad(f"n_fft must be at least 16, got {self.n_fft}")
        if self.hop_length <= 0:
            raise bad(f"hop_length must be positive, got {self.hop_length}")
        if self.win_length is not None and not 0 < self.win_length <= self.n_fft:
            raise bad(f"win_length must be in (0, n_fft={self.n_fft}], got {self.win_length}")
        if self.window_fn not in WINDOWS:
            raise bad(f"window function must be one of {WINDOWS}, got {self.window_fn!r}")
        if self.power not in (1.0, 2.0):
            raise bad(f"power must be 1 (magnitude) or 2 (power), got {self.power}")
        if self.top_db is not None and self.top_db <= 0:
            raise bad(f"top_db must be positive, got {self.top_db}")
        if self.freq_scale not in FREQ_SCALES:
            raise bad(f"freq_scale must be one of {FREQ_SCALES}, got {self.freq_scale!r}")
        if self.compression not in COMPRESSIONS:
            raise bad(f"compression must be one of {COMPRESSIONS}, got {self.compression!r}")
        if self.compression == "pcen" and self.power != 2.0:
            raise bad(f"compression 'pcen' needs power 2 (a power spectrogram), got {self.power}")
        if self.compression == "pcen" and not self.db:
            raise bad("compression 'pcen' replaces decibels: it cannot be combined with db=False")
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
    def is_image(self) -> bool:
        """Whether the images were made elsewhere (pictures, 2-D arrays): no Hz, no seconds, no STFT."""
        return self.input == "image"

    @property
    def n_freq(self) -> int:
        """Number of frequency rows F of an image."""
        if self.is_image:
            return self._size()[0]
        return self.n_fft // 2 + 1 if self.freq_scale == "linear" else self.n_mels

    def _size(self) -> tuple[int, int]:
        if self.image_size is None:
            raise SpectroError("an image store's size is not known yet (read from the first image, or --image-size)")
        return self.image_size

    def to_dict(self) -> dict[str, Any]:
        """Every field; for images made elsewhere only theirs (no STFT settings pretending to have made them)."""
        d = dataclasses.asdict(self)
        if self.is_image:
            d = {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items() if k in IMAGE_FIELDS}
        return d

    @property
    def n_frames(self) -> int:
        """Number of time columns T of an image."""
        if self.is_image:
            return self._size()[1]
        n = self.segment_samples
        if self.center:
            return 1 + n // self.hop_length
        return 1 + (n - self.n_fft) // self.hop_length

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """Shape ``(1, F, T)`` of one image."""
        return (1, self.n_freq, self.n_frames)

    def fingerprint(self) -> str:
        """A short hash of every setting: equal configs give equal images.

        A field of :attr:`ADDED` at its former value is left out (:meth:`identity`),
        so stores and runs written before it existed keep their fingerprints.
        """
        blob = json.dumps(self.identity(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


@dataclass(frozen=True)
class TrainConfig(_Config):
    """Every setting of a training run; the CLI passes only what a user set.

    Attributes
    ----------
    model : str
        A registered model name (``spectro.models.list_models()``).
    model_options : dict
        Passed to the model builder (e.g. ``{"stem": "small"}``) or the SVM.
    epochs, batch_size : int
    optimizer : {"sgd", "adamw"}
        SGD with Nesterov momentum 0.9, or AdamW.
    lr, weight_decay : float or None
        None: the optimizer's default (SGD 0.05 / 5e-4, AdamW 1e-3 / 0.05),
        see :attr:`learning_rate` and :attr:`decay`.
    schedule : {"cosine", "onecycle", "step"}
        Per-step learning rate: linear warm-up then cosine decay to 0;
        torch's OneCycleLR; or warm-up then x0.1 at 50% and 75% of training.
    warmup_epochs : float
        Linear warm-up length (cosine and step; onecycle has its own).
    label_smoothing : float
    grad_clip : float or None
        Clip the gradient norm to this value.
    test_fold, val_fold : int or None
        None: see :func:`spectro.dataset.splits.default_folds`. With no validation
        fold, validation is a hold-out of the training groups.
    val_fraction : float
        Share of the training folds' groups held out for validation when no
        ``val_fold`` is given (stratified, group-aware, seeded); 0: none.
        None either when the groups are too few for it (see
        :func:`spectro.dataset.splits.holdout`): the last epoch is then kept.
    min_holdout : int
        No hold-out when it would hold fewer clips than this: a model then
        trains on every training row and keeps its last epoch, since a hold-out
        of a few dozen clips picks a noisy "best" epoch (see ``MIN_HOLDOUT``).
    train_fraction : float in (0, 1]
        Train on about this share of the training groups (seeded, stratified,
        nested: :func:`spectro.dataset.splits.nested_groups`); the hold-out is
        drawn inside it. 1: all of them.
    device : {"auto", "cuda", "mps", "cpu"}
        auto: CUDA, then MPS, then CPU. ``cuda:1`` etc. are accepted.
    amp : bool or None
        Mixed precision (bf16 autocast; fp16 with a GradScaler on GPUs
        without bf16). None: on where it pays: CUDA, MPS, and CPUs with AMX
        (on AVX-512 BF16 alone it trains slower than float32; see
        :func:`spectro.utils.device.choose_precision`).
    channels_last : bool or None
        None: on with CUDA, on the CPU and with mixed precision.
    specaugment : bool
        Frequency and time masks (see :class:`spectro.dataset.augment.Augment`). On by
        default: over leave-sound-sets-out folds of recorded instruments it
        raised ResNet-18's accuracy from .829 to .900; on the synthetic
        digits, near their ceiling, it cost 1.2 points (.982 to .970;
        benchmarks/README.md). Off for a network that must see the images as they are.
    mixup : float
        Mixup alpha; 0 is off.
    time_shift : float
        Random circular time shift of up to this fraction of the width; 0 is off.
    gain_eq : float
        Random gain and smooth EQ curve of up to this many dB per example
        (:func:`spectro.dataset.augment.gain_eq`); 0 is off. dB images only.
    balance : bool
        Weight the loss by inverse class frequency.
    early_stop : int or None
        Stop after this many epochs without a better validation macro-F1.
    seed : int
    workers : int or None
        DataLoader processes; None: 0 on the CPU (the memory-mapped loader
        is far faster than training), 4 on a GPU.
    pretrained : str or None
        A local checkpoint to start from (its first conv adapted to 1 channel).
    """

    # The command line's options for these fields (group, help, metavar) are spectro.cli.options'.
    model: str = "resnet18"
    model_options: dict = field(default_factory=dict)
    epochs: int = 30
    batch_size: int = 32
    optimizer: str = "adamw"
    lr: Optional[float] = None
    weight_decay: Optional[float] = None
    schedule: str = "cosine"
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.0
    grad_clip: Optional[float] = None
    test_fold: Optional[int] = None
    val_fold: Optional[int] = None
    val_fraction: float = VAL_FRACTION
    min_holdout: int = MIN_HOLDOUT
    train_fraction: float = 1.0
    device: str = "auto"
    amp: Optional[bool] = None
    channels_last: Optional[bool] = None
    specaugment: bool = True
    mixup: float = 0.0
    time_shift: float = 0.0
    gain_eq: float = 0.0
    balance: bool = False
    early_stop: Optional[int] = None
    seed: int = 0
    workers: Optional[int] = None
    pretrained: Optional[str] = None
    tensorboard: bool = False

    _what: ClassVar[str] = "training"
    #: Allowed values of the fields that take a name (the CLI's choices; a device may also be cuda:N).
    CHOICES: ClassVar[dict[str, tuple]] = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES}
    TIME_SHIFT_FRACTION: ClassVar[float] = TIME_SHIFT_FRACTION
    GAIN_EQ_DB: ClassVar[float] = GAIN_EQ_DB
    ADDED: ClassVar[dict[str, Any]] = {"gain_eq": 0.0}

    def __post_init__(self) -> None:
        def bad(msg: str) -> SpectroError:
            return SpectroError(f"invalid training setting: {msg}")

        try:
            check_types(self)  # "epochs": "ten" in a hand-edited train_config.json is one line, not a TypeError
        except SpectroError as err:
            raise bad(str(err)) from None

        if self.epochs < 1:
            raise bad(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise bad(f"batch size must be at least 1, got {self.batch_size}")
        if self.optimizer not in OPTIMIZERS:
            raise bad(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise bad(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.lr is not None and not self.lr > 0:
            raise bad(f"learning rate must be positive, got {self.lr}")
        if self.weight_decay is not None and self.weight_decay < 0:
            raise bad(f"weight decay must be >= 0, got {self.weight_decay}")
        if self.warmup_epochs < 0:
            raise bad(f"warmup epochs must be >= 0, got {self.warmup_epochs}")
        if not 0 <= self.label_smoothing < 1:
            raise bad(f"label smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise bad(f"gradient clip must be positive, got {self.grad_clip}")
        if self.device.split(":")[0] not in DEVICES:
            raise bad(f"device must be one of {DEVICES} (or cuda:N), got {self.device!r}")
        if self.mixup < 0:
            raise bad(f"mixup alpha must be >= 0, got {self.mixup}")
        if not 0 <= self.time_shift <= 0.5:
            raise bad(f"time shift must be a fraction in [0, 0.5], got {self.time_shift}")
        if not 0 <= self.gain_eq <= 40:
            raise bad(f"gain_eq must be in [0, 40] dB, got {self.gain_eq}")
        if self.early_stop is not None and self.early_stop < 1:
            raise bad(f"early-stop patience must be at least 1 epoch, got {self.early_stop}")
        if not 0 <= self.val_fraction < 1:
            raise bad(f"validation fraction must be in [0, 1), got {self.val_fraction}")
        if not 0 < self.train_fraction <= 1:
            raise bad(f"train_fraction must be in (0, 1], got {self.train_fraction}")
        if self.min_holdout < 0:
            raise bad(f"min_holdout must be 0 or more, got {self.min_holdout}")
        if self.workers is not None and self.workers < 0:
            raise bad(f"workers must be >= 0, got {self.workers}")
        if not isinstance(self.model_options, dict):
            raise bad(f"model options must be a dict, got {self.model_options!r}")
        if "pretrained" in self.model_options:
            # One home: a checkpoint to start from is TrainConfig.pretrained, never a model option.
            raise bad("a checkpoint to start from is the setting pretrained=PATH, not a model option")

    @property
    def learning_rate(self) -> float:
        """``lr``, or the optimizer's default."""
        return self.lr if self.lr is not None else OPTIMIZER_DEFAULTS[self.optimizer][0]

    @property
    def decay(self) -> float:
        """``weight_decay``, or the optimizer's default."""
        return self.weight_decay if self.weight_decay is not None else OPTIMIZER_DEFAULTS[self.optimizer][1]


#: Settings that only networks use: the SVM accepts and ignores them (with one note).
NET_ONLY_FIELDS = ("epochs", "batch_size", "optimizer", "lr", "weight_decay", "schedule", "warmup_epochs",
                   "label_smoothing", "grad_clip", "device", "amp", "channels_last", "specaugment", "mixup",
                   "time_shift", "gain_eq", "balance", "early_stop", "workers", "pretrained", "tensorboard")
#: Settings a resumed run may change: where it runs and what it logs, not what it computes.
RUNTIME_FIELDS = ("device", "workers", "tensorboard")
