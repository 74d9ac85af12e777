"""Training speed: spectro's ResNets against torchvision's, and the store's loader against the model.

Everything runs in this one process, interleaved (round-robin over the
configurations, several rounds, the median kept), so a slow moment of a
shared machine hits every configuration alike. Reported as ratios.

1. Training samples/s (forward, backward, optimizer step) of spectro's
   resnet18 / resnet34 and torchvision's with a 1-channel first conv, same
   input (B, 1, 64, 101), at three precisions: fp32, fp32 + channels_last,
   and the mixed-precision path (channels_last + bf16 autocast; on CUDA, and
   on CPUs with native bf16).
2. The same through spectro's own Trainer (normalisation on the device,
   batches from the memory-mapped store), i.e. what ``spectro train`` gets.
3. Minibatches/s the store's loader delivers (memory map -> float16 batch
   tensors, shuffled) against minibatches/s the model consumes.

Targets (the issue): spectro >= 1.0x torchvision at the same precision;
mixed precision >= 1.5x torchvision's fp32; loader >= 20x the model.

With ``--practitioner`` it measures instead what issue 29 asks of a GPU:
(a) the loop a practitioner writes (torchvision's ResNet with a 1-channel
conv1, a DataLoader over the numpy array with workers and pinned memory,
float32, the default memory format) against (b) ``spectro train`` as shipped
(its Trainer with the default precision, channels_last and the rows resident
on the device when they fit), samples/s side by side and their ratio (the
target is at least 3x on a GPU), with the GPU's utilisation sampled from
``nvidia-smi`` during (b).

Usage::

    python benchmarks/bench_train.py [--batch-size 32] [--rounds 3] [--steps 4] [--device auto]
    python benchmarks/bench_train.py --practitioner --device cuda --batch-size 256 --shape 1x64x101
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from spectro.config import TrainConfig
from spectro.dataset.feed import StoreImages, epoch_batches, make_loader
from spectro.models import build
from spectro.training.distributed import Distributed
from spectro.training.loop import LoopState, Trainer
from spectro.utils.device import choose_precision, select_device

SHAPE = (1, 64, 101)
CLASSES = 10


def torchvision_resnet(name: str) -> nn.Module:
    import torchvision

    model = getattr(torchvision.models, name)(num_classes=CLASSES)
    model.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)  # 1-channel input
    return model


PRECISIONS = {  # name -> (channels_last, autocast dtype)
    "fp32": (False, None),
    "fp32+cl": (True, None),
    "bf16+cl": (True, torch.bfloat16),
}


class StepTimer:
    """One model at one precision: times ``steps`` training steps per call."""

    def __init__(self, model: nn.Module, precision: str, device: torch.device, batch: int) -> None:
        self.cl, self.dtype = PRECISIONS[precision]
        self.device = device
        self.model = model.to(device)
        if self.cl:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(batch, *SHAPE, generator=g).to(device)
        if self.cl:
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        self.y = torch.randint(0, CLASSES, (batch,), generator=g).to(device)
        self.model.train()

    def step(self) -> None:
        with torch.autocast(self.device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None):
            loss = F.cross_entropy(self.model(self.x), self.y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def __call__(self, steps: int) -> float:
        """Samples per second over ``steps`` steps."""
        _sync(self.device)
        t = time.perf_counter()
        for _ in range(steps):
            self.step()
        _sync(self.device)
        return steps * self.x.shape[0] / (time.perf_counter() - t)


class TrainerTimer:
    """spectro's Trainer on a memory-mapped store of random images: what ``spectro train`` runs."""

    def __init__(self, name: str, features: np.ndarray, device: torch.device, batch: int,
                 amp: bool | None, resident: bool | None = None) -> None:
        y = np.arange(len(features)) % CLASSES
        cfg = TrainConfig(model=name, epochs=1000, batch_size=batch, amp=amp, device=device.type, workers=0)
        self.data = StoreImages(features, y, np.arange(len(features)))
        precision = choose_precision(device.type, amp, None)
        c_f = tuple(features.shape[1:3])  # (channels, frequency) of the images
        self.trainer = Trainer(build(name, CLASSES), cfg, self.data, None, mean=np.zeros(c_f, np.float32),
                               std=np.ones(c_f, np.float32), device=device, precision=precision,
                               dist=Distributed(), num_classes=CLASSES, resident=resident)
        self.state = LoopState()
        self.device = device

    def __call__(self, steps: int) -> float:
        # One "epoch" of `steps` batches: stop once they are done.
        start = self.state.run_seen
        self.state.batch = 0
        batches = self.trainer.steps_per_epoch
        self.state.batch = max(0, batches - steps)
        _sync(self.device)
        t = time.perf_counter()
        self.trainer.train_epoch(self.state, stop=lambda: False)
        _sync(self.device)
        seen = self.state.run_seen - start
        self.state.epoch += 1
        self.state.reset_running()
        return seen / (time.perf_counter() - t)


