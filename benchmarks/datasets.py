"""The data sets of the accuracy benchmark: where each one's files are and how spectro reads them.

``dataset_source(name, cache)`` returns ``(source folder, spectro.preprocess
source options)``; the sets that are made from Debian packages are rendered
into ``cache/<name>`` by their script in data/ when their manifest is missing,
and the benchmark exits 0 with ``SKIPPED <name>: ...`` when that cannot be
done (no packages, no network to fetch them). ``DEFAULT_FOLDS`` is the number
of leave-groups-out folds to use with each set. Every group of every set is a
source of recordings (a voice, a lineage of samples, an actor, a game), so a
test fold's sounds come from sources that never trained.

=============  ======================================================================
``digits``     bundled (data/digits): 600 clips of the spoken digits 0-9 from 20
               synthetic espeak-ng voices, 8 kHz. Groups: voices. 5 folds of 4 voices.
``instruments`` data/make_instruments.py: 400 single notes of 10 General MIDI
               instruments from 5 sample sets, 16 kHz. Groups: 3 lineages of
               recordings (fluid, timgm, freepats), so 3 folds, one lineage each.
``voices``     data/make_voices.py: 170 taunts of the English voice packs of
               Hedgewars (12 classes: 8 spoken taunts such as "incoming" and
               "kamikaze", and laugh, ow, oof, jump), 16 kHz. Groups: 9 voice
               actors (Classic and Default share recordings: one group). 5 folds:
               every actor has every class, so any split keeps every class in
               every training and test part; 5 folds of 1-2 actors train on about
               136 clips (the size of a small user's set) and test on 26-36.
``sfx``        data/make_sfx.py: 194 sound effects of 6 classes (explosion,
               gunshot, footstep, water, pickup, scream) from 16 Debian game
               packages, 22.05 kHz. Groups: 14 games (freeciv+warzone2100 and
               freedoom+openarena share recordings: one group each). 5 folds: with
               spectro's StratifiedGroupKFold (seed 0) every class is in every
               training and every test fold (footstep, the thinnest class, has 6
               groups); fewer folds leave half the games out of training, more
               give test folds of a few clips per class.
``percussion`` data/make_percussion.py: about 700 drum one-shots of 7 classes (kick,
               snare, hihat, tom, crash, ride, clap) from 11 Hydrogen drum kits
               and 8 GM sound fonts' percussion banks, 16 kHz. Groups: 14 kit
               lineages (kits or sound fonts sharing a recording are one). 5 folds.
``commands``   data/make_commands.py: about 3,000 clips of the ten Speech Commands
               words from espeak-ng (8 English dialects x 12 voice variants),
               flite (6 voices) and festival (3 voices), 3 speaking rates each,
               16 kHz. Groups: 17 speakers (an espeak-ng variant in every dialect;
               one CMU speaker whatever engine plays them). 5 folds.
``commands-xengine`` the same clips, grouped by engine lineage (espeak-ng; CMU's
               flite and festival, which share recordings): 2 folds, each trained on
               one engine and tested on the other.
``notes``      data/make_notes.py: about 2,300 notes of 16 General MIDI instruments
               (8 pitches over each range, 3 velocities) from 6 sample sets in 4
               lineages (fluid, timgm, freepats, opl3 FM), 16 kHz. Groups: the
               lineages, so 4 folds, one lineage each.
=============  ======================================================================
"""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS = os.path.join(ROOT, "data", "digits")

DEFAULT_FOLDS = {"digits": 5, "instruments": 3, "voices": 5, "sfx": 5, "percussion": 5, "commands": 5,
                 "commands-xengine": 2, "notes": 4}
#: Classes of each set (chance is one in this many).
CLASSES = {"digits": 10, "instruments": 10, "voices": 12, "sfx": 6, "percussion": 7, "commands": 10,
           "commands-xengine": 10, "notes": 16}

# data set -> (the script in data/ that renders it, its folder in the cache, its manifest there)
RENDERED = {
    "instruments": ("make_instruments.py", "instruments", "manifest.csv"),
    "voices": ("make_voices.py", "voices", "manifest.csv"),
    "sfx": ("make_sfx.py", "sfx", "manifest.csv"),
    "percussion": ("make_percussion.py", "percussion", "manifest.csv"),
    "commands": ("make_commands.py", "commands", "manifest.csv"),
    "commands-xengine": ("make_commands.py", "commands", "manifest-engine.csv"),
    "notes": ("make_notes.py", "notes", "manifest.csv"),
}
#: Debian packages each rendered set reads (installed by bench_accuracy.py's --install, never by a test).
PACKAGES = {
    "instruments": "fluidsynth timidity fluid-soundfont-gm musescore-general-soundfont timgm6mb-soundfont "
                   "csound-soundfont freepats",
    "voices": "hedgewars-data",
    "sfx": "wavpack",
    "percussion": "hydrogen-drumkits hydrogen-drumkits-effects fluidsynth timidity fluid-soundfont-gm "
                  "musescore-general-soundfont timgm6mb-soundfont csound-soundfont freepats opl3-soundfont "
                  "avldrums.lv2-soundfont",
    "commands": "espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts",
    "notes": "fluidsynth timidity fluid-soundfont-gm musescore-general-soundfont timgm6mb-soundfont "
             "csound-soundfont freepats opl3-soundfont",
}
PACKAGES["commands-xengine"] = PACKAGES["commands"]
MANIFEST_OPTIONS = {"path_col": "path", "label_col": "label", "group_col": "group"}


def install(name: str) -> None:
    """apt-get install the set's Debian packages (bench_accuracy.py --install); a failure is only reported."""
    pkgs = PACKAGES.get(name, "").split()
    if pkgs:
        done = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *pkgs], check=False,
                              capture_output=True, text=True)
        if done.returncode != 0:
            print(f"bench_accuracy: apt-get install {' '.join(pkgs)} failed: "
                  f"{(done.stderr or done.stdout).strip().splitlines()[-1:]}", file=sys.stderr)


def dataset_source(name: str, cache: str) -> tuple[str, dict]:
    """(source folder, spectro.preprocess source options) of a data set; exit 0 if it cannot be made."""
    if name == "digits":
        return DIGITS, {"label_regex": r"^(\d)_", "group_regex": r"^\d_([a-z0-9]+)_"}
    if name not in RENDERED:
        raise ValueError(f"unknown data set {name!r}: one of digits, {', '.join(RENDERED)}")
    script, sub, manifest_name = RENDERED[name]
    folder = os.path.join(cache, sub)
    manifest = os.path.join(folder, manifest_name)
    if not os.path.isfile(manifest):
        tool = os.path.join(ROOT, "data", script)
        done = subprocess.run([sys.executable, tool, "--out", folder], check=False, capture_output=True, text=True)
        if done.returncode != 0 or not os.path.isfile(manifest):
            reason = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["unknown error"]
            print(f"bench_accuracy: SKIPPED {name}: cannot render the data set: {reason[0]}")
            sys.exit(0)
        print(done.stdout.strip(), file=sys.stderr)
    return folder, {"manifest": manifest, **MANIFEST_OPTIONS}
