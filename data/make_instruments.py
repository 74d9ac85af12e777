"""Render single instrument notes from several independent sample sets into labelled FLAC clips.

A real-recordings data set for group-aware benchmarks (benchmarks/bench_accuracy.py):
10 instrument classes rendered from 5 General MIDI sample sets (soundfonts and
GUS patches) that come from 3 independent lineages of recordings. The group of
a clip is its lineage, not its file: MuseScore General is built on Fluid R3
Mono, and csound's GM bank shares TimGM6mb's samples (their notes correlate at
0.97-1.00 for most instruments, measured when this set was made), so a fold
that held out one file of a lineage would test on samples it trained on. A
leave-group-out fold then asks "does a classifier trained on two lineages
recognise a violin recorded and edited by other people?".

Sample sets (Debian packages; licences in benchmarks/README.md):

=========  =========  ====================================================  ==========
group      file tag   file                                                  renderer
=========  =========  ====================================================  ==========
fluid      fluidr3    /usr/share/sounds/sf2/FluidR3_GM.sf2 (fluid-soundfont-gm)  fluidsynth
fluid      musescore  /usr/share/sounds/sf3/MuseScore_General_Full.sf3 (musescore-general-soundfont)  fluidsynth
timgm      timgm      /usr/share/sounds/sf2/TimGM6mb.sf2 (timgm6mb-soundfont)  fluidsynth
timgm      csound     /usr/share/sounds/sf2/sf_GMbank.sf2 (csound-soundfont)  fluidsynth
freepats   freepats   /etc/timidity/freepats.cfg (freepats, GUS patches)    timidity
=========  =========  ====================================================  ==========

For each sample set, one MIDI file (written here byte by byte: format 0, 960
ticks per second) plays every (instrument, pitch, velocity) note for
``NOTE_S`` seconds, one per ``SLOT_S``-second slot; it is rendered once, dry
(reverb and chorus off), at 44.1 kHz, and cut into clips of ``CLIP_S``
seconds from each slot's start (the note and the start of its release).
Each clip is resampled to ``--rate`` with soxr (HQ), peak-normalised to 0.9
times a seeded gain of 0 to -6 dB, and written as 16-bit FLAC to
``OUT/<label>/<tag>_<pitch>_<velocity>.flac``, with ``OUT/manifest.csv``
(``path,label,group,soundfont``). Renders are deterministic: a re-run with the same
packages writes the same samples.

Usage::

    apt-get install fluidsynth timidity fluid-soundfont-gm musescore-general-soundfont \\
        timgm6mb-soundfont csound-soundfont freepats
    python data/make_instruments.py --out ~/.cache/spectro/instruments [--rate 16000]

A sample set whose file or renderer is missing is skipped with a note; the
script fails (exit 1) when fewer than two groups remain.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

# label -> General MIDI program (0-based) and the MIDI notes played (inside the
# instrument's range in every sample set). FreePats has no marimba (12), so the
# mallet class is the xylophone (13).
INSTRUMENTS = {
    "piano": (0, (48, 60, 72, 84)),
    "xylophone": (13, (65, 72, 79, 86)),
    "organ": (16, (48, 60, 67, 72)),
    "guitar": (24, (45, 52, 59, 64)),
    "bass": (32, (28, 33, 40, 45)),
    "violin": (40, (60, 67, 74, 81)),
    "cello": (42, (38, 45, 52, 57)),
    "trumpet": (56, (58, 65, 70, 77)),
    "clarinet": (71, (52, 58, 65, 72)),
    "flute": (73, (62, 69, 76, 83)),
}
VELOCITIES = (64, 110)
NOTE_S = 1.0  # the key is held this long
SLOT_S = 2.5  # one note per slot: its release dies out before the next note starts
CLIP_S = 1.5  # kept from each slot's start
RENDER_RATE = 44100
TICKS_PER_S = 960  # division 480 per quarter note at the default 120 bpm


@dataclass(frozen=True)
class SampleSet:
    tag: str  # names its files
    group: str  # its lineage of recordings
    path: str
    renderer: str  # "fluidsynth" or "timidity"


SAMPLE_SETS = (
    SampleSet("fluidr3", "fluid", "/usr/share/sounds/sf2/FluidR3_GM.sf2", "fluidsynth"),
    SampleSet("musescore", "fluid", "/usr/share/sounds/sf3/MuseScore_General_Full.sf3", "fluidsynth"),
    SampleSet("timgm", "timgm", "/usr/share/sounds/sf2/TimGM6mb.sf2", "fluidsynth"),
    SampleSet("csound", "timgm", "/usr/share/sounds/sf2/sf_GMbank.sf2", "fluidsynth"),
    SampleSet("freepats", "freepats", "/etc/timidity/freepats.cfg", "timidity"),
)


def notes() -> list[tuple[str, int, int, int]]:
    """Every clip to render: (label, program, MIDI note, velocity), in a fixed order."""
    return [(label, program, pitch, vel) for label, (program, pitches) in INSTRUMENTS.items()
            for pitch in pitches for vel in VELOCITIES]


def _varlen(n: int) -> bytes:
    """A MIDI variable-length quantity."""
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def midi_file(events: list[tuple[str, int, int, int]]) -> bytes:
    """A format-0 MIDI file playing each (label, program, note, velocity) in its own slot.

    Channel 0 only (never 9, the GM percussion channel); a program change
    before each note.
    """
    track = bytearray()
    now = 0
    for i, (_, program, pitch, vel) in enumerate(events):
        on = int(round(i * SLOT_S * TICKS_PER_S))
        off = on + int(round(NOTE_S * TICKS_PER_S))
        track += _varlen(on - now) + bytes([0xC0, program])
        track += _varlen(0) + bytes([0x90, pitch, vel])
        track += _varlen(off - on) + bytes([0x80, pitch, 0])
        now = off
    end = int(round(len(events) * SLOT_S * TICKS_PER_S))
    track += _varlen(end - now) + bytes([0x90, 0, 0])  # a silent event holds the last slot open
    track += _varlen(0) + b"\xff\x2f\x00"  # end of track
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_S // 2)
    return header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)


def render(sample_set: SampleSet, midi_path: str, wav_path: str) -> np.ndarray:
    """Render ``midi_path`` with ``sample_set``: mono float64 at RENDER_RATE."""
    if sample_set.renderer == "fluidsynth":
        cmd = ["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.5", "-r", str(RENDER_RATE),
               "-F", wav_path, "-T", "wav", sample_set.path, midi_path]
    else:
        cmd = ["timidity", "-c", sample_set.path, "-Ow", "--output-mono", "-s", str(RENDER_RATE),
               "-EFreverb=0", "-EFchorus=0", "-A100", "-o", wav_path, midi_path]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    audio, rate = sf.read(wav_path, dtype="float64", always_2d=True)
    if rate != RENDER_RATE:
        raise RuntimeError(f"{sample_set.tag}: rendered at {rate} Hz, asked for {RENDER_RATE}")
    return audio.mean(axis=1)


def available(sample_set: SampleSet) -> str | None:
    """None when the sample set can be rendered here, else why not."""
    if not os.path.exists(sample_set.path):
        return f"{sample_set.path} is missing"
    if shutil.which(sample_set.renderer) is None:
        return f"{sample_set.renderer} is not installed"
    return None


def clip_seed(seed: int, group: str, label: str, pitch: int, vel: int) -> int:
    """A stable per-clip seed (independent of the order and of Python's hash salt)."""
    return zlib.crc32(f"{seed}/{group}/{label}/{pitch}/{vel}".encode())


def usable_sets(sets, prog: str, missing: str) -> list:
    """The sample sets (or fonts) of ``sets`` that render here, each other one named on stderr.

    Fewer than two groups stop ``prog`` with ``missing`` (what to install): a leave-group-out fold needs two.
    """
    usable = []
    for s in sets:
        why = available(s)
        if why:
            print(f"{prog}: skipping {s.tag}: {why}", file=sys.stderr)
        else:
            usable.append(s)
    if len({s.group for s in usable}) < 2:
        raise SystemExit(f"{prog}: {missing}")
    return usable


def write_note(out: str, s: SampleSet, label: str, pitch: int, vel: int, x: np.ndarray, *, rate: int,
               seed: int) -> dict:
    """One rendered note (at RENDER_RATE) resampled to ``rate``, at its clip's gain, as OUT/label/tag_pitch_vel.flac.

    Returns its manifest row.
    """
    x = soxr.resample(x, RENDER_RATE, rate, quality="HQ")
    gain_db = np.random.default_rng(clip_seed(seed, s.tag, label, pitch, vel)).uniform(-6, 0)
    x = x / np.abs(x).max() * 0.9 * 10 ** (gain_db / 20)
    rel = os.path.join(label, f"{s.tag}_{pitch}_{vel}.flac")
    os.makedirs(os.path.join(out, label), exist_ok=True)
    sf.write(os.path.join(out, rel), x.astype(np.float32), rate, subtype="PCM_16", format="FLAC")
    return {"path": rel, "label": label, "group": s.group, "soundfont": s.tag}


def make(out: str, *, rate: int = 16000, seed: int = 20251123) -> list[dict]:
    """Render every available sample set into ``out``; return the manifest rows."""
    events = notes()
    rows = []
    usable = usable_sets(SAMPLE_SETS, "make_instruments", "fewer than two groups of sample sets can be rendered; "
                         "install fluidsynth timidity fluid-soundfont-gm timgm6mb-soundfont freepats")
    os.makedirs(out, exist_ok=True)
    slot, clip = int(round(SLOT_S * RENDER_RATE)), int(round(CLIP_S * RENDER_RATE))
    with tempfile.TemporaryDirectory() as tmp:
        midi_path = os.path.join(tmp, "notes.mid")
        with open(midi_path, "wb") as f:
            f.write(midi_file(events))
        for s in usable:
            audio = render(s, midi_path, os.path.join(tmp, f"{s.tag}.wav"))
            for i, (label, _, pitch, vel) in enumerate(events):
                x = audio[i * slot: i * slot + clip]
                x = np.pad(x, (0, clip - len(x)))
                if np.abs(x).max() < 1e-4:
                    raise RuntimeError(f"{s.tag}: {label} note {pitch} velocity {vel} rendered silent")
                rows.append(write_note(out, s, label, pitch, vel, x, rate=rate, seed=seed))
    write_manifest(os.path.join(out, "manifest.csv"), ["path", "label", "group", "soundfont"], rows)
    return rows


def write_manifest(path: str, fields: list[str], rows) -> None:
    """A data set's manifest: one row per clip under ``fields`` (what ``spectro preprocess --manifest`` reads)."""
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)


def generator_args(doc: str, argv: list[str] | None, *, seed: int) -> argparse.Namespace:
    """The options every data/make_*.py generator takes: --out, --rate and --seed (default ``seed``)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output folder (replaced clips, manifest.csv)")
    parser.add_argument("--rate", type=int, default=16000, help="sample rate of the clips (Hz)")
    parser.add_argument("--seed", type=int, default=seed, help="seed of the per-clip gains")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = generator_args(__doc__, argv, seed=20251123)
    rows = make(args.out, rate=args.rate, seed=args.seed)
    size = sum(os.path.getsize(os.path.join(args.out, r["path"])) for r in rows)
    groups = sorted({r["group"] for r in rows})
    tags = sorted({r["soundfont"] for r in rows})
    print(f"make_instruments: {len(rows)} clips, {len(INSTRUMENTS)} classes, {len(tags)} sample sets "
          f"({', '.join(tags)}) in {len(groups)} groups ({', '.join(groups)}), {size / 1e6:.1f} MB of FLAC "
          f"in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
