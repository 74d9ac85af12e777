"""What checking a store's checksums costs, beside a plain open (issue 31 F3/F4).

A store of ``--rows`` random images (1 x 64 x 101 float16, what 1 s clips at
16 kHz with n_fft 512, hop 160 and 64 mel bands give: 12.9 kB a row) is
written with :class:`spectro.signals.store.StoreWriter`, which records one
CRC-32 per block of rows as it writes. Then, best of ``--repeat``, in this
process:

(a) a plain open: ``open_store(path)`` (config, labels, the header of
    features.npy, index.csv parsed and checked);
(b) open and verify: ``open_store(path).verify()``, what ``spectro info
    --verify`` runs and train, evaluate and compare run once per store
    through ``check_finite``;
(c) the reference for (b)'s extra work: reading every image once
    (``np.asarray(features).sum()``), as one epoch of training does.

The file is in the page cache (just written), so (b) and (c) measure memory
speed, not the disk; on a cold store both grow by the disk's read time.

    nice python benchmarks/bench_store_verify.py [--rows 3000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from spectro.config import FeatureConfig
from spectro.signals.store import StoreWriter, open_store

CFG = FeatureConfig(sample_rate=16000, duration=1.0, n_fft=512, hop_length=160, n_mels=64)


def write_store(path: str, rows: int, seed: int = 0) -> None:
    """``rows`` random images in 5 folds of 2 classes, written as preprocess writes them (in chunks of 64)."""
    rng = np.random.default_rng(seed)
    writer = StoreWriter(path, CFG.image_shape)
    index = []
    for start in range(0, rows, 64):
        k = min(64, rows - start)
        writer.append(rng.standard_normal((k, *CFG.image_shape)).astype(np.float16))
        index += [{"id": f"c{i % 2}/f{i}.wav", "path": f"c{i % 2}/f{i}.wav", "start": 0.0, "end": 1.0,
                   "label": f"c{i % 2}", "fold": 1 + i % 5, "group": "", "size": 1, "mtime_ns": 1}
                  for i in range(start, start + k)]
    writer.commit(index, ["c0", "c1"], {"feature_config": CFG.to_dict(), "folds": {"k": 5}}, [])


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "store")
        write_store(path, args.rows)
        st = open_store(path)
        size = os.path.getsize(os.path.join(path, "features.npy"))
        blocks = len(st.meta["checksums"]["blocks"])
        plain = best_of(lambda: open_store(path), args.repeat)
        verified = best_of(lambda: open_store(path).verify(), args.repeat)
        read = best_of(lambda: float(np.asarray(open_store(path).features, dtype=np.float32).sum()), args.repeat)
    print(f"store: {args.rows} rows of {' x '.join(map(str, CFG.image_shape))} float16, {size / 1e6:.1f} MB, "
          f"{blocks} checksum blocks of {st.meta['checksums']['block_rows']} rows")
    print(f"(a) open_store            {1000 * plain:8.1f} ms")
    print(f"(b) open_store + verify   {1000 * verified:8.1f} ms   ratio to (a): {verified / plain:.2f}x; "
          f"verify alone {1000 * (verified - plain):.1f} ms ({size / 1e6 / max(verified - plain, 1e-9):.0f} MB/s)")
    print(f"(c) open + read every image once {1000 * read:8.1f} ms   (b)/(c): {verified / read:.2f}")


if __name__ == "__main__":
    main()
