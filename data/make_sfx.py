"""Collect everyday sound effects from the data of several free games into a labelled set of FLAC clips.

A real-recordings data set for group-aware benchmarks (benchmarks/bench_accuracy.py):
6 classes of sound events (explosion, gunshot, footstep, water, pickup,
scream) taken by file name from the sound folders of 16 Debian game data
packages. The group of a clip is its game (a production chain: its own sound
designers, sources, microphones and processing), so a leave-group-out fold
asks "does a classifier trained on these games recognise a gunshot made for a
game it never heard?".

How: every package's files (and the members of its .pk3/.wz archives and the
DS* lumps of Freedoom's WAD) are matched against ``PACKAGES``' rules, a
reviewed table of one regular expression per (package, class) written after
reading the packages' file names. Ambiguous names are left out: footsteps in
water (openarena splash1-4), an alarm named "foot" (cube2), cannon and laser
"shots", a splash of magic (wesnoth water-blast), engine and ambience loops.
``water`` is a splash, a drop or a body entering water; ``pickup`` the short
jingle or click of collecting an item, coin or health; ``scream`` a pain or
death cry of a human(oid) character. Each (class, package) gives at most
``CAP`` clips, and no package more than ``MAX_SHARE`` of a class (the largest
is cut first), spread evenly over the package's sorted matches.

**Groups are lineages, not packages.** Games borrow sounds: every clip is
compared with every clip of the other packages (peak normalised
cross-correlation at 8 kHz; between unrelated games it stays below 0.5),
packages that share a recording (``SHARED``, 0.9, or more) are joined into one
group, and the copy is dropped. When this set was made, the 6 of
freeciv-data's stdsounds in the set were warzone2100-data's files (1.000:
LrgExpl, SmlExpl, MgBar1, MgBar2, MgHeavy, Splash), and freedoom's DSITEMUP
is openarena-data's n_health.wav (0.901): groups ``freeciv-warzone2100`` and
``freedoom-openarena``. Copies inside one package (openarena step3/step4,
1.000) are dropped too.

Each clip: decoded (soundfile; WavPack with ``wvunpack``; Freedoom's 8-bit
DMX lumps directly), mixed to mono, trimmed of silence below -50 dB of its
peak, cut to the ``MAX_S`` (3) seconds of highest energy when longer, padded
with silence to ``MIN_S`` (0.1 s: extremetuxracer's pickups are 25-32 ms
blips, shorter than one STFT frame), resampled to ``--rate`` (22050 Hz: most
sources are 22.05 or 44.1 kHz and the noise of explosions and shots reaches
above 8 kHz; spectro resamples to 16 kHz by default anyway) with soxr (HQ),
peak-normalised to 0.9 times a seeded gain of 0 to -6 dB and written as 16-bit
FLAC to ``OUT/<label>/<group>_<game>-<name>.flac``; ``OUT/manifest.csv`` has
``path,label,group,package,source,seconds``. The same packages give the same
files, byte for byte.

Debian packages (versions when the set was made; licences of the sounds, from
each package's ``/usr/share/doc/PKG/copyright``, in benchmarks/README.md):
openarena-data 0.8.5split-14, hedgewars-data 1.0.2-6, btanks-data 0.9.8083-9,
cube2-data 1.3-1, freeciv-data 3.0.6-1+deb12u1, freedoom 0.12.1-2,
extremetuxracer-data 0.8.2-1, lincity-ng-data 2.9~git20150314-5,
megaglest-data 3.13.0-3, pingus-data 0.7.6-5.1, scorched3d-data 44+dfsg-8,
supertux-data 0.6.3-2, warzone2100-data 4.3.3-3, wesnoth-1.16-data
1:1.16.9-1, teeworlds-data 0.7.5-2 (needs ``wvunpack``, package wavpack) and
boswars-data 2.7+svn160110-5: about 1.2 GB of .deb in all, of which only the
sound files are extracted (about 4 minutes on 2 busy cores).

Usage::

    apt-get install wavpack        # for teeworlds-data's .wv files (else it is skipped)
    python data/make_sfx.py --out ~/.cache/spectro-bench/sfx [--debs DIR]

A package is read from its installed files when it is installed, else from
``DIR/<package>_*.deb`` (default ``~/.cache/spectro-bench/debs``), fetched with
``apt-get download`` when missing. A package that cannot be had is skipped with
a note (the set then differs: the summary says what it holds); the script
fails with one line (exit 1) when fewer than ``MIN_GROUPS`` groups remain.
"""

