"""Synthetic bearing vibration in the Case Western layout: MATLAB .mat files of drive-end and fan-end signals.

The Case Western Reserve University bearing data set (the field's standard
benchmark) is one ``.mat`` file per recording holding ``X097_DE_time`` (drive
end accelerometer, ``(n, 1)``), ``X097_FE_time`` (fan end) and the scalar
``X097RPM``, at 12 kHz, for a healthy bearing and for faults seeded in the
inner race, the outer race and a ball, at four motor loads (0-3 HP, shaft
speeds 1797, 1772, 1750 and 1730 rpm). This script writes files of the same
layout from a model of what such a bearing produces, so spectro's vibration
path can be tried without downloading anything:

* shaft rotation: the first harmonics of the shaft speed ``fr`` (an
  imbalance and a misalignment), with a small random phase and level;
* fault impulses at the characteristic frequencies of the drive-end bearing
  of the set, an SKF 6205-2RS JEM (9 balls, ball diameter 0.3126 in, pitch
  diameter 1.537 in, contact angle 0): ``BPFO = n/2 fr (1 - d/D)`` (outer
  race, 3.585 fr), ``BPFI = n/2 fr (1 + d/D)`` (inner race, 5.415 fr) and
  ``BSF = D/(2d) fr (1 - (d/D)^2)`` (ball spin, 2.357 fr; a ball defect
  strikes both races: twice per spin). Each impulse time jitters by 2 % of a period
  (rolling elements slip), an inner-race defect's impulses are modulated by
  the shaft rotation (the defect passes through the load zone once a turn)
  and a ball's by the cage (``FTF = fr/2 (1 - d/D)``);
* every impulse rings the structure's resonances (drive end about 3.0 and
  4.2 kHz, fan end 2.6 kHz, each recording its own within a few per cent) as
  decaying sinusoids of a few milliseconds; the fault size (0.007, 0.014,
  0.021 in, as in the set) sets their amplitude;
* white measurement noise, and a load-dependent level.

Files: ``OUT/<class>/<CODE><size>_<load>HP.mat`` (``normal/N1_0HP.mat``,
``inner_race/IR014_2HP.mat``), classes normal, inner_race, outer_race, ball;
per class and load three recordings (three fault sizes; three healthy runs),
so 48 files of ``--seconds`` (10) s at ``--rate`` (12000) Hz, about 92 MB (two signals each) of
float64 as the set stores. Each file's variable number (``X097``...) is
unique, as in the set. The same seed writes the same files.

What it cannot show: real faults are not this regular, real machines add
gear mesh, electrical noise, sensor mounting and transfer paths that change
with load, and real defect sizes and resonances are not drawn from a few
numbers. A classifier that separates these classes has learned the model's
impulse rates and resonances, and the load shift it survives here (only the
speed changes, by 4 %) is gentler than a real one.

Usage::

    python data/make_bearings.py --out ~/bearings            # 48 files, about 92 MB
    spectro preprocess ~/bearings --out vib --sample-rate 12000 --mat-key '_DE_time$' \\
        --window 0.25 --hop 0.125 --fold-regex '_(\\d)HP'
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import scipy.io
from scipy.signal import fftconvolve

#: SKF 6205-2RS JEM, the drive-end bearing of the Case Western set (inches)
BALLS, BALL_D, PITCH_D = 9, 0.3126, 1.537
#: Motor load (HP) -> shaft speed (rpm), as recorded in the set
LOADS = {0: 1797, 1: 1772, 2: 1750, 3: 1730}
FAULT_SIZES = ("007", "014", "021")
CLASSES = {"normal": "N", "inner_race": "IR", "outer_race": "OR", "ball": "B"}


def fault_frequencies(rpm: float) -> dict[str, float]:
    """Shaft, cage (FTF), outer race (BPFO), inner race (BPFI) and ball spin (BSF) frequencies in Hz."""
    fr = rpm / 60.0
    ratio = BALL_D / PITCH_D
    return {"fr": fr, "ftf": fr / 2 * (1 - ratio), "bpfo": BALLS / 2 * fr * (1 - ratio),
            "bpfi": BALLS / 2 * fr * (1 + ratio), "bsf": PITCH_D / (2 * BALL_D) * fr * (1 - ratio ** 2)}


def ringing(rate: int, freqs: list[float], decay_s: float, rng: np.random.Generator) -> np.ndarray:
    """The structure's answer to one impact: decaying sinusoids at its resonances [shape=(k,)]."""
    t = np.arange(int(rate * decay_s * 6)) / rate
    out = np.zeros_like(t)
    for f in freqs:
        out += rng.uniform(0.6, 1.0) * np.exp(-t / decay_s) * np.sin(2 * np.pi * f * t + rng.uniform(0, np.pi))
    return out


