"""Cut a small speech data set from the voice actors of Hedgewars: one class per taunt, one group per actor.

A real-recordings data set for group-aware benchmarks (benchmarks/bench_accuracy.py):
the taunts that the hedgehogs of the game Hedgewars shout, recorded by
different people for the game's English voice packs. The label of a clip is
the taunt (``incoming``, ``kamikaze``, ``ow`` ...), its group the voice actor,
so a leave-group-out fold asks "does a classifier trained on other actors
recognise this taunt from a voice it never heard?".

Source: Debian package ``hedgewars-data`` (1.0.2-6 when this set was made;
``Data/Sounds/*`` is GFDL-1.3, Andrey Korotaev, per its
``/usr/share/doc/hedgewars-data/copyright``), files
``usr/share/games/hedgewars/Data/Sounds/voices/<Pack>/<Taunt>.ogg``.

What was decided, and why (measured when the set was made):

* **English packs only.** A pack named ``Name_<language code>`` is a
  localisation (the game's convention; its changelog: Default_uk "Ukrainian
  localization of Default voice", Default_ru Russian, Default_pl Polish,
  Russian_pl "Polish with a Russian accent", and Default_es Spanish), so
  Default_es, Default_pl, Default_ru, Default_uk and Russian_pl are left out:
  their "Incoming" is another language's word. The 10 English packs are
  British, Classic, Default, HillBilly, Mobster, Pirate, Robot, Russian
  (English with a Russian accent), Singer and Surfer.
* **A taunt names an event, not a text.** The game's own list of taunts gives a
  "general idea" per file and each actor says it in character (Default's
  ``Byebye`` is "See ya!"), so several taunts have no common words. The
  classes kept are those whose idea fixes the words or the sound: 8 spoken
  (``firstblood``, ``takecover``, ``kamikaze``, ``incoming``, ``watchit``,
  ``enemydown``, ``nooo``, ``uh-oh``) and 4 vocal ones that need no language
  (``laugh``, and the merged variants ``ow`` = Ow1-Ow3, ``oof`` = Ooff1-Ooff3,
  ``jump`` = Jump1-Jump3, the effort grunt of a jump; Ow4 is left out so that no
  class has more than 3 clips of one pack). Left out as free wording or
  unclear in a check with an English recogniser and cross-actor DTW: Hello,
  Byebye, Victory, Oops, Hurry, Stupid, Illgetyou, Traitor, Yessir, Missed,
  Reinforcements, Flawless, Comeonthen, Youllregretthat, Sameteam, Nutter.
  Even the kept spoken taunts may be worded differently by some actors (no
  transcript exists for most packs): treat the labels as slightly noisy.
* **Groups are actors' recordings, not packs.** Classic and Default share 21
  of their 59 common taunts (peak normalised cross-correlation 1.00: Cutitout,
  Drat, Flawless, Flyaway, Hmm, Hurry, Kamikaze, Laugh, Leavemealone, Nooo,
  Ooff1-3, Oops, Ouch, Ow1-4, Thisoneismine, Uh-oh: the new default voice
  kept part of the old one), so they are one group, ``classic-default``, and
  Classic's copies of Default's clips are dropped. HillBilly's PoisonMoan is
  Default's file (1.00; an optional taunt the game otherwise takes from
  Default), but the set uses no PoisonMoan and HillBilly's other 46 taunts are
  its own, so HillBilly stays a group. No other pair of English packs shares a
  recording: the largest other same-taunt correlation is 0.74 (Mobster/Ooff2
  against Russian/Ooff2, a 0.12 s thump that correlates 0.35-0.62 with
  Mobster's other grunts too), and same-taunt medians between packs are
  0.06-0.11. The script measures this again on every run: packs whose
  same-named taunt correlates at ``SHARED`` or more, for a taunt the set uses,
  are joined into one group (other shared files are reported), and a clip
  whose recording is already in its group is dropped.

Each clip: decoded from Ogg Vorbis, mixed to mono, trimmed of leading and
trailing silence (``librosa.effects.trim``, 40 dB, 10 ms kept either side),
resampled to ``--rate`` (16 kHz) with soxr (HQ), peak-normalised to 0.9 times a
seeded gain of 0 to -6 dB and written as 16-bit FLAC to
``OUT/<label>/<group>_<pack>_<taunt>.flac``, listed in ``OUT/manifest.csv``
(``path,label,group,pack,source,package``). The same package gives the same
files, byte for byte.

Usage::

    python data/make_voices.py --out ~/.cache/spectro-bench/voices [--debs DIR]

The voice packs are read from an installed ``hedgewars-data`` if present,
else from ``DIR/hedgewars-data_*.deb`` (default ``~/.cache/spectro-bench/debs``),
which is fetched with ``apt-get download hedgewars-data`` when missing; the
script fails with one line (exit 1) when it cannot get them.
"""

