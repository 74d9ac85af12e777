#!/usr/bin/env python
"""Synthesize the bundled demo data set: spoken English digits (0-9) made with espeak-ng.

Every clip is produced by calling the ``espeak-ng`` command-line synthesizer with one of a
fixed list of "voices" (a base English voice + an espeak-ng variant + a fixed pitch/speed/
amplitude personality). Each voice says every digit three times; each take gets a small
random jitter of pitch, speed and amplitude drawn from a seeded generator, so the output is
reproducible. Clips are trimmed of leading/trailing silence, resampled to 8 kHz mono,
peak-normalised (0.9 times a small random gain) and written as 16-bit FLAC, named like the
Free Spoken Digit Dataset: ``{digit}_{voice}_{take}.flac``.

Usage:
    python data/make_digits.py --out data/digits

Requires the ``espeak-ng`` binary on PATH and numpy, soundfile, librosa and soxr.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
import soxr

SEED = 20240607
SAMPLE_RATE = 8000
TAKES = 3
PEAK = 0.9
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]

# name -> (espeak-ng voice[+variant], pitch 0-99, speed words/min, amplitude 0-200)
# Names are short, lowercase letters/digits, no underscores (the group field of the file name).
# Note: in espeak-ng 1.51 "en-gb+<variant>" silently ignores the variant (it produces the
# plain en-gb voice), so British variants are requested as "en+<variant>" (en is en-gb).
# 20 voices keep the folder under ~5 MB on disk; "en-us+klatt2" (near-duplicate of en-us+klatt)
# and "en+m3" (close to en+m1) were tried and left out.
VOICES: dict[str, tuple[str, int, int, int]] = {
    "m1low": ("en+m1", 30, 150, 100),
    "m2": ("en-us+m2", 45, 165, 90),
    "m4scot": ("en-gb-scotland+m4", 40, 160, 100),
    "m7slow": ("en-us+m7", 35, 125, 120),
    "m8deep": ("en+m8", 20, 140, 130),
    "f1": ("en+f1", 55, 155, 100),
    "f2high": ("en-us+f2", 80, 170, 90),
    "f3fast": ("en+f3", 65, 210, 100),
    "f4rp": ("en-gb-x-rp+f4", 55, 150, 110),
    "f5slow": ("en-029+f5", 70, 130, 100),
    "croak": ("en+croak", 40, 150, 100),
    "whisper": ("en+whisper", 50, 150, 120),
    "whisperf": ("en-us+whisperf", 60, 160, 120),
    "klatt": ("en-us+klatt", 50, 160, 100),
    "klatt4high": ("en+klatt4", 75, 150, 90),
    "grandpa": ("en-gb-x-gbclan+grandpa", 35, 135, 100),
    "grandma": ("en-gb-x-gbcwmd+grandma", 65, 140, 100),
    "nycmax": ("en-us-nyc+max", 45, 180, 100),
    "robosoft": ("en+robosoft", 50, 160, 100),
    "steph": ("en-us+steph", 60, 165, 100),
}

NAME_RE = re.compile(r"^\d_[a-z0-9]+_\d+\.flac$")


def espeak_version() -> str:
    out = subprocess.run(["espeak-ng", "--version"], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def synth(voice: str, pitch: int, speed: int, amp: int, text: str, tmp: Path) -> tuple[np.ndarray, int]:
    wav = tmp / "clip.wav"
    cmd = ["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "-a", str(amp),
           "-w", str(wav), text]
    subprocess.run(cmd, check=True, capture_output=True)
    y, sr = sf.read(wav, dtype="float64", always_2d=True)
    return y.mean(axis=1), sr


def process(y: np.ndarray, sr: int, gain_db: float) -> np.ndarray:
    _, (start, end) = librosa.effects.trim(y, top_db=40)
    margin = int(0.01 * sr)  # keep 10 ms either side so onsets/offsets are not clipped
    y = y[max(0, start - margin): min(len(y), end + margin)]
    y = soxr.resample(y, sr, SAMPLE_RATE, quality="HQ")
    peak = float(np.max(np.abs(y)))
    if peak <= 0:
        raise RuntimeError("silent clip")
    return y * (PEAK * 10 ** (gain_db / 20) / peak)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "digits",
                    help="output folder (flat); existing *.flac clips named like ours are replaced")
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args(argv)

    if shutil.which("espeak-ng") is None:
        print("espeak-ng not found on PATH (apt-get install espeak-ng)", file=sys.stderr)
        return 1
    version = espeak_version()
    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.iterdir():
        if old.is_file() and NAME_RE.match(old.name):
            old.unlink()

    n_clips = 0
    n_bytes = 0
    durations = []
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        for name, (voice, pitch, speed, amp) in VOICES.items():
            for d, word in enumerate(DIGITS):
                for take in range(TAKES):
                    # one generator per clip, keyed by (seed, voice, digit, take): adding or
                    # removing a voice does not change the other voices' clips.
                    rng = np.random.default_rng([args.seed, zlib.crc32(name.encode()), d, take])
                    p = int(np.clip(pitch + rng.integers(-5, 6), 0, 99))
                    s = int(max(80, round(speed * rng.uniform(0.92, 1.08))))
                    a = int(np.clip(round(amp * rng.uniform(0.9, 1.1)), 1, 200))
                    gain_db = float(rng.uniform(-3.0, 0.0))
                    y, sr = synth(voice, p, s, a, word, tmp)
                    y = process(y, sr, gain_db)
                    path = args.out / f"{d}_{name}_{take}.flac"
                    sf.write(path, y, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
                    n_clips += 1
                    n_bytes += path.stat().st_size
                    durations.append(len(y) / SAMPLE_RATE)

    print(version)
    print(f"out: {args.out}")
    print(f"clips: {n_clips}  classes: {len(DIGITS)}  voices: {len(VOICES)}  takes: {TAKES}  "
          f"per class: {n_clips // len(DIGITS)}")
    print(f"sample rate: {SAMPLE_RATE} Hz mono, 16-bit FLAC")
    print(f"duration: min {min(durations):.3f} s  mean {np.mean(durations):.3f} s  "
          f"max {max(durations):.3f} s  total {sum(durations):.1f} s")
    print(f"bytes: {n_bytes} ({n_bytes / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
