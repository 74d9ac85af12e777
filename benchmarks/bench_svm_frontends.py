"""Which difference costs spectro's SVM its points against the script's SVC? Every fold, one command.

Issue 20: the script summarises librosa log-mels with n_fft 2048 / hop 512 and
``power_to_db(ref=np.max)`` (each clip relative to its own peak); spectro's SVM
summarises the store's images (about 32 ms / 10 ms windows, ``ref=1``). This
fits ``spectro.make_classifier("svm")`` on every non-test row of each
leave-groups-out fold of a data set (``bench_accuracy.py``'s ``svm+all``)
for: the default store as it is (``abs``), each image relative to its peak
(``max``) or to its mean (``mean``), and stores built with the script's STFT
(n_fft 2048 / hop 512) and a middle one (1024 / 256). Prints mean accuracy over
the folds and the per-fold values.

Usage::

    python benchmarks/bench_svm_frontends.py voices sfx
"""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np

import spectro
from bench_accuracy import build_store, svm_all_rows  # benchmarks/bench_accuracy.py
from datasets import DEFAULT_FOLDS, dataset_source  # benchmarks/datasets.py

CACHE = os.path.join(os.path.expanduser("~"), ".cache", "spectro-bench")


def svm_folds(st: spectro.Store, X: np.ndarray) -> list[float]:
    """Accuracy of ``svm+all`` on each leave-groups-out fold, reading ``X`` (a variant of the store's images)."""
    return [float(np.mean(svm_all_rows(st, X, k, seed=0).argmax(axis=1) == st.y[st.folds == k]))
            for k in st.fold_ids]


def report(name: str, what: str, shape, accs: list[float]) -> None:
    print(f"{name:12s} {what:34s} {str(shape):16s} {np.mean(accs):.3f}  " + " ".join(f"{a:.3f}" for a in accs),
          flush=True)


def main(names: list[str]) -> int:
    warnings.filterwarnings("ignore")
    for name in names:
        src, opts = dataset_source(name, CACHE)
        k = DEFAULT_FOLDS[name]
        for what, cfg in [("default store", None), ("n_fft 2048 hop 512", {"n_fft": 2048, "hop_length": 512}),
                          ("n_fft 1024 hop 256", {"n_fft": 1024, "hop_length": 256})]:
            if cfg is None:
                st = build_store(name, "default", k, CACHE)  # the store bench_accuracy.py reads
            else:
                out = os.path.join(CACHE, f"store-{name}-{cfg['n_fft']}-{cfg['hop_length']}-k{k}")
                if not os.path.isdir(out):
                    spectro.preprocess(src, out, config=cfg, k_folds=k, seed=0, progress=False, **opts)
                st = spectro.open_store(out)
            X = np.asarray(st.features[:], np.float32)
            report(name, what, st.image_shape, svm_folds(st, X))
            if cfg is None:
                report(name, "default, each image minus its peak", st.image_shape,
                       svm_folds(st, X - X.max(axis=(1, 2, 3), keepdims=True)))
                report(name, "default, each image minus its mean", st.image_shape,
                       svm_folds(st, X - X.mean(axis=(1, 2, 3), keepdims=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["voices"]))