from __future__ import annotations

import argparse
import csv
import glob
import itertools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zlib
from collections import Counter

import librosa
import numpy as np
import soundfile as sf
import soxr
from scipy.signal import fftconvolve

PACKAGE = "hedgewars-data"
VOICES = "usr/share/games/hedgewars/Data/Sounds/voices"
DEFAULT_DEBS = os.path.join(os.path.expanduser("~"), ".cache", "spectro-bench", "debs")

# label -> taunt files of every pack (in this order; a pack lacking one is skipped)
CLASSES = {
    "firstblood": ("Firstblood",),
    "takecover": ("Takecover",),
    "kamikaze": ("Kamikaze",),
    "incoming": ("Incoming",),
    "watchit": ("Watchit",),
    "enemydown": ("Enemydown",),
    "nooo": ("Nooo",),
    "uh-oh": ("Uh-oh",),
    "laugh": ("Laugh",),
    "ow": ("Ow1", "Ow2", "Ow3"),
    "oof": ("Ooff1", "Ooff2", "Ooff3"),
    "jump": ("Jump1", "Jump2", "Jump3"),
}
# English packs, in order of preference when two hold the same recording (the first keeps it)
PACKS = ("Default", "Classic", "British", "HillBilly", "Mobster", "Pirate", "Robot", "Russian", "Singer", "Surfer")
LOCALISED = re.compile(r"_[a-z]{2}$")  # Name_<language>: a translation, left out
SHARED = 0.9  # peak normalised cross-correlation from which two files are one recording
RATE = 16000
TOP_DB = 40.0
PEAK = 0.9


def fail(message: str) -> None:
    print(f"make_voices: {message}", file=sys.stderr)
    raise SystemExit(1)


def package_root(debs: str, tmp: str) -> tuple[str, str]:
    """(root folder holding ``VOICES``, "package version") from the installed package or a .deb."""
    if shutil.which("dpkg-query"):
        installed = subprocess.run(["dpkg-query", "-W", "-f", "${Status}|${Version}", PACKAGE],
                                   check=False, capture_output=True, text=True)
        status, _, version = installed.stdout.partition("|")
        if installed.returncode == 0 and status.endswith(" installed") and os.path.isdir("/" + VOICES):
            return "/", f"{PACKAGE} {version}"
    if shutil.which("dpkg-deb") is None:
        fail(f"{PACKAGE} is not installed and dpkg-deb (Debian's dpkg) is missing to read its .deb")
    found = sorted(glob.glob(os.path.join(debs, f"{PACKAGE}_*.deb")))
    if not found:
        if shutil.which("apt-get") is None:
            fail(f"{PACKAGE} is not installed, no {PACKAGE}_*.deb in {debs} and no apt-get to download it")
        os.makedirs(debs, exist_ok=True)
        got = subprocess.run(["apt-get", "download", PACKAGE], cwd=debs, check=False, capture_output=True, text=True)
        found = sorted(glob.glob(os.path.join(debs, f"{PACKAGE}_*.deb")))
        if got.returncode != 0 or not found:
            why = (got.stderr or got.stdout).strip().splitlines()[-1:] or ["no .deb came"]
            fail(f"cannot download {PACKAGE} into {debs} (apt-get download: {why[0]})")
    deb = found[-1]
    version = subprocess.run(["dpkg-deb", "-f", deb, "Version"], check=False, capture_output=True,
                             text=True).stdout.strip()
    tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE)
    done = subprocess.run(["tar", "-x", "-C", tmp, "--wildcards", f"./{VOICES}/*"], stdin=tar.stdout,
                          check=False, capture_output=True, text=True)
    tar.wait()
    if tar.returncode != 0 or done.returncode != 0 or not os.path.isdir(os.path.join(tmp, VOICES)):
        fail(f"cannot extract {VOICES} from {deb}: {done.stderr.strip()[:200]}")
    return tmp, f"{PACKAGE} {version}"


