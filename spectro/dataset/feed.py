"""Feeding a network from the store: normalisation and minibatches.

Which rows train, validate and test is :mod:`spectro.dataset.splits`'
business; this module reads those rows from the memory map and normalises
them. Augmentation is :mod:`spectro.dataset.augment`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from spectro.errors import SpectroError

__all__ = ["norm_stats", "normalise", "NormalisedRows", "class_weights", "StoreImages", "epoch_batches", "shard",
           "make_loader", "RESIDENT_SHARE", "Residency", "plan_residency", "DeviceRows", "feed"]


# ---------------------------------------------------------------------------
# Normalisation: per-frequency statistics of the training rows
# ---------------------------------------------------------------------------

def norm_stats(features: Any, rows: np.ndarray, *, chunk_rows: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Per-frequency mean and standard deviation over ``features[rows]``.

    Read in chunks from the memory map and accumulated in float64 around a
    shift (the first chunk's mean), so neither memory nor cancellation grows
    with the number of rows.

    Parameters
    ----------
    features : array [shape=(N, C, F, T)]
    rows : np.ndarray [shape=(n,)]
        Row numbers to use (the training rows).

    Returns
    -------
    mean, std : np.ndarray [shape=(C, F), dtype=float32]
        A frequency row that never varies gets std 1, so it maps to 0
        rather than to inf.
    """
    rows = np.sort(np.asarray(rows, dtype=np.int64))
    if rows.size == 0:
        raise SpectroError("no rows to compute normalisation statistics from")
    shift = None
    s1 = s2 = 0.0
    count = 0
    for start in range(0, rows.size, chunk_rows):
        x = np.asarray(features[rows[start:start + chunk_rows]], dtype=np.float64)  # (n, C, F, T)
        if shift is None:
            shift = x.mean(axis=(0, 3))  # (C, F)
        d = x - shift[None, :, :, None]
        s1 = s1 + d.sum(axis=(0, 3))
        s2 = s2 + (d * d).sum(axis=(0, 3))
        count += x.shape[0] * x.shape[3]
    mean_d = s1 / count
    var = np.maximum(s2 / count - mean_d**2, 0.0)
    std = np.sqrt(var)
    std[std < 1e-6] = 1.0
    return (shift + mean_d).astype(np.float32), std.astype(np.float32)


def normalise(x: Any, mean: Any, std: Any) -> Any:
    """``(x - mean) / std`` per channel and frequency, in float32: the one normalisation.

    Training (torch tensors on the device), the SVM and every prediction
    (numpy arrays) call this, so the image a model sees never depends on
    the path it came by.

    Parameters
    ----------
    x : torch.Tensor or np.ndarray [shape=(B, C, F, T)], any float dtype
    mean, std : the same kind [shape=(C, F)]

    Returns
    -------
    The kind of ``x``, float32 [shape=(B, C, F, T)].
    """
    if isinstance(x, torch.Tensor):
        x = x.float()
    else:
        x = np.asarray(x, dtype=np.float32)
    return (x - mean[None, :, :, None]) / std[None, :, :, None]


class NormalisedRows:
    """Rows of a store's images, normalised as they are read: an array-like that is never whole in memory.

    ``view[i:j]`` (or an array of positions) returns the float32 images
    ``normalise(features[rows[i:j]], mean, std)``. A classifier fitted once on
    every training row (the SVM) reads it slice by slice, so fitting costs
    one slice of images plus its own features, whatever the store's size.

    Parameters
    ----------
    features : array [shape=(N, C, F, T)], e.g. ``store.features``
    rows : np.ndarray [shape=(n,)]
        The rows served, in this order.
    mean, std : np.ndarray [shape=(C, F)]
    """

    def __init__(self, features: Any, rows: np.ndarray, mean: np.ndarray, std: np.ndarray) -> None:
        self.features = features
        self.rows = np.asarray(rows, dtype=np.int64)
        self.mean, self.std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
        self.shape = (int(self.rows.size), *features.shape[1:])
        self.ndim = len(self.shape)
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: Any) -> np.ndarray:
        rows = self.rows[index]
        if np.ndim(rows) == 0:
            return normalise(self.features[int(rows)][None], self.mean, self.std)[0]
        order = np.argsort(rows, kind="stable")  # read the memory map in row order, return in view order
        block = np.empty((rows.size, *self.shape[1:]), dtype=np.float32)
        block[order] = normalise(self.features[rows[order]], self.mean, self.std)
        return block

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        # np.asarray(view): the whole view at once (what slicing avoids); for small data and tests.
        out = self[:]
        return out if dtype is None else out.astype(dtype)


