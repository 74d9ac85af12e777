"""Cut drum one-shots from Hydrogen drum kits and General MIDI sound fonts: one class per drum, one group per kit.

A real-recordings data set for group-aware benchmarks (benchmarks/bench_accuracy.py):
7 classes (kick, snare, hihat, tom, crash, ride, clap) of single drum hits. The
group of a clip is its kit's lineage of recordings, so a leave-group-out fold
asks "does a classifier trained on other kits recognise a snare it never heard?".

Sources (Debian packages; licences in each package's copyright file):

* ``hydrogen-drumkits`` and ``hydrogen-drumkits-effects``: every kit of
  ``/usr/share/hydrogen/data/drumkits/*/drumkit.xml``; each instrument's name
  gives its class (``CLASS_RULES``, written after reading every kit's
  instrument list; names that fit no rule, or two, are left out: sticks,
  cowbells, rolls, "ride-crash"), each of its sample files (velocity layers)
  is a clip. Kits that are not drum kits are left out (``NOT_DRUMS``: hand
  percussion, guitar strums, djembes).
* General MIDI sound fonts, their percussion channel: one MIDI file plays every
  drum note of ``GM_NOTES`` at 4 velocities, rendered dry with fluidsynth or
  timidity as in data/make_instruments.py: FluidR3 and MuseScore General
  (one lineage), TimGM6mb and csound's GM bank (one lineage), FreePats, the
  OPL-3 FM bank (``opl3-soundfont``: synthesised drums), and the AVL drum kits
  Black Pearl and Red Zeppelin (``avldrums.lv2-soundfont``).

**Groups are lineages, not files.** The three Millo kits are one author's
(``millo``); Hydrogen's "The Black Pearl" and AVL's Black Pearl sound font are
the same recorded kit (``blackpearl``); sound fonts join as in
make_instruments. Then, as in make_sfx, every clip is compared with every
clip of the same class in the other groups (onset-aligned, peak-normalised
first 100 ms, correlation); groups that share a recording (``SHARED``, 0.95,
or more) are joined and reported, and a clip whose recording is already in
its group is dropped. At most ``CAP`` clips per (class, kit), spread evenly
over its sorted sample list.

Each clip: mixed to mono, resampled to ``--rate`` (16 kHz) with soxr (HQ),
``CLIP_S`` seconds from its onset (first sample above 10 % of the peak, minus
5 ms), peak-normalised to 0.9 times a seeded gain of 0 to -6 dB, written as
16-bit FLAC to ``OUT/<label>/<group>_<kit>_<n>.flac``, listed in
``OUT/manifest.csv`` (``path,label,group,kit,source``).

Usage::

    apt-get install hydrogen-drumkits hydrogen-drumkits-effects fluidsynth timidity fluid-soundfont-gm \\
        musescore-general-soundfont timgm6mb-soundfont csound-soundfont freepats opl3-soundfont \\
        avldrums.lv2-soundfont
    python data/make_percussion.py --out ~/.cache/spectro-bench/percussion

A kit or sound font that is missing is skipped with a note; the script fails
(exit 1) when fewer than four groups remain.
"""

from __future__ import annotations

import glob
import os
import re
import struct
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

from make_instruments import (  # data/make_instruments.py
    RENDER_RATE,
    TICKS_PER_S,
    _varlen,
    generator_args,
    render,
    write_manifest,
)

KITS = "/usr/share/hydrogen/data/drumkits"
NOT_DRUMS = {"Gimme A Hand 1.0", "belofilms_GuitarStrums", "circAfrique v4"}
#: kit -> its lineage, where one author's kits or one recorded kit appear more than once
KIT_GROUP = {"Millo-Drums_v.1": "millo", "Millo_MultiLayered2": "millo", "Millo_MultiLayered3": "millo",
             "The Black Pearl 1.0": "blackpearl"}
CLASS_RULES = {
    "kick": r"kick|bass ?drum|bassdrum",
    "snare": r"snare(?!.*roll)",
    "hihat": r"\bhh\b|hi-?hat|\bhat\b",
    "tom": r"\btom|tomhi|floor tom",
    "crash": r"crash",
    "ride": r"ride(?!.*bell)",
    "clap": r"clap",
}
#: General MIDI percussion notes of each class (channel 10)
GM_NOTES = {"kick": (35, 36), "snare": (38, 40), "hihat": (42, 44, 46), "tom": (41, 43, 45, 47, 48, 50),
            "crash": (49, 57), "ride": (51, 59), "clap": (39,)}
VELOCITIES = (40, 70, 100, 127)
SLOT_S, NOTE_S = 3.0, 0.5
CLIP_S = 1.0
CAP = 16
SHARED = 0.95


@dataclass(frozen=True)
class Font:
    tag: str
    group: str
    path: str
    renderer: str
    channel: int = 9  # the GM percussion channel; AVL's kits play on channel 1, program 0


