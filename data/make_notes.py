"""Render 16 instruments over their range from six General MIDI sample sets in four lineages: a large notes set.

The wide sibling of data/make_instruments.py (same renderer, same MIDI writer,
same per-clip processing; see there): 16 instrument classes, each at 8 pitches
over its range and 3 velocities, from FluidR3 and MuseScore General (lineage
``fluid``), TimGM6mb and csound's GM bank (``timgm``), FreePats (``freepats``,
GUS patches played by timidity) and the OPL-3 FM bank (``opl3``,
``opl3-soundfont``: FM synthesis, no recordings at all). Groups are the
lineages, so 4 leave-one-lineage-out folds ask "does a classifier trained on
three sample libraries recognise a cello from a fourth?". A note a sample set
leaves silent (FreePats lacks some programs) is skipped and counted.

Clips: ``OUT/<label>/<tag>_<pitch>_<velocity>.flac``, 1.5 s from the note's
start at ``--rate`` (16 kHz), peak-normalised to 0.9 times a seeded gain of 0
to -6 dB; ``OUT/manifest.csv`` (``path,label,group,soundfont``).

Usage::

    apt-get install fluidsynth timidity fluid-soundfont-gm musescore-general-soundfont \\
        timgm6mb-soundfont csound-soundfont freepats opl3-soundfont
    python data/make_notes.py --out ~/.cache/spectro-bench/notes
"""

from __future__ import annotations

import os
import sys
import tempfile

import numpy as np

from make_instruments import (  # data/make_instruments.py
    CLIP_S,
    RENDER_RATE,
    SAMPLE_SETS,
    SLOT_S,
    SampleSet,
    generator_args,
    midi_file,
    render,
    usable_sets,
    write_manifest,
    write_note,
)

# label -> (GM program, lowest and highest MIDI note played)
INSTRUMENTS = {
    "piano": (0, 36, 96), "epiano": (4, 40, 88), "harpsichord": (6, 41, 89), "vibraphone": (11, 53, 89),
    "organ": (16, 36, 84), "accordion": (21, 53, 89), "guitar": (24, 40, 76), "eguitar": (27, 40, 76),
    "bass": (32, 28, 55), "violin": (40, 55, 91), "cello": (42, 36, 72), "trumpet": (56, 55, 82),
    "trombone": (57, 40, 70), "sax": (65, 49, 80), "clarinet": (71, 50, 86), "flute": (73, 60, 93),
}
N_PITCHES = 8
VELOCITIES = (50, 90, 120)
SETS = (*SAMPLE_SETS, SampleSet("opl3", "opl3", "/usr/share/sounds/sf2/OPL-3_FM_128M.sf2", "fluidsynth"))


def notes() -> list[tuple[str, int, int, int]]:
    out = []
    for label, (program, lo, hi) in INSTRUMENTS.items():
        for pitch in np.linspace(lo, hi, N_PITCHES).round().astype(int):
            out += [(label, program, int(pitch), v) for v in VELOCITIES]
    return out


def make(out: str, *, rate: int = 16000, seed: int = 20261207) -> list[dict]:
    events = notes()
    usable = usable_sets(SETS, "make_notes", "fewer than two lineages of sample sets can be rendered (see the usage)")
    os.makedirs(out, exist_ok=True)
    slot, clip = int(round(SLOT_S * RENDER_RATE)), int(round(CLIP_S * RENDER_RATE))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        midi_path = os.path.join(tmp, "notes.mid")
        with open(midi_path, "wb") as f:
            f.write(midi_file(events))
        for s in usable:
            audio = render(s, midi_path, os.path.join(tmp, f"{s.tag}.wav"))
            silent = 0
            for i, (label, _, pitch, vel) in enumerate(events):
                x = audio[i * slot: i * slot + clip]
                x = np.pad(x, (0, clip - len(x)))
                if np.abs(x).max() < 1e-4:
                    silent += 1
                    continue
                rows.append(write_note(out, s, label, pitch, vel, x, rate=rate, seed=seed))
            if silent:
                print(f"make_notes: {s.tag}: {silent} of {len(events)} notes silent, left out", file=sys.stderr)
    write_manifest(os.path.join(out, "manifest.csv"), ["path", "label", "group", "soundfont"], rows)
    return rows


def main(argv: list[str] | None = None) -> int:
    args = generator_args(__doc__, argv, seed=20261207)
    rows = make(args.out, rate=args.rate, seed=args.seed)
    print(f"make_notes: {len(rows)} clips, {len({r['label'] for r in rows})} classes, "
          f"{len({r['soundfont'] for r in rows})} sample sets in {len({r['group'] for r in rows})} groups in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