def load(path: str, rate: int) -> np.ndarray:
    """The file as mono float64 at ``rate``."""
    x, sr = sf.read(path, dtype="float64", always_2d=True)
    return soxr.resample(x.mean(axis=1), sr, rate, quality="HQ")


def peak_ncc(a: np.ndarray, b: np.ndarray) -> float:
    """Peak of the normalised cross-correlation of two signals (1.0: the same samples at some lag)."""
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return 0.0
    return float(np.abs(fftconvolve(a, b[::-1])).max() / (na * nb))


def lineages(voices: str, packs: list[str], rate: int = 8000) -> tuple[dict[str, str], list[str]]:
    """Group name of each pack: packs that share a recording of a taunt the set uses are joined.

    A recording is shared when the same-named taunt of two packs correlates at
    ``SHARED`` or more. Shared files that the set does not use (a pack that
    copied another's optional taunt) are reported but join nothing: they
    cannot be in a training and a test fold. Returns the mapping and a line
    per pair of packs that share something.
    """
    used = {t for taunts in CLASSES.values() for t in taunts}
    files = {p: {os.path.splitext(f)[0] for f in os.listdir(os.path.join(voices, p)) if f.endswith(".ogg")}
             for p in packs}
    parent = {p: p for p in packs}

    def root(p: str) -> str:
        while parent[p] != p:
            p = parent[p]
        return p

    notes = []
    cache: dict[tuple[str, str], np.ndarray] = {}

    def audio(p: str, t: str) -> np.ndarray:
        if (p, t) not in cache:
            cache[p, t] = load(os.path.join(voices, p, t + ".ogg"), rate)
        return cache[p, t]

    for a, b in itertools.combinations(packs, 2):
        both = sorted(files[a] & files[b])
        same = [(t, peak_ncc(audio(a, t), audio(b, t))) for t in both]
        shared = [(t, r) for t, r in same if r >= SHARED]
        if shared:
            joined = any(t in used for t, _ in shared)
            if joined:
                parent[root(b)] = root(a)
            notes.append(f"{a} and {b} share {len(shared)} of {len(both)} taunts "
                         f"(peak correlation {min(r for _, r in shared):.2f}-{max(r for _, r in shared):.2f}: "
                         f"{', '.join(t for t, _ in shared)}); "
                         + ("one group" if joined else "none of them in the set: not joined"))
    members: dict[str, list[str]] = {}
    for p in packs:
        members.setdefault(root(p), []).append(p)
    names = {p: "-".join(sorted(m.lower() for m in members[root(p)])) for p in packs}
    return names, notes


def clip_seed(seed: int, pack: str, taunt: str) -> int:
    """A stable per-clip seed (independent of the order and of Python's hash salt)."""
    return zlib.crc32(f"{seed}/{pack}/{taunt}".encode())


def process(x: np.ndarray, rate: int, gain_db: float) -> np.ndarray:
    _, (start, end) = librosa.effects.trim(x, top_db=TOP_DB)
    margin = int(0.01 * rate)
    x = x[max(0, start - margin): min(len(x), end + margin)]
    peak = float(np.abs(x).max())
    if peak < 1e-4:
        raise RuntimeError("silent clip")
    return x * (PEAK * 10 ** (gain_db / 20) / peak)


