"""The decoding pool: a worker killed mid-run is one line, never a hang."""

import subprocess
import sys

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