def class_weights(y: np.ndarray, num_classes: int) -> np.ndarray:
    """Loss weights ``n / (C * n_c)``: every class weighs as much in total (absent classes: 0)."""
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=num_classes).astype(np.float64)
    present = counts > 0
    w = np.zeros(num_classes)
    w[present] = counts.sum() / (present.sum() * counts[present])
    return w.astype(np.float32)


# ---------------------------------------------------------------------------
# Feeding: whole minibatches straight from the memory map
# ---------------------------------------------------------------------------

class StoreImages(Dataset):
    """Minibatches of images and labels read from an array (the store's memory map).

    Indexed by an *array of positions* into ``rows``, not by one position: a
    whole minibatch is one fancy-indexed read of the memory map (rows sorted
    for locality), so there is no per-example Python work and no collate.
    Images stay float16 until they are on the device (half the bytes to copy).

    Parameters
    ----------
    features : array [shape=(N, C, F, T)], e.g. ``store.features``
    y : np.ndarray [shape=(N,), dtype=int64]
    rows : np.ndarray [shape=(n,)]
        The rows this dataset serves; position ``i`` is row ``rows[i]``.
    """

    def __init__(self, features: Any, y: np.ndarray, rows: np.ndarray) -> None:
        self.features = features
        self.y = np.asarray(y, dtype=np.int64)
        self.rows = np.asarray(rows, dtype=np.int64)

    def __len__(self) -> int:
        return self.rows.size

    def __getitem__(self, positions: Any) -> tuple[torch.Tensor, torch.Tensor]:
        rows = self.rows[np.asarray(positions, dtype=np.int64)]
        order = np.argsort(rows, kind="stable")
        x = np.empty((rows.size, *self.features.shape[1:]), dtype=self.features.dtype)
        x[order] = self.features[rows[order]]  # (B, C, F, T), read in row order, returned in batch order
        return torch.from_numpy(x), torch.from_numpy(self.y[rows])

    # A memory map must not be pickled into worker processes (that copies the
    # whole array): send its file name and reopen it there.
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        f = self.features
        if isinstance(f, np.memmap) and f.filename:
            state["features"] = ("memmap", f.filename, f.dtype.str, f.shape, f.offset)
        return state

    def __setstate__(self, state: dict) -> None:
        f = state["features"]
        if isinstance(f, tuple) and f[0] == "memmap":
            _, name, dtype, shape, offset = f
            state["features"] = np.memmap(name, dtype=np.dtype(dtype), mode="r", shape=shape, offset=offset)
        self.__dict__.update(state)