from __future__ import annotations

import argparse
import csv
import glob
import io
import itertools
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import soundfile as sf
import soxr
from scipy.signal import fftconvolve

DEFAULT_DEBS = os.path.join(os.path.expanduser("~"), ".cache", "spectro-bench", "debs")
CLASSES = ("explosion", "gunshot", "footstep", "water", "pickup", "scream")
CAP = 8  # clips per (class, package) at most ...
MAX_SHARE = 0.4  # ... and at most this share of a class from one package (down to 1 clip)
MAX_S = 3.0  # longer clips keep their loudest MAX_S seconds
MIN_S = 0.1  # shorter clips are padded with silence to this length
TOP_DB = 50.0  # silence threshold of the trim, below the peak
RATE = 22050
SHARED = 0.9  # peak normalised cross-correlation from which two clips are one recording
MIN_GROUPS = 4
AUDIO = (".wav", ".ogg", ".flac", ".wv")
ARCHIVES = (".pk3", ".wz", ".zip")


@dataclass(frozen=True)
class Package:
    name: str  # Debian package
    group: str  # short name of the game (the group, unless it shares recordings)
    rules: dict[str, str] = field(default_factory=dict)  # class -> regex over the source id


# A source id is the path in the package ("usr/share/..."), "ARCHIVE!member" for
# a file inside a .pk3/.wz/.zip, or "WAD!LUMP" for a Freedoom sound lump.
PACKAGES = (
    Package("openarena-data", "openarena", {
        "explosion": r"!sound/(weapons/rocket/rocklx1a|weapons/proxmine/wstbexpl|items/kam_explode)\.wav$",
        "gunshot": r"!sound/weapons/(machinegun/machgf\db|shotgun/sshotf1b|vulcan/vulcanf\db)\.wav$",
        "footstep": r"!sound/player/footsteps/(step|boot)\d\.wav$",  # not splash1-4: water steps
        "water": r"!sound/player/watr_(in|out)\.wav$",
        "pickup": r"!sound/(misc/(am|ar\d|w)_pkup|items/[lmns]_health)\.wav$",
        "scream": r"!sound/player/sarge/(death\d|pain\d+_1)\.wav$",
    }),
    Package("hedgewars-data", "hedgewars", {  # Data/Sounds itself; voices/ is data/make_voices.py's
        "explosion": r"/Data/Sounds/explosion\.ogg$",
        "gunshot": r"/Data/Sounds/(gun|shotgunfire|minigun)\.ogg$",
        "footstep": r"/Data/Sounds/steps\.ogg$",
        "water": r"/Data/Sounds/(splash|Droplet\d)\.ogg$",
        "pickup": r"/Data/Sounds/CollectCrate\.ogg$",
    }),
    Package("btanks-data", "btanks", {
        "explosion": r"/sounds/(explosion|building-explosion\d|vehicle-explosion2?|nuke-explosion)\.ogg$",
        "gunshot": r"/sounds/machinegunner-bullet\.ogg$",
        "footstep": r"/sounds/man-steps\.ogg$",
        "pickup": r"/sounds/taking-item-\d\.ogg$",
        "scream": r"/sounds/(deadman\d|kamikaze-scream)\.ogg$",
    }),
    Package("cube2-data", "cube2", {
        "explosion": r"/sounds/(q009/explosion|sfx/explode)\.ogg$",
        "gunshot": r"/sounds/q009/(pistol|shotgun|rifle|minigun)\d?\.ogg$",
        "footstep": r"/sounds/0ad/fs_sand7\.ogg$",  # not alarmcreatemiltaryfoot: an alarm
        "water": r"/sounds/yo_frankie/watersplash2\.ogg$",
        "pickup": r"/sounds/aard/itempick\.wav$",
        "scream": r"/sounds/(aard/(die|pain)\d\.wav|0ad/death_11\.ogg)$",
    }),
    Package("freeciv-data", "freeciv", {
        "explosion": r"/stdsounds/(LrgExpl|SmlExpl)\.ogg$",
        "gunshot": r"/stdsounds/(MgBar\d|MgHeavy)\.ogg$",
        "footstep": r"/stdsounds/foot3\.ogg$",
        "water": r"/stdsounds/Splash\.ogg$",
    }),
    Package("freedoom", "freedoom", {  # freedoom2.wad only: freedoom1.wad has the same sound lumps
        "explosion": r"freedoom2\.wad!DS(BAREXP|RXPLOD)$",
        "gunshot": r"freedoom2\.wad!DS(PISTOL|SHOTGN|DSHTGN)$",
        "pickup": r"freedoom2\.wad!DS(ITEMUP|WPNUP|GETPOW)$",
        "scream": r"freedoom2\.wad!DS(PLPAIN|PLDETH|PDIEHI|POPAIN|PODTH\d)$",  # player and zombieman (human)
    }),
    Package("extremetuxracer-data", "etr", {
        "pickup": r"/etr/sounds/pickup\d\.wav$",
    }),
    Package("lincity-ng-data", "lincity", {
        "explosion": r"/sounds/RocketExplosion1\.wav$",
    }),
    Package("megaglest-data", "megaglest", {
        "water": r"/data/core/water_sounds/water\d\.wav$",
        "scream": r"/commondata/sounds/(archer|axe_thrower|guard|swordman|technician|worker)_die\d\.wav$",
    }),
    Package("pingus-data", "pingus", {
        "water": r"/pingus/data/sounds/splash\.wav$",
    }),
    Package("scorched3d-data", "scorched3d", {
        "explosion": r"/globalmods/(none/data/wav/explosions/(small|medium|large|xlarge)"
                     r"|apoc/data/wav/explosions/exp)\.wav$",
        "gunshot": r"/globalmods/apoc/data/wav/shoot/(machinegun|shotgun)\.wav$",
        "water": r"/globalmods/none/data/wav/misc/splash\.wav$",
        "scream": r"/globalmods/apoc/data/wav/misc/scream\d\.wav$",
    }),
    Package("supertux-data", "supertux", {
        "explosion": r"/supertux2/sounds/explosion\.wav$",
        "water": r"/supertux2/sounds/splash\.(ogg|wav)$",
        "pickup": r"/supertux2/sounds/(coin\.wav|coin2\.ogg)$",
    }),
    Package("warzone2100-data", "warzone2100", {
        "explosion": r"base\.wz!audio/sfx/explons/(lrgexpl|smlexpl|atnkexpl|mpodexpl)\.ogg$",
        "gunshot": r"base\.wz!audio/sfx/weapons/(mgbar\d|mgheavy|asltmg)\.ogg$",
        "water": r"base\.wz!audio/sfx/weapons/splash\.ogg$",
        "scream": r"base\.wz!audio/sfx/misc/scream\d?\.ogg$",
    }),
    Package("wesnoth-1.16-data", "wesnoth", {
        "explosion": r"/data/core/sounds/explosion\.ogg$",
        "gunshot": r"/data/core/sounds/(gunshot\.wav|thunderstick\.ogg)$",
        "pickup": r"/data/core/sounds/gold\.ogg$",
        "scream": r"/data/core/sounds/(human-die|human-female-die|human-old-die|dwarf-die)-\d\.ogg$",
    }),
    Package("teeworlds-data", "teeworlds", {
        "explosion": r"/audio/wp_flump_explo-\d\d\.wv$",
        "gunshot": r"/audio/wp_(gun|shotty)_fire-\d\d\.wv$",
        "footstep": r"/audio/foley_foot_(left|right)-\d\d\.wv$",
        "pickup": r"/audio/sfx_pickup_(arm|hrt)-\d\d\.wv$",
        "scream": r"/audio/vo_teefault_pain_(long|short)-\d\d\.wv$",
    }),
    Package("boswars-data", "boswars", {
        "scream": r"/units/(assault|bazoo|grenadier|engineer|medic)/\w+_die\.wav$",
    }),
)


