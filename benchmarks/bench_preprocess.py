"""preprocess speed and memory, side by side with the loop a practitioner writes.

On the same corpus (one-second clips at 22.05 kHz) and the same parameters
(16 kHz, n_fft 512, hop 160, 64 mel bands, power_to_db), in one run:

(a) the hand loop: for each file librosa.load(sr=16000) + melspectrogram +
    power_to_db, default thread settings;
(b) spectro.preprocess (the API behind ``spectro preprocess``), all workers;

and prints clips/s for each and their ratio. It also times the single-core
floor (decode alone + resample alone + batched STFT/mel alone, per clip) and
reports spectro's rate as a fraction of the floor on all cores; then the peak
resident memory of a preprocess run (main process and the largest worker) at
two corpus sizes, to show that memory does not grow with the number of files.

    python benchmarks/bench_preprocess.py [--clips 2000] [--big 8000] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import soundfile as sf

SR_IN, SR = 22050, 16000
PARAMS = dict(n_fft=512, hop_length=160, n_mels=64)


def make_corpus(root: str, n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    t = np.arange(SR_IN) / SR_IN
    os.makedirs(os.path.join(root, "a"), exist_ok=True)
    os.makedirs(os.path.join(root, "b"), exist_ok=True)
    paths = []
    for i in range(n):
        f = rng.uniform(100, 4000)
        y = 0.3 * np.sin(2 * np.pi * f * t) + 0.05 * rng.standard_normal(t.shape)
        path = os.path.join(root, "ab"[i % 2], f"{i:05d}.wav")
        sf.write(path, y.astype(np.float32), SR_IN, subtype="PCM_16")
        paths.append(path)
    return paths


def hand_loop(paths: list[str]) -> float:
    import librosa

    t0 = time.perf_counter()
    for p in paths:
        y, _ = librosa.load(p, sr=SR)
        librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=SR, **PARAMS))
    return time.perf_counter() - t0


def spectro_run(root: str, out: str, workers, device: str = "cpu") -> float:
    from spectro import FeatureConfig, preprocess

    cfg = FeatureConfig(sample_rate=SR, duration=1.0, **PARAMS)
    t0 = time.perf_counter()
    preprocess(root, out, config=cfg, workers=workers, progress=False, device=device)
    return time.perf_counter() - t0


def floor_per_clip(paths: list[str]) -> dict[str, float]:
    """Single-core cost per clip of each stage, measured alone."""
    import soxr
    import torch

    from spectro import FeatureConfig, SpectrogramImage
    from spectro.signals.features import compute_images

    torch.set_num_threads(1)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        t0 = time.perf_counter()
        raw = [sf.read(p, dtype="float32")[0] for p in paths]
        t_decode = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = [soxr.resample(y, SR_IN, SR, quality="HQ") for y in raw]
        t_res = time.perf_counter() - t0
        batch = np.stack([np.pad(y, (0, max(0, SR - len(y))))[:SR] for y in res])
        ex = SpectrogramImage(FeatureConfig(sample_rate=SR, duration=1.0, **PARAMS))
        t0 = time.perf_counter()
        compute_images(batch, ex)
        t_stft = time.perf_counter() - t0
    n = len(paths)
    return {"decode_ms": 1e3 * t_decode / n, "resample_ms": 1e3 * t_res / n, "stft_mel_ms": 1e3 * t_stft / n}


_MEM_CHILD = """
import json, resource, sys
from spectro import FeatureConfig, preprocess
cfg = FeatureConfig(sample_rate=16000, duration=1.0, n_fft=512, hop_length=160, n_mels=64)
preprocess(sys.argv[1], sys.argv[2], config=cfg, workers=int(sys.argv[3]), progress=False)
# VmHWM, not ru_maxrss: ru_maxrss survives exec, so it would report the
# benchmark parent's peak; VmHWM belongs to this process's own address space.
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"main_mb": hwm / 1024,
                  "worker_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def peak_memory(root: str, out: str, workers: int) -> dict[str, float]:
    proc = subprocess.run([sys.executable, "-c", _MEM_CHILD, root, out, str(workers)], capture_output=True,
                          text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=2000)
    ap.add_argument("--big", type=int, default=8000, help="corpus size for the second memory reading (0: skip)")
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu", help="cuda: also the STFTs on the GPU, against the CPU path "
                    "(clips/s side by side; the rest is skipped)")
    args = ap.parse_args()
    if args.device != "cpu":
        return against_cpu(args)

    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "src")
        paths = make_corpus(src, args.clips)
        print(f"corpus: {len(paths)} clips of 1 s at {SR_IN} Hz; {os.cpu_count()} CPUs; workers={args.workers}")
        hand_loop(paths[:20])  # warm-up: librosa's first calls compile and cache
        spectro_run(src, os.path.join(tmp, "warm"), args.workers)
        hand, ours = [], []
        for r in range(args.repeats):  # interleaved, best of N for each
            hand.append(hand_loop(paths))
            ours.append(spectro_run(src, os.path.join(tmp, f"st{r}"), args.workers))
        n = len(paths)
        hand_rate, our_rate = n / min(hand), n / min(ours)
        print(f"hand loop (librosa.load + melspectrogram + power_to_db): {hand_rate:8.0f} clips/s "
              f"({1e3 * min(hand) / n:.3f} ms/clip)")
        print(f"spectro preprocess (API, {args.workers} workers):          {our_rate:8.0f} clips/s "
              f"({1e3 * min(ours) / n:.3f} ms/clip)")
        print(f"ratio spectro / hand loop: {our_rate / hand_rate:.2f}x  (target >= 3x)")

        fl = floor_per_clip(paths)
        one_core = sum(fl.values())
        floor_rate = (args.workers or 1) / (one_core / 1e3)
        print("single-core floor per clip: " + ", ".join(f"{k} {v:.3f}" for k, v in fl.items())
              + f"; total {one_core:.3f} ms = {1e3 / one_core:.0f} clips/s per core "
              f"({(1e3 / one_core) / hand_rate:.2f}x the hand loop)")
        print(f"spectro reaches {our_rate / floor_rate:.0%} of the floor on {args.workers} cores "
              f"({floor_rate:.0f} clips/s)")

        mem = peak_memory(src, os.path.join(tmp, "mem1"), args.workers)
        print(f"peak RSS at {n} clips: main {mem['main_mb']:.0f} MB, largest worker {mem['worker_mb']:.0f} MB")
        if args.big:
            make_corpus(os.path.join(tmp, "big"), args.big, seed=1)
            mem = peak_memory(os.path.join(tmp, "big"), os.path.join(tmp, "mem2"), args.workers)
            print(f"peak RSS at {args.big} clips: main {mem['main_mb']:.0f} MB, "
                  f"largest worker {mem['worker_mb']:.0f} MB")


def against_cpu(args: argparse.Namespace) -> None:
    """preprocess with its STFTs on ``args.device`` against the CPU path, interleaved, best of N each."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "src")
        n = len(make_corpus(src, args.clips))
        spectro_run(src, os.path.join(tmp, "warm"), args.workers, args.device)
        cpu, dev = [], []
        for r in range(args.repeats):
            cpu.append(spectro_run(src, os.path.join(tmp, f"cpu{r}"), args.workers, "cpu"))
            dev.append(spectro_run(src, os.path.join(tmp, f"dev{r}"), args.workers, args.device))
        print(f"preprocess {n} clips, {args.workers} workers: cpu {n / min(cpu):.0f} clips/s, "
              f"{args.device} {n / min(dev):.0f} clips/s, ratio {min(cpu) / min(dev):.2f}x")


if __name__ == "__main__":
    main()
