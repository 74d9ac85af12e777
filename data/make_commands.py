"""Speak ten command words with every English voice of three speech synthesisers: one class per word.

A data set for group-aware benchmarks (benchmarks/bench_accuracy.py): the ten
command words of Speech Commands (Warden 2018: yes, no, up, down, left, right,
on, off, stop, go) from espeak-ng (formant synthesis: 8 English dialects x
``ESPEAK_VARIANTS`` voice variants), flite (CMU's diphone and clustergen
voices kal, kal16, awb, awb_time, rms, slt) and festival (kal_diphone,
ked_diphone, cmu_us_slt_arctic_hts), each at 3 speaking rates.

Two manifests, two questions:

* ``manifest.csv``: groups are **speakers**, so a leave-group-out fold asks
  "does a classifier recognise the word from a voice it never heard?". An
  espeak-ng variant (m3, f2, klatt...) is one synthetic speaker in every
  dialect (its dialects differ in pronunciation, not in voice), so the group
  is the variant. CMU's voices are recordings of people, and one person's
  recordings are one group whatever engine plays them: flite's kal, kal16 and
  festival's kal_diphone are Kevin Lenzo's diphones (``kal``), flite's awb and
  awb_time Alan W Black's (``awb``), flite's slt and festival's slt HTS voice
  the same ARCTIC speaker (``slt``); rms and ked stand alone.
* ``manifest-engine.csv``: groups are the two **engines' lineages**,
  ``espeak`` (formant synthesis by rule) and ``cmu`` (flite and festival,
  which share CMU's recordings, so they are one group): with 2 folds, a
  classifier trained on one engine is tested on the other.

Each clip: the synthesiser's WAV, mixed to mono, trimmed of leading and
trailing silence (``librosa.effects.trim``, 40 dB), resampled to ``--rate``
(16 kHz) with soxr (HQ; kal is an 8 kHz voice and keeps its 4 kHz band),
peak-normalised to 0.9 times a seeded gain of 0 to -6 dB, written as 16-bit
FLAC to ``OUT/<word>/<engine>_<voice>_<rate>.flac``.

Usage::

    apt-get install espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts
    python data/make_commands.py --out ~/.cache/spectro-bench/commands

A missing engine or voice is skipped with a note; the script fails (exit 1)
when fewer than two engines' lineages remain.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zlib

import librosa
import numpy as np
import soundfile as sf
import soxr

from make_instruments import generator_args, write_manifest  # data/make_instruments.py

WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
ESPEAK_DIALECTS = ("en-gb", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd",
                   "en-029", "en-us-nyc")
ESPEAK_VARIANTS = ("m1", "m3", "m5", "m7", "f1", "f2", "f4", "klatt", "klatt3", "croak", "Alex", "Annie")
ESPEAK_SPEEDS = (130, 175, 220)  # words per minute
STRETCH = (0.8, 1.0, 1.25)  # flite's and festival's duration stretch (slower is longer)
#: flite voice -> the speaker (group)
FLITE = {"kal": "kal", "kal16": "kal", "awb": "awb", "awb_time": "awb", "rms": "rms", "slt": "slt"}
#: festival voice -> the speaker (group)
FESTIVAL = {"kal_diphone": "kal", "ked_diphone": "ked", "cmu_us_slt_arctic_hts": "slt"}


def note(msg: str) -> None:
    print(f"make_commands: {msg}", file=sys.stderr)


def espeak(word: str, voice: str, speed: int, wav: str) -> None:
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", wav, word], check=True,
                   capture_output=True)


def flite(word: str, voice: str, stretch: float, wav: str) -> None:
    subprocess.run(["flite", "-voice", voice, "--setf", f"duration_stretch={stretch}", "-t", word, "-o", wav],
                   check=True, capture_output=True)


def festival(word: str, voice: str, stretch: float, wav: str, tmp: str) -> None:
    txt = os.path.join(tmp, "word.txt")
    with open(txt, "w") as f:
        f.write(word + "\n")
    subprocess.run(["text2wave", "-eval", f"(voice_{voice})", "-eval",
                    f"(Parameter.set 'Duration_Stretch {stretch})", txt, "-o", wav], check=True, capture_output=True)


def jobs() -> list[tuple[str, str, str, str, object]]:
    """(engine, voice, speaker group, engine lineage, rate setting) of every voice to speak with."""
    out = []
    if shutil.which("espeak-ng"):
        for variant in ESPEAK_VARIANTS:
            for dialect in ESPEAK_DIALECTS:
                for speed in ESPEAK_SPEEDS:
                    out.append(("espeak", f"{dialect}+{variant}", f"espeak-{variant.lower()}", "espeak", speed))
    else:
        note("skipping espeak-ng: not installed (apt-get install espeak-ng)")
    if shutil.which("flite"):
        have = subprocess.run(["flite", "-lv"], capture_output=True, text=True).stdout.split()
        for voice, speaker in FLITE.items():
            if voice in have:
                out += [("flite", voice, speaker, "cmu", s) for s in STRETCH]
            else:
                note(f"skipping flite voice {voice}: not built in")
    else:
        note("skipping flite: not installed (apt-get install flite)")
    if shutil.which("text2wave"):
        for voice, speaker in FESTIVAL.items():
            out += [("festival", voice, speaker, "cmu", s) for s in STRETCH]
    else:
        note("skipping festival: not installed (apt-get install festival festvox-kallpc16k ...)")
    return out


def make(out: str, *, rate: int = 16000, seed: int = 20261207) -> list[dict]:
    rows, failed = [], set()
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wav = os.path.join(tmp, "w.wav")
        for engine, voice, speaker, lineage, setting in jobs():
            if (engine, voice) in failed:
                continue
            for word in WORDS:
                try:
                    if engine == "espeak":
                        espeak(word, voice, setting, wav)
                    elif engine == "flite":
                        flite(word, voice, setting, wav)
                    else:
                        festival(word, voice, setting, wav, tmp)
                    x, r = sf.read(wav, dtype="float64", always_2d=True)
                except (subprocess.CalledProcessError, RuntimeError, sf.LibsndfileError) as err:
                    note(f"skipping {engine} voice {voice}: {type(err).__name__} on {word!r}")
                    failed.add((engine, voice))
                    break
                x = x.mean(axis=1)
                if x.size == 0 or np.abs(x).max() < 1e-4:
                    note(f"skipping {engine} voice {voice}: {word!r} came out silent")
                    failed.add((engine, voice))
                    break
                x, _ = librosa.effects.trim(x, top_db=40)
                x = soxr.resample(x, r, rate, quality="HQ") if r != rate else x
                gain_db = np.random.default_rng(zlib.crc32(f"{seed}/{voice}/{setting}/{word}".encode())).uniform(-6, 0)
                x = x / np.abs(x).max() * 0.9 * 10 ** (gain_db / 20)
                tag = voice.replace("+", "_")
                rel = os.path.join(word, f"{engine}_{tag}_{setting}.flac")
                os.makedirs(os.path.join(out, word), exist_ok=True)
                sf.write(os.path.join(out, rel), x.astype(np.float32), rate, subtype="PCM_16", format="FLAC")
                rows.append({"path": rel, "label": word, "group": speaker, "engine": lineage,
                             "voice": f"{engine}:{voice}", "setting": setting})
        # a voice that failed part-way leaves no clips
        rows = [r for r in rows if tuple(r["voice"].split(":", 1)) not in failed]
    if len({r["engine"] for r in rows}) < 2:
        raise SystemExit("make_commands: fewer than two engine lineages could speak; install espeak-ng and flite")
    for name, group in (("manifest.csv", "group"), ("manifest-engine.csv", "engine")):
        write_manifest(os.path.join(out, name), ["path", "label", "group", "speaker", "engine", "voice", "setting"],
                       [{**r, "group": r[group], "speaker": r["group"]} for r in rows])
    return rows


def main(argv: list[str] | None = None) -> int:
    args = generator_args(__doc__, argv, seed=20261207)
    rows = make(args.out, rate=args.rate, seed=args.seed)
    print(f"make_commands: {len(rows)} clips, {len(WORDS)} words, {len({r['group'] for r in rows})} speakers, "
          f"{len({r['engine'] for r in rows})} engine lineages, {len({r['voice'] for r in rows})} voices in "
          f"{args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