def note(message: str) -> None:
    print(f"make_sfx: {message}", file=sys.stderr)


# ---------------------------------------------------------------------------
# Packages: installed files or a .deb, fetched when missing
# ---------------------------------------------------------------------------

def installed_files(name: str) -> tuple[list[str], str] | None:
    """(files, version) of an installed package, or None."""
    if shutil.which("dpkg-query") is None:
        return None
    q = subprocess.run(["dpkg-query", "-W", "-f", "${Status}|${Version}", name], check=False, capture_output=True,
                       text=True)
    status, _, version = q.stdout.partition("|")
    if q.returncode != 0 or not status.endswith(" installed"):
        return None
    listed = subprocess.run(["dpkg", "-L", name], check=False, capture_output=True, text=True).stdout.split("\n")
    return [p.lstrip("/") for p in listed if os.path.isfile(p)], version


def deb_path(name: str, debs: str) -> str | None:
    """The .deb of ``name`` in ``debs``, downloaded there when missing; None (with a note) when it cannot be had."""
    found = sorted(glob.glob(os.path.join(debs, f"{name}_*.deb")))
    if not found and shutil.which("apt-get"):
        os.makedirs(debs, exist_ok=True)
        got = subprocess.run(["apt-get", "download", name], cwd=debs, check=False, capture_output=True, text=True)
        found = sorted(glob.glob(os.path.join(debs, f"{name}_*.deb")))
        if got.returncode != 0 and not found:
            why = (got.stderr or got.stdout).strip().splitlines()[-1:] or ["?"]
            note(f"skipping {name}: apt-get download failed ({why[0]})")
            return None
    if not found:
        note(f"skipping {name}: not installed, no {name}_*.deb in {debs}, no apt-get")
        return None
    return found[-1]