def make(out: str, *, debs: str = DEFAULT_DEBS, rate: int = RATE, seed: int = 20251124) -> tuple[list[dict], list[str]]:
    """Write the clips and manifest into ``out``; return the manifest rows and notes on the groups."""
    with tempfile.TemporaryDirectory() as tmp:
        root, package = package_root(debs, tmp)
        voices = os.path.join(root, VOICES)
        present = sorted(d for d in os.listdir(voices) if os.path.isdir(os.path.join(voices, d)))
        notes = [f"left out as translations: {', '.join(p for p in present if LOCALISED.search(p))}"]
        unknown = [p for p in present if p not in PACKS and not LOCALISED.search(p)]
        if unknown:
            notes.append(f"not in PACKS, left out (check whether they are English): {', '.join(unknown)}")
        packs = [p for p in PACKS if p in present]
        if len(packs) < 3:
            fail(f"only {len(packs)} English voice packs in {voices}")
        groups, shared = lineages(voices, packs)
        notes += shared
        if os.path.isdir(out):
            for label in CLASSES:
                shutil.rmtree(os.path.join(out, label), ignore_errors=True)
        os.makedirs(out, exist_ok=True)
        rows = []
        kept: dict[tuple[str, str], list[tuple[str, np.ndarray]]] = {}  # (group, label) -> clips
        for label, taunts in CLASSES.items():
            for pack in packs:
                for taunt in taunts:
                    src = os.path.join(voices, pack, taunt + ".ogg")
                    if not os.path.isfile(src):
                        notes.append(f"{pack} has no {taunt}.ogg")
                        continue
                    x = load(src, rate)
                    group = groups[pack]
                    twin = next((name for name, y in kept.get((group, label), [])
                                 if peak_ncc(x, y) >= SHARED), None)
                    if twin:
                        notes.append(f"{pack}/{taunt} dropped: the same recording as {twin} (group {group})")
                        continue
                    kept.setdefault((group, label), []).append((f"{pack}/{taunt}", x))
                    gain_db = float(np.random.default_rng(clip_seed(seed, pack, taunt)).uniform(-6, 0))
                    y = process(x, rate, gain_db)
                    rel = os.path.join(label, f"{group}_{pack.lower()}_{taunt.lower()}.flac")
                    os.makedirs(os.path.join(out, label), exist_ok=True)
                    sf.write(os.path.join(out, rel), y.astype(np.float32), rate, subtype="PCM_16", format="FLAC")
                    rows.append({"path": rel, "label": label, "group": group, "pack": pack,
                                 "source": f"{VOICES}/{pack}/{taunt}.ogg", "package": package,
                                 "seconds": f"{len(y) / rate:.3f}"})
    with open(os.path.join(out, "manifest.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["path", "label", "group", "pack", "source", "package", "seconds"])
        w.writeheader()
        w.writerows(rows)
    return rows, notes


def table(rows: list[dict], labels: list[str]) -> str:
    """Clips per class (rows) and group (columns), as text."""
    groups = sorted({r["group"] for r in rows})
    count = Counter((r["label"], r["group"]) for r in rows)
    width = max(len(g) for g in groups) + 1
    lines = [f"{'':11s}" + "".join(f"{g:>{width}s}" for g in groups) + "  total"]
    for label in labels:
        lines.append(f"{label:11s}" + "".join(f"{count[label, g]:{width}d}" for g in groups)
                     + f"  {sum(count[label, g] for g in groups):5d}")
    lines.append(f"{'total':11s}" + "".join(f"{sum(count[c, g] for c in labels):{width}d}" for g in groups)
                 + f"  {len(rows):5d}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output folder (its class folders are replaced; manifest.csv)")
    parser.add_argument("--debs", default=DEFAULT_DEBS, help="where hedgewars-data_*.deb is looked for and downloaded")
    parser.add_argument("--rate", type=int, default=RATE, help="sample rate of the clips (Hz)")
    parser.add_argument("--seed", type=int, default=20251124, help="seed of the per-clip gains")
    args = parser.parse_args(argv)
    rows, notes = make(args.out, debs=args.debs, rate=args.rate, seed=args.seed)
    for note in notes:
        print(f"make_voices: {note}")
    size = sum(os.path.getsize(os.path.join(args.out, r["path"])) for r in rows)
    seconds = [float(r["seconds"]) for r in rows]
    print(table(rows, [c for c in CLASSES if any(r["label"] == c for r in rows)]))
    print(f"make_voices: {len(rows)} clips, {len({r['label'] for r in rows})} classes, "
          f"{len({r['group'] for r in rows})} groups, {rows[0]['package']}, {args.rate} Hz; "
          f"{sum(seconds):.1f} s in all ({min(seconds):.2f}-{max(seconds):.2f} s a clip), "
          f"{size} bytes ({size / 1e6:.1f} MB) of FLAC in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