FONTS = (
    Font("fluidr3", "fluid", "/usr/share/sounds/sf2/FluidR3_GM.sf2", "fluidsynth"),
    Font("musescore", "fluid", "/usr/share/sounds/sf3/MuseScore_General_Full.sf3", "fluidsynth"),
    Font("timgm", "timgm", "/usr/share/sounds/sf2/TimGM6mb.sf2", "fluidsynth"),
    Font("csound", "timgm", "/usr/share/sounds/sf2/sf_GMbank.sf2", "fluidsynth"),
    Font("freepats", "freepats", "/etc/timidity/freepats.cfg", "timidity"),
    Font("opl3", "opl3", "/usr/share/sounds/sf2/OPL-3_FM_128M.sf2", "fluidsynth"),
    Font("avlblackpearl", "blackpearl", "/usr/share/sounds/sf2/Black_Pearl_4_LV2.sf2", "fluidsynth", 0),
    Font("avlredzeppelin", "redzeppelin", "/usr/share/sounds/sf2/Red_Zeppelin_4_LV2.sf2", "fluidsynth", 0),
)


def note(msg: str) -> None:
    print(f"make_percussion: {msg}", file=sys.stderr)


def label_of(name: str) -> str | None:
    hits = [c for c, rule in CLASS_RULES.items() if re.search(rule, name.lower())]
    return hits[0] if len(hits) == 1 else None


def kit_samples(kit_dir: str) -> list[tuple[str, str]]:
    """(label, sample file) of every classed instrument layer of a Hydrogen kit, sorted."""
    root = ET.parse(os.path.join(kit_dir, "drumkit.xml")).getroot()
    ns = re.match(r"\{.*\}", root.tag)
    ns = ns.group(0) if ns else ""
    out = []
    for ins in root.iter(ns + "instrument"):
        name = ins.findtext(ns + "name") or ""
        label = label_of(name)
        if label is None:
            continue
        for fn in ins.iter(ns + "filename"):
            path = os.path.join(kit_dir, (fn.text or "").strip())
            if fn.text and os.path.isfile(path):
                out.append((label, path))
    return sorted(set(out))


def spread(items: list, k: int) -> list:
    if len(items) <= k:
        return items
    return [items[int(i * len(items) / k)] for i in range(k)]


def onset_clip(x: np.ndarray, rate: int) -> np.ndarray | None:
    """CLIP_S seconds from the onset at ``rate``, or None when silent."""
    peak = np.abs(x).max() if x.size else 0.0
    if peak < 1e-4:
        return None
    start = max(0, int(np.argmax(np.abs(x) > 0.1 * peak)) - int(0.005 * rate))
    n = int(round(CLIP_S * rate))
    x = x[start:start + n]
    return np.pad(x, (0, n - len(x)))


def drum_midi(channel: int) -> tuple[bytes, list[tuple[str, int, int]]]:
    events = [(label, n, v) for label, ns in GM_NOTES.items() for n in ns for v in VELOCITIES]
    track, now = bytearray(), 0
    if channel != 9:
        track += _varlen(0) + bytes([0xC0 | channel, 0])
    for i, (_, pitch, vel) in enumerate(events):
        on = int(round(i * SLOT_S * TICKS_PER_S))
        off = on + int(round(NOTE_S * TICKS_PER_S))
        track += _varlen(on - now) + bytes([0x90 | channel, pitch, vel])
        track += _varlen(off - on) + bytes([0x80 | channel, pitch, 0])
        now = off
    end = int(round(len(events) * SLOT_S * TICKS_PER_S))
    track += _varlen(end - now) + bytes([0x90 | channel, 0, 0]) + _varlen(0) + b"\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_S // 2)
    return header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track), events


def render_font(font: Font, tmp: str) -> list[tuple[str, str, np.ndarray]]:
    """(label, source id, audio at RENDER_RATE) of every drum note the font sounds."""
    midi, events = drum_midi(font.channel)
    mid, wav = os.path.join(tmp, f"{font.tag}.mid"), os.path.join(tmp, f"{font.tag}.wav")
    with open(mid, "wb") as f:
        f.write(midi)
    audio, slot = render(font, mid, wav), int(round(SLOT_S * RENDER_RATE))  # the renderers of make_instruments
    out, silent = [], 0
    for i, (label, pitch, vel) in enumerate(events):
        x = audio[i * slot:(i + 1) * slot]
        if x.size == 0 or np.abs(x).max() < 1e-4:
            silent += 1
            continue
        out.append((label, f"{os.path.basename(font.path)}#note{pitch}v{vel}", x))
    if silent:
        note(f"{font.tag}: {silent} of {len(events)} notes silent, left out")
    return out


def fingerprint(x: np.ndarray, rate: int) -> np.ndarray:
    n = int(0.1 * rate)
    y = x[:n] / (np.linalg.norm(x[:n]) + 1e-12)
    return np.pad(y, (0, n - len(y)))