def package_files(pkg: Package, debs: str, tmp: str) -> tuple[str, list[str], str] | None:
    """(root, relative paths of its audio files and archives, "package version"), or None."""
    wanted = AUDIO + ARCHIVES + (".wad",)
    got = installed_files(pkg.name)
    if got:
        files, version = got
        return "/", [f for f in files if f.lower().endswith(wanted)], f"{pkg.name} {version}"
    if shutil.which("dpkg-deb") is None:
        note(f"skipping {pkg.name}: not installed, and dpkg-deb (Debian's dpkg) is missing to read its .deb")
        return None
    deb = deb_path(pkg.name, debs)
    if deb is None:
        return None
    version = subprocess.run(["dpkg-deb", "-f", deb, "Version"], check=False, capture_output=True,
                             text=True).stdout.strip()
    root = os.path.join(tmp, pkg.name)
    needed = []
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE)
    with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:  # streamed: only the sound files are written
        for m in tar:
            name = os.path.normpath(m.name)
            if not (m.isfile() and name.lower().endswith(wanted)):
                continue
            container = name.lower().endswith(ARCHIVES + (".wad",))
            if not (container or any(re.search(rx, name) for rx in pkg.rules.values())):
                continue
            dest = os.path.join(root, name)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "wb") as f:
                shutil.copyfileobj(tar.extractfile(m), f)
            needed.append(name)
    proc.wait()
    if proc.returncode != 0:
        note(f"skipping {pkg.name}: cannot read {deb}")
        return None
    return root, needed, f"{pkg.name} {version}"


# ---------------------------------------------------------------------------
# Sources inside a package and their audio
# ---------------------------------------------------------------------------