def recording(kind: str, load: int, size: float, *, rate: int, seconds: float,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    """Drive-end and fan-end signals [shape=(n,)] of one recording, and its shaft speed in rpm."""
    rpm = LOADS[load] + rng.normal(0, 1.5)
    f = fault_frequencies(rpm)
    n = int(rate * seconds)
    t = np.arange(n) / rate
    shaft = sum(a * np.sin(2 * np.pi * h * f["fr"] * t + rng.uniform(0, 2 * np.pi))
                for h, a in ((1, 0.05), (2, 0.02), (3, 0.008)))
    de = shaft + rng.normal(0, 0.03 + 0.005 * load, n)
    fe = 0.6 * shaft + rng.normal(0, 0.03, n)
    if kind != "normal":
        rate_hz = {"inner_race": f["bpfi"], "outer_race": f["bpfo"], "ball": 2 * f["bsf"]}[kind]
        k = np.arange(int(seconds * rate_hz))
        times = (k + rng.normal(0, 0.02, k.size)) / rate_hz + rng.uniform(0, 1 / rate_hz)  # slip: 2 % of a period
        times = times[(times >= 0) & (times < seconds)]
        amp = size * (1 + 0.1 * load) * rng.uniform(0.8, 1.2, times.size)
        if kind == "inner_race":  # the defect turns with the shaft through the load zone
            amp *= 0.4 + 0.6 * (1 + np.cos(2 * np.pi * f["fr"] * times)) / 2
        elif kind == "ball":  # the ball travels with the cage
            amp *= 0.5 + 0.5 * (1 + np.cos(2 * np.pi * f["ftf"] * times)) / 2
        spikes = np.zeros(n)
        np.add.at(spikes, np.minimum((times * rate).astype(int), n - 1), amp)
        res = rng.uniform(0.97, 1.03)
        de += fftconvolve(spikes, ringing(rate, [3000 * res, 4200 * res], 0.0012, rng))[:n]
        fe += 0.35 * fftconvolve(spikes, ringing(rate, [2600 * res], 0.0015, rng))[:n]
    return de, fe, rpm


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="folder to write the class folders into")
    p.add_argument("--rate", type=int, default=12000, help="sample rate in Hz (default %(default)s)")
    p.add_argument("--seconds", type=float, default=10.0, help="length of each recording (default %(default)s)")
    p.add_argument("--seed", type=int, default=20261207)
    args = p.parse_args(argv)
    number = 97  # the set's first file, normal at 0 HP, is 97.mat
    sizes = {"N": (0.0,) * 3, **{c: tuple(int(s) / 1000 * 40 for s in FAULT_SIZES) for c in ("IR", "OR", "B")}}
    written = 0
    for label, code in CLASSES.items():
        os.makedirs(os.path.join(args.out, label), exist_ok=True)
        for load in LOADS:
            for j, size in enumerate(sizes[code]):
                rng = np.random.default_rng([args.seed, number])
                de, fe, rpm = recording(label, load, size, rate=args.rate, seconds=args.seconds, rng=rng)
                name = f"{code}{j + 1}" if code == "N" else f"{code}{FAULT_SIZES[j]}"
                key = f"X{number:03d}"
                scipy.io.savemat(os.path.join(args.out, label, f"{name}_{load}HP.mat"),
                                 {f"{key}_DE_time": de[:, None], f"{key}_FE_time": fe[:, None],
                                  f"{key}RPM": np.array([[round(rpm)]], dtype=np.float64)})
                number += 1
                written += 1
    print(f"wrote {written} recordings of {args.seconds:g} s at {args.rate} Hz "
          f"({len(CLASSES)} classes x {len(LOADS)} loads x 3) to {args.out}")


if __name__ == "__main__":
    main()
