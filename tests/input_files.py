"""Small files of every input kind for the tests: .mat v5 and v7.3, CSV/TSV, colormapped and grey pictures."""

from __future__ import annotations

import os

import h5py
import numpy as np
import scipy.io
from matplotlib import colormaps
from PIL import Image

from synth import tone


def mat_v5(path, arrays: dict) -> str:
    """A MATLAB v5 file (scipy.io.savemat) of ``arrays``."""
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    scipy.io.savemat(str(path), arrays)
    return str(path)


def mat_v73(path, arrays: dict) -> str:
    """A MATLAB v7.3 file as MATLAB writes it: HDF5 after a 512-byte header, arrays transposed, MATLAB_class attrs."""
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with h5py.File(str(path), "w", userblock_size=512) as f:
        for name, value in arrays.items():
            value = np.asarray(value)
            if value.dtype.kind in "US":
                ds = f.create_dataset(name, data=np.frombuffer(str(value).encode("utf-16-le"), np.uint16)[None])
                ds.attrs["MATLAB_class"] = np.bytes_(b"char")
                continue
            value = np.atleast_2d(value)
            ds = f.create_dataset(name, data=value.T)  # MATLAB is column-major
            ds.attrs["MATLAB_class"] = np.bytes_({"f": b"double", "i": b"int32", "u": b"uint16"}[value.dtype.kind])
    with open(str(path), "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Dec  7 12:00:00 2026 HDF5 schema 1.00 .")
    return str(path)


def cwru(path, y: np.ndarray, *, number: int = 97, v73: bool = False) -> str:
    """A Case Western style file: ``X097_DE_time`` and ``X097_FE_time`` as (n, 1) columns, and ``X097RPM``."""
    arrays = {f"X{number:03d}_DE_time": y[:, None].astype(np.float64),
              f"X{number:03d}_FE_time": (0.5 * y[::-1])[:, None].astype(np.float64),
              f"X{number:03d}RPM": np.array([[1797.0]])}
    return (mat_v73 if v73 else mat_v5)(path, arrays)


def picture(path, image: np.ndarray, cmap: str = "viridis") -> str:
    """``image`` [shape=(F, T)] drawn as a PNG through ``cmap`` (row 0 at the bottom, as origin="lower" draws it)."""
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    lo, hi = float(image.min()), float(image.max())
    rgba = colormaps[cmap]((image - lo) / (hi - lo))  # (F, T, 4) in 0..1
    Image.fromarray((rgba[::-1, :, :3] * 255).round().astype(np.uint8)).save(str(path))
    return str(path)


def grey16(path, image: np.ndarray) -> str:
    """A 16-bit grey PNG of ``image`` scaled to 0..65535 (row 0 at the bottom)."""
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    lo, hi = float(image.min()), float(image.max())
    Image.fromarray(np.round((image[::-1] - lo) / (hi - lo) * 65535).astype(np.uint16)).save(str(path))
    return str(path)


def class_signal(c: int, k: int, *, sr: int = 8000, seconds: float = 2.0) -> np.ndarray:
    """A tone whose pitch tells the class ``c`` (0, 1, ...), take ``k``."""
    return tone(400.0 * (2 ** c) * (1 + 0.02 * k), sr=sr, seconds=seconds, noise=0.05, seed=k)


def spectrogram_like(c: int, k: int, shape=(32, 40)) -> np.ndarray:
    """A smooth (F, T) image with a band whose row tells the class."""
    rng = np.random.default_rng(100 * c + k)
    f = np.arange(shape[0])[:, None]
    band = 6 + 10 * c
    return (np.exp(-((f - band) ** 2) / 8.0) + 0.1 * rng.random(shape)).astype(np.float32)