def wad_lumps(data: bytes) -> dict[str, bytes]:
    """The DS* (sound) lumps of a Doom WAD."""
    _, n, offset = struct.unpack("<4sii", data[:12])
    lumps = {}
    for i in range(n):
        pos, size, raw = struct.unpack("<ii8s", data[offset + 16 * i: offset + 16 * i + 16])
        name = raw.rstrip(b"\0").decode("ascii", "replace")
        if name.startswith("DS"):
            lumps[name] = data[pos: pos + size]
    return lumps


def dmx_audio(lump: bytes) -> tuple[np.ndarray, int]:
    """A Doom DMX sound lump (format 3, unsigned 8-bit, 16 padding bytes at each end) as float64."""
    fmt, rate, n = struct.unpack("<HHI", lump[:8])
    if fmt != 3:
        raise ValueError(f"DMX format {fmt}")
    x = np.frombuffer(lump[8: 8 + n], dtype=np.uint8)[16:-16]
    return (x.astype(np.float64) - 128.0) / 128.0, rate


def decode(data: bytes, name: str, tmp: str) -> tuple[np.ndarray, int]:
    """Mono float64 samples and rate of an audio file's bytes."""
    if name.lower().endswith(".wv"):
        src, dst = os.path.join(tmp, "clip.wv"), os.path.join(tmp, "clip.wav")
        with open(src, "wb") as f:
            f.write(data)
        subprocess.run(["wvunpack", "-q", "-y", src, "-o", dst], check=True, capture_output=True)
        x, rate = sf.read(dst, dtype="float64", always_2d=True)
    else:
        x, rate = sf.read(io.BytesIO(data), dtype="float64", always_2d=True)
    return x.mean(axis=1), rate


def sources(pkg: Package, root: str, files: list[str]) -> dict[str, tuple[str, object]]:
    """Every source id of the package that a rule matches -> its class and a way to read its bytes."""
    ids: dict[str, object] = {}
    for rel in files:
        path = os.path.join(root, rel)
        if rel.lower().endswith(ARCHIVES):
            with zipfile.ZipFile(path) as z:
                for member in z.namelist():
                    if member.lower().endswith(AUDIO):
                        ids[f"{rel}!{member}"] = (path, member)
        elif rel.lower().endswith(".wad"):
            with open(path, "rb") as f:
                for lump in wad_lumps(f.read()):
                    ids[f"{rel}!{lump}"] = (path, lump)
        else:
            ids[rel] = (path, None)
    matched = {}
    for source, where in ids.items():
        labels = [label for label, rx in pkg.rules.items() if re.search(rx, source)]
        if len(labels) > 1:
            raise RuntimeError(f"{source} matches {labels}: fix RULES")
        if labels:
            matched[source] = (labels[0], where)
    return matched


def read_source(where: tuple[str, str | None], source: str, tmp: str) -> tuple[np.ndarray, int]:
    path, member = where
    if member is None:
        with open(path, "rb") as f:
            return decode(f.read(), path, tmp)
    if path.lower().endswith(".wad"):
        with open(path, "rb") as f:
            return dmx_audio(wad_lumps(f.read())[member])
    with zipfile.ZipFile(path) as z:
        return decode(z.read(member), member, tmp)


def quota(available: dict[str, int]) -> dict[str, int]:
    """Clips to take from each package for one class: at most CAP, and no package above MAX_SHARE of
    the class (the largest is cut first, down to 1 clip; ties by name)."""
    n = {p: min(CAP, a) for p, a in available.items()}
    while n:
        top = max(sorted(n), key=lambda p: n[p])
        if n[top] <= 1 or n[top] <= MAX_SHARE * sum(n.values()):
            return n
        n[top] -= 1
    return n


def spread(items: list[str], k: int) -> list[str]:
    """At most k of the sorted items, evenly spread (deterministic)."""
    items = sorted(items)
    if len(items) <= k:
        return items
    return [items[int(i)] for i in np.round(np.linspace(0, len(items) - 1, k))]


# ---------------------------------------------------------------------------
# Clips
# ---------------------------------------------------------------------------

