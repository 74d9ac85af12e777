"""Prediction speed on raw files, side by side with the loop a practitioner writes.

On the same one-second clips (22.05 kHz WAV; the run works at 16 kHz, n_fft
512, hop 160, 64 mel bands: 1 x 64 x 101 images), in one run:

(a) the hand loop: for each file ``librosa.load(sr=16000)`` +
    ``melspectrogram`` + ``power_to_db``, the run's normalisation, and the
    run's torch model called once per file;
(b) ``spectro predict`` (the API behind it: ``spectro.load(RUN).predict_files``,
    decoding workers and batches of 64);

and prints files/s for each and the ratio (target: >= 3x for resnet18 on 2
cores). Then, for resnet18, the CNN and the SVM: latency per one-second clip at
batch 1 (file in, probabilities out, one call of ``predict_proba(path)`` at a
time) and throughput at batch 64; and ONNX Runtime against PyTorch (the SVM: scikit-learn)
at batch 1 on the model alone (a normalised image in, probabilities out).

The runs are trained for one epoch on a few clips: speed does not depend on
accuracy.

    nice python benchmarks/bench_predict.py [--files 1000] [--models resnet18,cnn,svm] [--no-onnx] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import soundfile as sf
import torch

SR_IN, SR = 22050, 16000
PARAMS = dict(n_fft=512, hop_length=160, n_mels=64)


def make_corpus(root: str, n: int, seed: int = 0) -> list[str]:
    """``n`` one-second tones with noise in two class folders (low and high pitch)."""
    rng = np.random.default_rng(seed)
    t = np.arange(SR_IN) / SR_IN
    paths = []
    for name in ("low", "high"):
        os.makedirs(os.path.join(root, name), exist_ok=True)
    for i in range(n):
        name = ("low", "high")[i % 2]
        f = rng.uniform(200, 800) if name == "low" else rng.uniform(1500, 4000)
        y = 0.3 * np.sin(2 * np.pi * f * t) + 0.05 * rng.standard_normal(t.shape)
        path = os.path.join(root, name, f"{i:05d}.wav")
        sf.write(path, y.astype(np.float32), SR_IN, subtype="PCM_16")
        paths.append(path)
    return paths


def train_runs(root: str, models: list[str]) -> dict[str, str]:
    import spectro

    cfg = spectro.FeatureConfig(sample_rate=SR, duration=1.0, **PARAMS)
    make_corpus(os.path.join(root, "train"), 100, seed=1)
    spectro.preprocess(os.path.join(root, "train"), os.path.join(root, "store"), config=cfg, progress=False)
    runs = {}
    for m in models:
        runs[m] = os.path.join(root, "runs", m)
        spectro.train(os.path.join(root, "store"), m, runs[m], epochs=1, batch_size=16, device="cpu", progress=False)
    return runs


def hand_loop(paths: list[str], run_dir: str) -> float:
    """(a): librosa per file, then the run's network on one image at a time."""
    import librosa

    from spectro.training.run import load_run

    run = load_run(run_dir, device="cpu")
    net = run.classifier.module_.eval()
    mean, std = run.mean[:, :, None], run.std[:, :, None]  # (1, F, 1)
    t0 = time.perf_counter()
    with torch.inference_mode():
        for p in paths:
            y, _ = librosa.load(p, sr=SR)
            image = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=SR, **PARAMS))  # (F, T)
            x = torch.from_numpy(((image[None] - mean) / std).astype(np.float32))[None]  # (1, 1, F, T)
            torch.softmax(net(x), dim=1)
    return time.perf_counter() - t0


def spectro_files(paths: list[str], run_dir: str, *, batch_size: int = 64) -> float:
    """(b): what ``spectro predict RUN FILES`` does."""
    import spectro

    predictor = spectro.load(run_dir, device="cpu")
    t0 = time.perf_counter()
    results = list(predictor.predict_files(paths, batch_size=batch_size))
    seconds = time.perf_counter() - t0
    assert all(r.ok for r in results) and len(results) == len(paths)
    return seconds


