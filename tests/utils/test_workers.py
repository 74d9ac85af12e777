"""The decoding pool: a worker killed mid-run is one line, never a hang."""

import subprocess
import sys

from synth import process_alive

_DYING_WORKER = """
import os, signal, sys
from spectro.utils.workers import process_map
from spectro.errors import SpectroError

def init(single_thread=True):
    pass

def work(k):
    if k == 3:
        os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer would
    return k

if __name__ == "__main__":
    try:
        with process_map(work, list(range(8)), workers=2, initializer=init) as results:
            print(list(results))
    except SpectroError as err:
        print("spectro:", err)
        sys.exit(1)
"""


def test_a_worker_killed_mid_run_is_one_line_not_a_hang(tmp_path):
    # multiprocessing.Pool, which preprocess and predict used before, waits for a
    # killed worker's result for ever: this run would hit the timeout.
    script = tmp_path / "dying.py"
    script.write_text(_DYING_WORKER)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert done.stdout.strip() == "spectro: a worker process died unexpectedly (killed, or out of memory?)"
    assert "Traceback" not in done.stderr


_ORPHAN = """
import os, sys, time
from spectro.utils.workers import process_map, single_thread_worker

def init(single_thread=True):
    single_thread_worker()

def work(k):
    os.write(1, f"{os.getpid()}\\n".encode())  # the worker's pid, for the test (one write: lines never interleave)
    time.sleep(60)
    return k

if __name__ == "__main__":
    with process_map(work, [0, 1], workers=2, initializer=init) as results:
        list(results)
"""


def test_workers_die_with_a_parent_killed_by_sigkill(tmp_path):
    import signal
    import time

    script = tmp_path / "orphan.py"
    script.write_text(_ORPHAN)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    workers = [int(proc.stdout.readline()) for _ in range(2)]
    proc.send_signal(signal.SIGKILL)  # no clean-up runs in the parent
    proc.wait(timeout=30)
    deadline = time.monotonic() + 20
    alive = workers
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in workers if process_alive(pid)]
        time.sleep(0.1)
    assert alive == [], "a worker outlived its killed parent"


# -- issue 31 F11 ----------------------------------------------------------------------

_LATE_START = """
import os, sys, time
import spectro.utils.workers as workers
from spectro.utils.workers import process_map, single_thread_worker

_real = workers.die_with_parent
_told = []

def tell_pid():  # once per worker, from whichever of the two runs first
    if not _told:
        _told.append(True)
        os.write(1, f"{os.getpid()}\\n".encode())

def slow_die_with_parent(parent):
    tell_pid()
    time.sleep(1.0)  # the worker is slow to start: its parent is dead by now
    _real(parent)

workers.die_with_parent = slow_die_with_parent

def init(single_thread=True):
    tell_pid()
    time.sleep(1.0)
    single_thread_worker()

def work(k):
    time.sleep(60)
    return k

if __name__ == "__main__":
    with process_map(work, [0, 1], workers=2, initializer=init) as results:
        os._exit(0)  # the parent dies before its workers have started
"""


def test_a_worker_that_starts_after_its_parent_died_exits(tmp_path):
    """The worker used to ask os.getppid() itself, got PID 1 (its parent gone) and lived on for good."""
    import signal
    import time

    script = tmp_path / "late.py"
    script.write_text(_LATE_START)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    workers = [int(proc.stdout.readline()) for _ in range(2)]
    proc.wait(timeout=30)
    deadline = time.monotonic() + 20
    alive = workers
    try:
        while alive and time.monotonic() < deadline:
            alive = [pid for pid in workers if process_alive(pid)]
            time.sleep(0.1)
        assert alive == [], "a worker that started after its parent died lives on"
    finally:
        for pid in alive:
            os_kill(pid, signal.SIGKILL)


def os_kill(pid, sig):
    import contextlib
    import os

    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def test_workers_are_capped_at_the_cpus_with_a_note(capsys):
    from spectro.utils.workers import available_cpus, worker_count

    cpus = available_cpus()
    assert worker_count(100000) == cpus
    assert f"--workers 100000: this machine gives the process {cpus} CPU(s)" in capsys.readouterr().err
    assert worker_count(None) == cpus and worker_count(0) == 0 and worker_count(1) == 1
    assert capsys.readouterr().err == ""


def test_preprocess_and_predict_cap_or_refuse_workers(tmp_path, capsys):
    from synth import TINY_CFG, class_folders

    from spectro.cli.main import main
    from spectro.signals.preprocess import preprocess
    from spectro.training.train import train

    src = class_folders(tmp_path / "src", per_class=6, sr=8000, classes=("low", "high"))
    preprocess(src, str(tmp_path / "store"), config=TINY_CFG, workers=100000, progress=False)
    assert "--workers 100000" in capsys.readouterr().err
    run = train(str(tmp_path / "store"), "svm", str(tmp_path / "run"), device="cpu", progress=False).path
    capsys.readouterr()
    assert main(["predict", run, src, "--workers", "-1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--workers must be a whole number of 0 or more, got -1" in err