def shape(x: np.ndarray, rate: int) -> np.ndarray:
    """Trim silence below -TOP_DB of the peak (10 ms kept), keep the loudest MAX_S seconds, pad to MIN_S."""
    peak = np.abs(x).max()
    if peak < 1e-4:
        raise ValueError("silent")
    loud = np.flatnonzero(np.abs(x) >= peak * 10 ** (-TOP_DB / 20))
    margin = int(0.01 * rate)
    x = x[max(0, loud[0] - margin): loud[-1] + 1 + margin]
    n = int(MAX_S * rate)
    if len(x) > n:
        energy = np.concatenate([[0.0], np.cumsum(x ** 2)])
        start = int(np.argmax(energy[n:] - energy[:-n]))
        x = x[start: start + n]
    return np.pad(x, (0, max(0, int(MIN_S * rate) - len(x))))


def peak_ncc(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return 0.0
    return float(np.abs(fftconvolve(a, b[::-1])).max() / (na * nb))


def clip_seed(seed: int, source: str) -> int:
    return zlib.crc32(f"{seed}/{source}".encode())


def clip_name(source: str) -> str:
    """A short file name from a source id: the last path part, lower case, [a-z0-9-] only."""
    tail = re.split(r"[/!]", source)[-1]
    stem = os.path.splitext(tail)[0].lower()
    parent = re.split(r"[/!]", source)[-2].lower() if len(re.split(r"[/!]", source)) > 1 else ""
    if parent in {"q009", "aard", "0ad", "yo_frankie", "sarge", "footsteps", "explosions", "shoot", "misc",
                  "explons", "weapons", "vehicle", "machinegun", "shotgun", "vulcan", "rocket", "proxmine",
                  "items", "assault", "bazoo", "grenadier", "engineer", "medic", "none"}:
        stem = f"{parent}-{stem}"
    return re.sub(r"[^a-z0-9-]+", "-", stem).strip("-")


def make(out: str, *, debs: str = DEFAULT_DEBS, rate: int = RATE, seed: int = 20251124) -> tuple[list[dict], list[str]]:
    """Write the clips and manifest into ``out``; return the manifest rows and notes (copies, merges, skips)."""
    notes: list[str] = []
    candidates = []  # (package, label, source, audio at `rate`, "package version")
    found: dict[str, dict] = {}  # package -> {source id: (label, where)}
    versions: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for pkg in PACKAGES:
            if any(r"\.wv" in rx for rx in pkg.rules.values()) and shutil.which("wvunpack") is None:
                note(f"skipping {pkg.name}: wvunpack is not installed (apt-get install wavpack)")
                continue
            got = package_files(pkg, debs, tmp)
            if got is None:
                continue
            root, files, versions[pkg.name] = got
            found[pkg.name] = sources(pkg, root, files)
        for label in CLASSES:
            counts = quota({name: sum(lab == label for lab, _ in m.values()) for name, m in found.items()})
            for pkg in PACKAGES:
                if pkg.name not in found:
                    continue
                matched = found[pkg.name]
                ids = [s for s, (lab, _) in matched.items() if lab == label]
                for source in spread(ids, counts[pkg.name]):
                    try:
                        x, sr = read_source(matched[source][1], source, tmp)
                        x = shape(x, sr)
                    except (ValueError, RuntimeError, sf.LibsndfileError, subprocess.CalledProcessError) as e:
                        notes.append(f"{pkg.name}: {source} left out ({e})")
                        continue
                    y = soxr.resample(x, sr, rate, quality="HQ")
                    candidates.append((pkg, label, source, y, versions[pkg.name]))

    # lineages: join packages that share a recording; drop copies of a recording already kept
    low = [soxr.resample(c[3], rate, 8000, quality="HQ") for c in candidates]
    parent = {c[0].group: c[0].group for c in candidates}

    def root_of(g: str) -> str:
        while parent[g] != g:
            g = parent[g]
        return g

    twin_of: dict[int, int] = {}
    for i, j in itertools.combinations(range(len(candidates)), 2):
        if j in twin_of:
            continue
        r = peak_ncc(low[i], low[j])
        if r >= SHARED:
            a, b = candidates[i], candidates[j]
            twin_of[j] = i
            notes.append(f"{b[0].name}: {b[2]} is {a[0].name}: {a[2]} (peak correlation {r:.3f}; "
                         + ("dropped" if a[0].group == b[0].group else "one group, dropped") + ")")
            if a[0].group != b[0].group:
                parent[root_of(b[0].group)] = root_of(a[0].group)
    members: dict[str, list[str]] = {}
    for g in parent:
        members.setdefault(root_of(g), []).append(g)
    group_name = {g: "-".join(sorted(members[root_of(g)])) for g in parent}
    if len(set(group_name.values())) < MIN_GROUPS:
        raise SystemExit(f"make_sfx: only {len(set(group_name.values()))} groups of packages could be read "
                         f"(need {MIN_GROUPS}); see the notes above")

    for label in CLASSES:
        shutil.rmtree(os.path.join(out, label), ignore_errors=True)
    os.makedirs(out, exist_ok=True)
    rows = []
    for i, (pkg, label, source, y, version) in enumerate(candidates):
        if i in twin_of:
            continue
        gain_db = float(np.random.default_rng(clip_seed(seed, source)).uniform(-6, 0))
        y = y / np.abs(y).max() * 0.9 * 10 ** (gain_db / 20)
        group = group_name[pkg.group]
        rel = os.path.join(label, f"{group}_{pkg.group}-{clip_name(source)}.flac")
        if any(r["path"] == rel for r in rows):  # splash.ogg and splash.wav
            rel = rel[:-5] + "-" + os.path.splitext(source)[1].lstrip(".").lower() + ".flac"
        os.makedirs(os.path.join(out, label), exist_ok=True)
        sf.write(os.path.join(out, rel), y.astype(np.float32), rate, subtype="PCM_16", format="FLAC")
        rows.append({"path": rel, "label": label, "group": group, "package": version, "source": source,
                     "seconds": f"{len(y) / rate:.3f}"})
    with open(os.path.join(out, "manifest.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["path", "label", "group", "package", "source", "seconds"])
        w.writeheader()
        w.writerows(rows)
    return rows, notes


def table(rows: list[dict]) -> str:
    """Clips per class (rows) and group (columns), as text."""
    groups = sorted({r["group"] for r in rows})
    count = Counter((r["label"], r["group"]) for r in rows)
    width = max(len(g) for g in groups) + 1
    lines = ["".ljust(10) + "".join(g.rjust(width) for g in groups) + "  total"]
    for label in CLASSES:
        lines.append(label.ljust(10) + "".join(str(count[label, g] or ".").rjust(width) for g in groups)
                     + f"  {sum(count[label, g] for g in groups):5d}")
    lines.append("total".ljust(10) + "".join(str(sum(count[c, g] for c in CLASSES)).rjust(width) for g in groups)
                 + f"  {len(rows):5d}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output folder (its class folders are replaced; manifest.csv)")
    parser.add_argument("--debs", default=DEFAULT_DEBS,
                        help="where the packages' .deb files are looked for and downloaded")
    parser.add_argument("--rate", type=int, default=RATE, help="sample rate of the clips (Hz)")
    parser.add_argument("--seed", type=int, default=20251124, help="seed of the per-clip gains")
    args = parser.parse_args(argv)
    rows, notes = make(args.out, debs=args.debs, rate=args.rate, seed=args.seed)
    for line in notes:
        print(f"make_sfx: {line}")
    print(table(rows))
    size = sum(os.path.getsize(os.path.join(args.out, r["path"])) for r in rows)
    seconds = [float(r["seconds"]) for r in rows]
    print(f"make_sfx: {len(rows)} clips, {len({r['label'] for r in rows})} classes, "
          f"{len({r['group'] for r in rows})} groups from {len({r['package'] for r in rows})} packages, "
          f"{args.rate} Hz; {sum(seconds):.1f} s in all ({min(seconds):.2f}-{max(seconds):.2f} s a clip), "
          f"{size} bytes ({size / 1e6:.1f} MB) of FLAC in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
