"""The repository itself: no lock or run artefact is tracked, and the README's first command leaves it clean."""

import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

#: What spectro's commands leave beside their outputs while they run (or after a kill -9).
ARTEFACTS = [".store.lock", ".compare.lock", ".runs.lock", ".store.tmp-123-abc/features.npy",
             ".store.old-123/config.json", ".tmp-abc.json", "compare/.tmp-abc.png"]


def _git(*args: str) -> subprocess.CompletedProcess:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_no_lock_or_temporary_file_is_tracked():
    tracked = _git("ls-files").stdout.splitlines()
    artefacts = [p for p in tracked if p.rsplit("/", 1)[-1].endswith(".lock") or ".tmp-" in p or ".old-" in p]
    assert artefacts == []


@pytest.mark.parametrize("path", ARTEFACTS)
def test_what_a_command_leaves_beside_its_output_is_ignored(path):
    # The README's first command (preprocess into store/, compare into compare/) makes and removes these.
    assert _git("check-ignore", "--no-index", "-q", path).returncode == 0, f"{path} is not ignored"
