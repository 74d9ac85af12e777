"""Fixtures shared by the training and evaluation tests."""

import subprocess

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    # Tiny models gain nothing from a second thread, and OpenMP threads that compete
    # with another busy process slow each step down many times over.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def read_only(tmp_path):
    """A folder on a read-only tmpfs (skipped where mounting is not allowed), unmounted afterwards."""
    folder = tmp_path / "ro"
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(folder)], capture_output=True,
                          check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)
