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
=============  ======================================================================
"""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS = os.path.join(ROOT, "data", "digits")

DEFAULT_FOLDS = {"digits": 5, "instruments": 3, "voices": 5, "sfx": 5}

# data set -> the script in data/ that renders it into a folder (with manifest.csv)
RENDERED = {
    "instruments": "make_instruments.py",
    "voices": "make_voices.py",
    "sfx": "make_sfx.py",
}
MANIFEST_OPTIONS = {"path_col": "path", "label_col": "label", "group_col": "group"}


def dataset_source(name: str, cache: str) -> tuple[str, dict]:
    """(source folder, spectro.preprocess source options) of a data set; exit 0 if it cannot be made."""
    if name == "digits":
        return DIGITS, {"label_regex": r"^(\d)_", "group_regex": r"^\d_([a-z0-9]+)_"}
    if name not in RENDERED:
        raise ValueError(f"unknown data set {name!r}: one of digits, {', '.join(RENDERED)}")
    folder = os.path.join(cache, name)
    manifest = os.path.join(folder, "manifest.csv")
    if not os.path.isfile(manifest):
        tool = os.path.join(ROOT, "data", RENDERED[name])
        done = subprocess.run([sys.executable, tool, "--out", folder], check=False, capture_output=True, text=True)
        if done.returncode != 0 or not os.path.isfile(manifest):
            reason = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["unknown error"]
            print(f"bench_accuracy: SKIPPED {name}: cannot render the data set: {reason[0]}")
            sys.exit(0)
        print(done.stdout.strip(), file=sys.stderr)
    return folder, {"manifest": manifest, **MANIFEST_OPTIONS}