def loader_rate(features: np.ndarray, batch: int, batches: int) -> float:
    """Minibatches/s of the store loader (workers=0): shuffled reads from the memory map."""
    data = StoreImages(features, np.zeros(len(features), np.int64), np.arange(len(features)))
    order = epoch_batches(len(features), batch, epoch=0, seed=0, drop_last=True)[:batches]
    t = time.perf_counter()
    n = 0
    for x, y in make_loader(data, order):
        n += 1
    return n / (time.perf_counter() - t)


def native_cpu_bf16() -> bool:
    """AVX-512 BF16 or AMX: the CPU computes bf16 in hardware (whether that is faster is measured here)."""
    checks = [getattr(torch.cpu, n, None) for n in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(bool(c()) for c in checks if c is not None)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def random_features(folder: str, n_rows: int, shape: tuple) -> np.ndarray:
    """A memory-mapped float16 array of random images, as a store's features.npy is read."""
    path = os.path.join(folder, "features.npy")
    np.save(path, np.random.default_rng(0).standard_normal((n_rows, *shape)).astype(np.float16))
    return np.load(path, mmap_mode="r")


class PractitionerTimer:
    """The loop a practitioner writes: torchvision's ResNet, a DataLoader of single examples, float32."""

    class Rows(torch.utils.data.Dataset):
        def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
            self.x, self.y = x, y

        def __len__(self) -> int:
            return len(self.y)

        def __getitem__(self, i: int):
            return torch.from_numpy(np.asarray(self.x[i], dtype=np.float32)), int(self.y[i])

    def __init__(self, name: str, features: np.ndarray, device: torch.device, batch: int, workers: int) -> None:
        y = np.arange(len(features)) % CLASSES
        self.loader = torch.utils.data.DataLoader(self.Rows(features, y), batch_size=batch, shuffle=True,
                                                  drop_last=True, num_workers=workers,
                                                  pin_memory=device.type == "cuda",
                                                  persistent_workers=workers > 0)
        self.model = torchvision_resnet(name).to(device).train()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.device = device
        self.batches = iter(())

    def _next(self):
        try:
            return next(self.batches)
        except StopIteration:
            self.batches = iter(self.loader)
            return next(self.batches)

    def __call__(self, steps: int) -> float:
        _sync(self.device)
        t = time.perf_counter()
        seen = 0
        for _ in range(steps):
            x, y = self._next()
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            loss = F.cross_entropy(self.model(x), y)
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            seen += len(y)
        _sync(self.device)
        return seen / (time.perf_counter() - t)


class Utilisation:
    """GPU utilisation (%) sampled by ``nvidia-smi`` every 200 ms while the block runs (empty without it)."""

    def __enter__(self) -> "Utilisation":
        self.samples: list[int] = []
        self.proc = None
        if shutil.which("nvidia-smi"):
            self.proc = subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                          "-lms", "200"], stdout=subprocess.PIPE, text=True)
            self.thread = threading.Thread(target=self._read, daemon=True)
            self.thread.start()
        return self

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.strip().split(",")[0].strip().isdigit():
                self.samples.append(int(line.strip().split(",")[0]))

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait()

    def summary(self) -> str:
        if not self.samples:
            return "GPU utilisation: not sampled (no nvidia-smi)"
        return (f"GPU utilisation during (b): median {statistics.median(self.samples):.0f} %, "
                f"mean {statistics.mean(self.samples):.0f} % over {len(self.samples)} samples")


def data_paths(args: argparse.Namespace, device: torch.device) -> int:
    """spectro's Trainer fed from the rows resident on the device against the memory-map loader."""
    with tempfile.TemporaryDirectory() as tmp:
        features = random_features(tmp, max(2048, args.batch_size * (args.steps + 2)), SHAPE)
        for name in args.models.split(","):
            timers = {}
            for resident in (True, False):
                torch.manual_seed(0)
                timers[resident] = TrainerTimer(name, features, device, args.batch_size, amp=None, resident=resident)
                timers[resident](1)
            rates = {k: [] for k in timers}
            for _ in range(args.rounds):
                for k, t in timers.items():
                    rates[k].append(t(args.steps))
            r, m = statistics.median(rates[True]), statistics.median(rates[False])
            print(f"{name} on {device}, batch {args.batch_size} x {' x '.join(map(str, SHAPE))}: resident {r:.1f} "
                  f"samples/s, memory-map loader {m:.1f} samples/s, ratio {r / m:.2f}x "
                  f"(median of {args.rounds} interleaved rounds of {args.steps} steps)", flush=True)
    return 0


