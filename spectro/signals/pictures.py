"""Images made elsewhere: time-frequency pictures (PNG, JPEG, BMP, TIFF) and 2-D arrays, as store images.

A spectrogram or scalogram saved by MATLAB or matplotlib is a picture of
intensities drawn through a colormap. Its luminance is not the intensity
(jet's is not even monotonic), so a colormapped picture is turned back by
*inverting the colormap*: each pixel takes the position (0..1) of the
nearest colour of the colormap's 256-entry table (matplotlib's, which
MATLAB's parula aside are the tables these pictures are drawn with), found
with a KD-tree over the table for the picture's distinct colours only.
Grey pictures (8- or 16-bit, or RGB with equal channels) are their own
intensity (``colormap="gray"``).

A pixel farther than :data:`MAX_DISTANCE` (JPEG: :data:`MAX_DISTANCE_LOSSY`)
from every colour of the table is not a colormap colour: axes, ticks, labels, a white margin or a colour bar.
A picture with more than :data:`MAX_FOREIGN` of such pixels is refused
(crop them away with ``crop_box``), never silently learned from.

Orientation: a picture's top row is its highest frequency (``origin="lower"``
drawings, MATLAB's ``axis xy``); the store's row 0 is the lowest, so pictures
are flipped. A 2-D array (``.npy``/``.npz``, ``(F, T)``) is taken as it is,
row 0 the lowest frequency, its values unchanged (dB, power...). Images of
another size than the store's are refused, or resized with ``resize``
(bilinear interpolation of the intensities, PIL's ``Image.resize``).

All of it is one function, :func:`read_image`, used by preprocess and
predict alike (through :mod:`spectro.signals.images`).
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np
from matplotlib import colormaps
from PIL import Image, UnidentifiedImageError
from scipy.spatial import cKDTree

from spectro.config import COLORMAPS, IMAGE_RESIZE, FeatureConfig
from spectro.errors import BadInput, first_line

__all__ = ["PICTURE_EXTENSIONS", "MAX_DISTANCE", "MAX_DISTANCE_LOSSY", "MAX_FOREIGN", "read_picture", "invert_colormap", "read_image",
           "array_image", "detect_colormap", "colormap_table", "picture_size", "is_picture"]

PICTURE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
#: A pixel this far (Euclidean, RGB in 0..1) from every colour of the colormap is not one of its colours.
#: 8-bit quantisation moves a colour by at most 0.0034; 0.06 (about 15 levels per channel) leaves room for
#: JPEG's noise while white, grey or black lines on a colour colormap are all farther.
MAX_DISTANCE = 0.06
#: The same for JPEG pictures, whose chroma subsampling moves colours by up to 0.18 at quality 95 (white is
#: still 0.25 from magma's lightest colour, grey and black farther from the others).
MAX_DISTANCE_LOSSY = 0.2
_LOSSY = (".jpg", ".jpeg")
#: A picture with more than this share of such pixels is refused (axes, labels, a colour bar).
MAX_FOREIGN = 0.01
_GREY_MODES = {"L": 255.0, "I;16": 65535.0, "I;16B": 65535.0, "I;16L": 65535.0, "I": 65535.0, "F": None}
_COLOUR_MODES = {"RGB", "RGBA", "P", "LA", "PA", "RGBX"}


def colormap_table(name: str) -> np.ndarray:
    """The 256 colours of a colormap [shape=(256, 3), dtype=float64], in 0..1, from its low end to its high."""
    if name not in COLORMAPS:
        raise BadInput(f"unknown colormap {name!r} (known: {', '.join(COLORMAPS)})")
    return colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3]


def read_picture(path: str, crop_box: Optional[tuple] = None) -> tuple[np.ndarray, bool]:
    """A picture's pixels: grey levels in 0..1 [shape=(H, W)] or RGB in 0..1 [shape=(H, W, 3)], and whether grey.

    An RGB picture whose three channels are equal is grey; an alpha channel is
    dropped. ``crop_box`` (left, top, right, bottom) is applied first.

    Raises
    ------
    BadInput
        An unreadable, truncated or empty picture, a mode spectro cannot read
        (CMYK, bilevel...), or a crop box outside the picture.
    """
    try:
        with Image.open(path) as im:
            im.load()  # decodes now: a truncated file fails here ("image file is truncated")
            if crop_box is not None:
                w, h = im.size
                if crop_box[2] > w or crop_box[3] > h:
                    raise BadInput(f"--crop-box {','.join(map(str, crop_box))} lies outside the {w} x {h} picture")
                im = im.crop(tuple(crop_box))
            mode = im.mode
            if mode in _GREY_MODES:
                arr = np.asarray(im, dtype=np.float64)
                scale = _GREY_MODES[mode]
                if mode == "I" and arr.max(initial=0) > 65535:
                    raise BadInput("unreadable mode: 32-bit integer picture (8 or 16 bits are read)")
                return (arr / scale if scale else arr), True
            if mode not in _COLOUR_MODES:
                raise BadInput(f"unreadable mode {mode!r} (grey 8/16-bit, RGB, RGBA or palette pictures are read)")
            rgb = np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0  # (H, W, 3)
    except BadInput:
        raise
    except UnidentifiedImageError:
        raise BadInput("cannot decode: not a picture Pillow reads") from None
    except (OSError, ValueError, SyntaxError) as err:  # "image file is truncated", broken PNG chunks
        text = first_line(err)
        kind = "truncated" if "truncated" in text.lower() else "cannot decode"
        raise BadInput(f"{kind}: {text[:200]}") from None
    if rgb.size == 0:
        raise BadInput("empty picture")
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
        return rgb[..., 0], True
    return rgb, False


def invert_colormap(rgb: np.ndarray, name: str, *, tolerance: float = MAX_DISTANCE) -> tuple[np.ndarray, float]:
    """Intensities of a picture drawn with colormap ``name`` [shape=(H, W), values 0..1], and its share of foreign pixels.

    Each pixel takes the position of the nearest of the colormap's 256
    colours (k / 255); a pixel farther than ``tolerance`` from all of them
    counts as foreign.
    """
    codes = np.round(rgb * 255).astype(np.int64)
    packed = (codes[..., 0] << 16) | (codes[..., 1] << 8) | codes[..., 2]  # (H, W): one int per colour
    colours, inverse = np.unique(packed.ravel(), return_inverse=True)
    unique_rgb = np.stack([(colours >> 16) & 255, (colours >> 8) & 255, colours & 255], axis=1) / 255.0
    distance, index = cKDTree(colormap_table(name)).query(unique_rgb)  # only the distinct colours are searched
    intensity = (index / 255.0)[inverse].reshape(packed.shape)
    foreign = float((distance > tolerance)[inverse].mean())
    return intensity, foreign


def detect_colormap(paths: Sequence[str], crop_box: Optional[tuple] = None) -> tuple[Optional[str], str]:
    """The colormap the pictures ``paths`` were drawn with, and why: the one that leaves the fewest foreign pixels.

    Returns ``(None, why)`` when no picture among ``paths`` can be read.
    """
    shares: dict[str, list[float]] = {name: [] for name in COLORMAPS if name != "gray"}
    grey = 0
    read = 0
    for path in paths:
        try:
            pixels, is_grey = read_picture(path, crop_box)
        except BadInput:
            continue
        read += 1
        if is_grey:
            grey += 1
            continue
        for name in shares:
            shares[name].append(invert_colormap(pixels, name, tolerance=_tolerance(path))[1])
    if not read:
        return None, "no readable picture"
    if grey == read:
        return "gray", f"{read} of {read} sampled pictures are grey"
    mean = {name: float(np.mean(v)) for name, v in shares.items()}
    best = min(mean, key=mean.get)
    others = ", ".join(f"{n} {100 * s:.0f} %" for n, s in sorted(mean.items(), key=lambda kv: kv[1])[1:3])
    return best, (f"{100 * mean[best]:.1f} % of the pixels of {read - grey} sampled colour pictures are off its "
                  f"colours ({others}); say --colormap if it is another")


def picture_size(path: str, crop_box: Optional[tuple] = None) -> Optional[tuple[int, int]]:
    """``(F, T)`` = (height, width) of a picture after ``crop_box``, or None if it cannot be opened."""
    try:
        with Image.open(path) as im:
            w, h = im.size
    except (OSError, ValueError, UnidentifiedImageError):
        return None
    if crop_box is not None:
        w, h = min(crop_box[2], w) - crop_box[0], min(crop_box[3], h) - crop_box[1]
    return (h, w) if h > 0 and w > 0 else None


def read_image(path: str, cfg: FeatureConfig) -> np.ndarray:
    """The image of a picture file as the store holds it [shape=(F, T), dtype=float32], row 0 the lowest frequency.

    Raises
    ------
    BadInput
        Unreadable, truncated, of an unreadable mode, not drawn with the
        store's colormap (grey for a colour store or the reverse), holding
        more than :data:`MAX_FOREIGN` foreign pixels, or of another size
        without ``cfg.resize``.
    """
    pixels, is_grey = read_picture(path, cfg.crop_box)
    name = cfg.colormap or "gray"
    if is_grey:
        if name != "gray":
            raise BadInput(f"a grey picture, and the store's pictures are drawn with {name}")
        intensity = pixels
    elif name == "gray":
        raise BadInput("a colour picture, and the store's pictures are grey (give --colormap NAME)")
    else:
        intensity, foreign = invert_colormap(pixels, name, tolerance=_tolerance(path))
        if foreign > MAX_FOREIGN:
            raise BadInput(f"{100 * foreign:.1f} % of its pixels are not colours of {name} (axes, ticks, labels or "
                           f"a colour bar?): crop them away with --crop-box LEFT,TOP,RIGHT,BOTTOM, or give the "
                           "--colormap it was drawn with")
    return _sized(np.ascontiguousarray(intensity[::-1], dtype=np.float32), cfg)  # top row = highest frequency


def array_image(arr: np.ndarray, cfg: FeatureConfig, *, what: str = "") -> np.ndarray:
    """A 2-D numeric array ``(F, T)`` as a store image [shape=(F, T), dtype=float32], values unchanged."""
    if arr.dtype.kind not in "fiub":
        raise BadInput(f"array{what} has non-numeric dtype {arr.dtype}")
    if arr.ndim != 2:
        shape = "x".join(map(str, arr.shape)) or "scalar"
        raise BadInput(f"array{what} is not a 2-D image (shape {shape}; images are F x T, or N x F x T in one file)")
    out = np.asarray(arr, dtype=np.float32)
    if not np.isfinite(out).all():
        raise BadInput("NaN or Inf values")
    return _sized(out, cfg)


def _sized(image: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """``image`` at the store's size: as it is, resized (``cfg.resize``), or refused."""
    want = tuple(cfg.image_size) if cfg.image_size is not None else image.shape
    if image.shape == want:
        return image
    if not cfg.resize:
        raise BadInput(f"other size: {image.shape[0]} x {image.shape[1]} pixels, the store's images are "
                       f"{want[0]} x {want[1]} (give --image-size {want[0]}x{want[1]} to resize them)")
    resized = Image.fromarray(image).resize((want[1], want[0]), resample=_RESAMPLE[IMAGE_RESIZE])
    return np.asarray(resized, dtype=np.float32)


_RESAMPLE = {"bilinear": Image.Resampling.BILINEAR}


def _tolerance(path: str) -> float:
    return MAX_DISTANCE_LOSSY if path.lower().endswith(_LOSSY) else MAX_DISTANCE


def is_picture(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in PICTURE_EXTENSIONS