def make(out: str, *, rate: int = 16000, seed: int = 20261207) -> list[dict]:
    candidates = []  # (group, kit, label, source, clip at rate)
    with tempfile.TemporaryDirectory() as tmp:
        for font in FONTS:
            if not os.path.exists(font.path):
                note(f"skipping {font.tag}: {font.path} is missing")
                continue
            try:
                rendered = render_font(font, tmp)
            except (OSError, subprocess.CalledProcessError) as err:
                note(f"skipping {font.tag}: {font.renderer} failed ({err})")
                continue
            by_label: dict[str, list] = {}
            for label, source, x in rendered:
                by_label.setdefault(label, []).append((source, x))
            for label, items in by_label.items():
                for source, x in spread(items, CAP):
                    clip = onset_clip(soxr.resample(x, RENDER_RATE, rate, quality="HQ"), rate)
                    if clip is not None:
                        candidates.append((font.group, font.tag, label, source, clip))
    kits = sorted(glob.glob(os.path.join(KITS, "*", "drumkit.xml")))
    if not kits:
        note(f"no Hydrogen kits in {KITS} (apt-get install hydrogen-drumkits hydrogen-drumkits-effects)")
    for xml in kits:
        kit_dir = os.path.dirname(xml)
        kit = os.path.basename(kit_dir)
        if kit in NOT_DRUMS:
            continue
        tag = re.sub(r"[^a-z0-9]+", "", kit.lower())
        group = KIT_GROUP.get(kit, tag)
        by_label: dict[str, list] = {}
        for label, path in kit_samples(kit_dir):
            by_label.setdefault(label, []).append(path)
        for label, paths in by_label.items():
            for path in spread(paths, CAP):
                try:
                    x, r = sf.read(path, dtype="float64", always_2d=True)
                except (RuntimeError, sf.LibsndfileError) as err:
                    note(f"{kit}: cannot read {path} ({err}); left out")
                    continue
                x = x.mean(axis=1)
                clip = onset_clip(soxr.resample(x, r, rate, quality="HQ") if r != rate else x, rate)
                if clip is not None:
                    candidates.append((group, tag, label, os.path.relpath(path, KITS), clip))
    # Lineages: join groups that share a recording; drop a recording already kept in its group.
    parent = {g: g for g, *_ in candidates}

    def find(g: str) -> str:
        while parent[g] != g:
            g = parent[g]
        return g

    prints = [fingerprint(c[4], rate) for c in candidates]
    kept: list[int] = []
    for label in sorted({c[2] for c in candidates}):
        idx = [i for i, c in enumerate(candidates) if c[2] == label]
        F = np.stack([prints[i] for i in idx])
        sim = F @ F.T
        for a in range(len(idx)):
            for b in range(a + 1, len(idx)):
                ga, gb = candidates[idx[a]][0], candidates[idx[b]][0]
                if ga != gb and sim[a, b] >= SHARED and find(ga) != find(gb):
                    note(f"{candidates[idx[a]][3]} ~ {candidates[idx[b]][3]} ({sim[a, b]:.2f}): "
                         f"joining groups {ga} and {gb}")
                    parent[find(gb)] = find(ga)
    seen: dict[str, list[np.ndarray]] = {}
    for i, c in enumerate(candidates):
        key = f"{find(c[0])}/{c[2]}"
        if any(float(prints[i] @ p) >= SHARED for p in seen.get(key, [])):
            continue  # a copy of a recording its group already has
        seen.setdefault(key, []).append(prints[i])
        kept.append(i)
    groups = {find(c[0]) for c in candidates}
    if len(groups) < 4:
        raise SystemExit(f"make_percussion: only {len(groups)} groups of kits could be read; install "
                         "hydrogen-drumkits and the sound fonts (see the usage)")
    os.makedirs(out, exist_ok=True)
    rows, count = [], {}
    for i in kept:
        g, kit, label, source, clip = candidates[i]
        group = find(g)
        count[(kit, label)] = count.get((kit, label), 0) + 1
        gain_db = np.random.default_rng(zlib.crc32(f"{seed}/{kit}/{label}/{source}".encode())).uniform(-6, 0)
        y = clip / np.abs(clip).max() * 0.9 * 10 ** (gain_db / 20)
        rel = os.path.join(label, f"{group}_{kit}_{count[(kit, label)]:02d}.flac")
        os.makedirs(os.path.join(out, label), exist_ok=True)
        sf.write(os.path.join(out, rel), y.astype(np.float32), rate, subtype="PCM_16", format="FLAC")
        rows.append({"path": rel, "label": label, "group": group, "kit": kit, "source": source})
    write_manifest(os.path.join(out, "manifest.csv"), ["path", "label", "group", "kit", "source"], rows)
    return rows


def main(argv: list[str] | None = None) -> int:
    args = generator_args(__doc__, argv, seed=20261207)
    rows = make(args.out, rate=args.rate, seed=args.seed)
    groups = sorted({r["group"] for r in rows})
    labels = sorted({r["label"] for r in rows})
    print(f"make_percussion: {len(rows)} clips, {len(labels)} classes ({', '.join(labels)}), {len(groups)} groups "
          f"({', '.join(groups)}) in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