def practitioner(args: argparse.Namespace, device: torch.device) -> int:
    shape = tuple(int(v) for v in args.shape.split("x"))
    workers = args.workers if args.workers is not None else min(8, os.cpu_count() or 1)
    print(f"device {device}; torch {torch.__version__}; batch {args.batch_size} x {' x '.join(map(str, shape))}; "
          f"spectro's default precision here: {choose_precision(device.type).describe()}; practitioner's "
          f"DataLoader: {workers} workers; median of {args.rounds} interleaved rounds of {args.steps} steps",
          flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        features = random_features(tmp, max(4096, args.batch_size * (args.steps + 2)), shape)
        for name in args.models.split(","):
            torch.manual_seed(0)
            a = PractitionerTimer(name, features, device, args.batch_size, workers)
            torch.manual_seed(0)
            b = TrainerTimer(name, features, device, args.batch_size, amp=None)
            print(f"  {name}: spectro's data path: {b.trainer.residency.reason}; precision "
                  f"{b.trainer.precision_note()}", flush=True)
            a(2)
            b(2)  # warm-up: cuDNN picks its kernels, workers start
            ra, rb = [], []
            with Utilisation() as util:
                for _ in range(args.rounds):
                    ra.append(a(args.steps))
                    rb.append(b(args.steps))
            ma, mb = statistics.median(ra), statistics.median(rb)
            print(f"{name}: (a) practitioner {ma:.0f} samples/s; (b) spectro train {mb:.0f} samples/s; "
                  f"ratio {mb / ma:.2f}x (target >= 3 on a GPU); {util.summary()}", flush=True)
            del a, b
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is kept")
    p.add_argument("--steps", type=int, default=4, help="training steps per measurement")
    p.add_argument("--models", default="resnet18,resnet34")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--practitioner", action="store_true",
                   help="the practitioner's loop against spectro train as shipped (see above)")
    p.add_argument("--shape", default="x".join(map(str, SHAPE)), help="CxFxT image shape (--practitioner)")
    p.add_argument("--workers", type=int, help="the practitioner's DataLoader workers (default min(8, cores))")
    p.add_argument("--data-paths", action="store_true",
                   help="spectro's Trainer on resident rows against the memory-map loader")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)
    if args.practitioner:
        return practitioner(args, device)
    if args.data_paths:
        return data_paths(args, device)
    mixed = device.type == "cuda" or native_cpu_bf16()
    default = choose_precision(device.type).describe()
    print(f"device {device}; torch {torch.__version__}; threads {torch.get_num_threads()}; native bf16: {mixed}; "
          f"spectro's default precision here: {default}\nbatch {args.batch_size} x {' x '.join(map(str, SHAPE))}; "
          f"median of {args.rounds} interleaved rounds of {args.steps} steps", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        features = random_features(tmp, max(2048, args.batch_size * (args.steps + 2)), SHAPE)

        timers: dict[tuple[str, str], object] = {}
        for name in args.models.split(","):
            for prec in PRECISIONS:
                if prec.startswith("bf16") and not mixed:
                    continue
                torch.manual_seed(0)
                timers[(f"spectro {name}", prec)] = StepTimer(build(name, CLASSES), prec, device, args.batch_size)
                torch.manual_seed(0)
                timers[(f"torchvision {name}", prec)] = StepTimer(torchvision_resnet(name), prec, device,
                                                                  args.batch_size)
            timers[(f"spectro {name} Trainer", "default")] = TrainerTimer(name, features, device,
                                                                          args.batch_size, amp=None)
            if mixed:
                timers[(f"spectro {name} Trainer", "bf16")] = TrainerTimer(name, features, device,
                                                                           args.batch_size, amp=True)
        for t in timers.values():  # warm-up: oneDNN / cuDNN pick their kernels on first use
            t(1)
        rates: dict[tuple[str, str], list[float]] = {k: [] for k in timers}
        for r in range(args.rounds):
            for key, t in timers.items():
                rates[key].append(t(args.steps))
            print(f"  round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        med = {k: statistics.median(v) for k, v in rates.items()}

        print(f"\n{'model':34s} {'precision':9s} {'samples/s':>10s}")
        for (name, prec), v in med.items():
            print(f"{name:34s} {prec:9s} {v:10.1f}")

        print("\nratios")
        for name in args.models.split(","):
            s, tv = f"spectro {name}", f"torchvision {name}"
            for prec in PRECISIONS:
                if (s, prec) in med:
                    print(f"  {name} {prec:8s} spectro / torchvision (same precision): "
                          f"{med[(s, prec)] / med[(tv, prec)]:.2f}x  (target >= 1.0)")
            if (s, "bf16+cl") in med:
                print(f"  {name} spectro bf16+cl / torchvision fp32: {med[(s, 'bf16+cl')] / med[(tv, 'fp32')]:.2f}x"
                      f"  (target >= 1.5)")
                print(f"  {name} spectro Trainer bf16 / torchvision fp32: "
                      f"{med[(s + ' Trainer', 'bf16')] / med[(tv, 'fp32')]:.2f}x")
            print(f"  {name} spectro Trainer default ({default}) / torchvision fp32: "
                  f"{med[(s + ' Trainer', 'default')] / med[(tv, 'fp32')]:.2f}x")

        # Loader against model, with the fastest model configuration measured.
        fastest = max(med.values()) / args.batch_size  # minibatches/s the model consumes at best
        loads = [loader_rate(features, args.batch_size, 60) for _ in range(args.rounds)]
        load = statistics.median(loads)
        print(f"\nloader: {load:.0f} minibatches/s from the memory map; fastest model consumes "
              f"{fastest:.2f}/s: loader is {load / fastest:.0f}x faster (target >= 20)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
