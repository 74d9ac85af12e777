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