def epoch_batches(
    n: int,
    batch_size: int,
    *,
    epoch: int,
    seed: int,
    shuffle: bool = True,
    drop_last: bool = False,
    rank: int = 0,
    world_size: int = 1,
) -> list[np.ndarray]:
    """The minibatches (arrays of positions ``0..n-1``) one rank sees in one epoch.

    A pure function of its arguments: a resumed run recomputes exactly the
    batches it would have seen and skips those already done. The order comes
    from :class:`torch.utils.data.DistributedSampler` (seeded by ``seed +
    epoch``), which gives each of ``world_size`` ranks an equal share.
    """
    sampler = DistributedSampler(range(n), num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed,
                                 drop_last=False)
    sampler.set_epoch(epoch)
    order = np.fromiter(iter(sampler), dtype=np.int64)
    stop = (order.size // batch_size) * batch_size if drop_last else order.size
    return [order[i:i + batch_size] for i in range(0, stop, batch_size)]


def shard(positions: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """Rank ``rank``'s share of ``positions`` for evaluation: no padding, no repeats."""
    return np.asarray(positions)[rank::world_size]


def make_loader(dataset: StoreImages, batches: list[np.ndarray], *, workers: int = 0,
                pin_memory: bool = False) -> DataLoader:
    """A DataLoader yielding ``(x float16 (B, C, F, T), y int64 (B,))`` for each of ``batches``.

    It owns a generator of its own: a DataLoader draws a seed for its workers
    whenever it starts an iteration, and drawing it from the global generator
    would shift the augmentation stream of a resumed run.
    """
    return DataLoader(dataset, sampler=batches, batch_size=None, num_workers=workers, pin_memory=pin_memory,
                      persistent_workers=False, generator=torch.Generator())


# ---------------------------------------------------------------------------
# Device-resident rows: the training data loaded onto the device once
# ---------------------------------------------------------------------------

#: The training and validation rows are kept on the device when they take at most this share of its free memory
#: (after the model is there); the rest is headroom for activations, gradients and the optimizer's state.
RESIDENT_SHARE = 0.5


@dataclass(frozen=True)
class Residency:
    """Where a run's images are fed from, and why: ``resident`` on the device, or the memory-map loader."""

    resident: bool
    reason: str


def plan_residency(n_bytes: int, device: torch.device, free: Optional[int], *,
                   wanted: Optional[bool] = None) -> Residency:
    """Whether ``n_bytes`` of float16 rows are kept on ``device`` that has ``free`` bytes free (None: unknown).

    ``wanted`` None keeps them there when they take at most
    :data:`RESIDENT_SHARE` of the free memory; False always feeds from the
    memory map; True insists (a :class:`SpectroError` when they cannot fit).
    """
    size = _mb(n_bytes)
    loader = "memory-map loader" + (" with pinned memory" if device.type == "cuda" else "")
    if wanted is False:
        return Residency(False, f"{loader}: resident data turned off")
    if free is None:
        if wanted:
            return Residency(True, f"resident on {device} ({size}; its free memory is unknown)")
        return Residency(False, f"{loader}: the free memory of {device} is unknown")
    fits = n_bytes <= RESIDENT_SHARE * free
    if fits:
        return Residency(True, f"resident on {device} ({size} of {_mb(free)} free)")
    if wanted:
        raise SpectroError(f"the training rows ({size}) do not fit in half of the {_mb(free)} free on {device}; "
                           "feed them from the memory map (resident=False)")
    return Residency(False, f"{loader}: {size} of rows exceed half of the {_mb(free)} free on {device}")


def _mb(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


class DeviceRows:
    """The rows of a :class:`StoreImages`, float16 on ``device``: minibatches are drawn by indexing there.

    ``rows[positions]`` returns what ``StoreImages[positions]`` returns, moved
    to the device: the same float16 images in the same order, and the labels.
    The copy is made chunk by chunk from the memory map (rows in file order),
    so host memory holds one chunk at a time.
    """

    def __init__(self, data: StoreImages, device: torch.device, *, chunk_rows: int = 2048) -> None:
        shape = tuple(data.features.shape[1:])
        self.x = torch.empty((len(data), *shape), dtype=torch.float16, device=device)  # (n, C, F, T)
        order = np.argsort(data.rows, kind="stable")
        for start in range(0, order.size, chunk_rows):
            at = order[start:start + chunk_rows]
            block = np.asarray(data.features[data.rows[at]], dtype=np.float16)
            self.x[torch.as_tensor(at, device=device)] = torch.from_numpy(block).to(device)
        self.y = torch.as_tensor(data.y[data.rows], device=device)
        self.device = device

    @staticmethod
    def nbytes(data: StoreImages) -> int:
        return len(data) * int(np.prod(data.features.shape[1:])) * 2

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, positions: Any) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(np.asarray(positions, dtype=np.int64), device=self.device)
        return self.x[idx], self.y[idx]


def feed(data: StoreImages, batches: list[np.ndarray], *, device: torch.device,
         resident: Optional[DeviceRows] = None, workers: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(x float16 (B, C, F, T), y int64 (B,))`` on ``device`` for each of ``batches``, by either path.

    From ``resident`` when given (indexing on the device), else from the
    memory map through :func:`make_loader` (pinned memory and non-blocking
    copies on CUDA). Both give the same values in the same order.
    """
    if resident is not None:
        for positions in batches:
            yield resident[positions]
        return
    loader = make_loader(data, batches, workers=workers, pin_memory=device.type == "cuda")
    for x, y in loader:
        yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)