def latency_batch1(paths: list[str], run_dir: str) -> float:
    """Seconds per clip, one ``predict_proba(path)`` call per file, in this process."""
    import spectro

    predictor = spectro.load(run_dir, device="cpu")
    predictor.predict_proba(paths[0])  # warm-up
    t0 = time.perf_counter()
    for p in paths:
        predictor.predict_proba(p)
    return (time.perf_counter() - t0) / len(paths)


def onnx_vs_native(run_dir: str, out: str, iters: int = 100) -> tuple[float, float]:
    """Model-only latency at batch 1 (ms): ONNX Runtime, then PyTorch (the SVM: scikit-learn)."""
    import onnxruntime as ort

    from spectro.inference.export import export_onnx
    from spectro.training.run import load_run

    export_onnx(run_dir, out)
    run = load_run(run_dir, device="cpu")
    x = np.random.default_rng(0).standard_normal((1, 1, 64, 101)).astype(np.float32)
    session = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    if hasattr(run.classifier, "module_"):
        net = run.classifier.module_.eval()
        native = lambda: net(torch.from_numpy(x))  # noqa: E731
    else:
        native = lambda: run.classifier.predict_proba(x)  # noqa: E731
    times = []
    for fn in (lambda: session.run(["probabilities"], {"image": x}), native):
        with torch.inference_mode():
            for _ in range(10):
                fn()
            t0 = time.perf_counter()
            for _ in range(iters):
                fn()
        times.append(1000 * (time.perf_counter() - t0) / iters)
    return times[0], times[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=1000, help="one-second files to predict (default 1000)")
    ap.add_argument("--models", default="resnet18,cnn,svm")
    ap.add_argument("--latency-files", type=int, default=50, help="files timed at batch 1 per model")
    ap.add_argument("--no-onnx", action="store_true")
    ap.add_argument("--threads", type=int, help="torch threads of this process, for (a) and (b) alike (default: "
                    "torch's; on a machine shared with other work, 1 avoids OpenMP threads waiting on each other)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    models = args.models.split(",")
    print(f"CPUs: {os.cpu_count()}, torch threads: {torch.get_num_threads()}, files: {args.files}, "
          f"load average at start: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as root:
        paths = make_corpus(os.path.join(root, "predict"), args.files)
        t0 = time.perf_counter()
        runs = train_runs(root, models)
        print(f"trained {', '.join(models)} for one epoch in {time.perf_counter() - t0:.0f} s")

        if "resnet18" in runs:
            a = hand_loop(paths, runs["resnet18"])
            b = spectro_files(paths, runs["resnet18"])
            print(f"\nresnet18, {args.files} one-second files")
            print(f"(a) hand loop (librosa + torch model per file): {args.files / a:8.1f} files/s")
            print(f"(b) spectro predict (workers, batch 64):         {args.files / b:8.1f} files/s")
            print(f"ratio (b)/(a): {a / b:.2f}x  (target >= 3x)")

        print(f"\n{'model':10s} {'latency at batch 1 (ms/clip)':>30s} {'throughput at batch 64 (files/s)':>34s}")
        for m in models:
            lat = latency_batch1(paths[:args.latency_files], runs[m])
            thr = args.files / spectro_files(paths, runs[m], batch_size=64)
            print(f"{m:10s} {1000 * lat:30.2f} {thr:34.1f}")

        if not args.no_onnx:
            print(f"\n{'model':10s} {'ONNX Runtime (ms)':>18s} {'PyTorch (ms)':>14s} {'PyTorch / ORT':>14s}   "
                  "model only, batch 1 (svm: scikit-learn in the PyTorch column)")
            for m in models:
                o, t = onnx_vs_native(runs[m], os.path.join(root, f"{m}.onnx"))
                print(f"{m:10s} {o:18.2f} {t:14.2f} {t / o:13.2f}x")


if __name__ == "__main__":
    main()
