"""Process pools for decoding (preprocess, predict): results in order, a dead worker is one line,
and no worker outlives its parent."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterator, Sequence

import torch
from threadpoolctl import threadpool_limits

from spectro.errors import SpectroError

__all__ = ["pool_context", "process_map", "single_thread_worker", "die_with_parent", "process_alive"]

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
#: Seconds between checks of the parent where the kernel cannot watch it for us.
PARENT_POLL_S = 1.0


def process_alive(pid: Any) -> bool:
    """Whether process ``pid`` exists on this host (one owned by another user counts); False for no pid."""
    try:
        os.kill(int(pid), 0)
    except (TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def pool_context() -> Any:
    """The multiprocessing context of decoding pools (preprocess, predict).

    fork starts workers in milliseconds and shares the imported modules;
    spawn is the portable fallback.
    """
    return mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")


@contextlib.contextmanager
def process_map(fn: Callable[[Any], Any], tasks: Sequence[Any], *, workers: int,
                initializer: Callable[..., Any], initargs: tuple = ()) -> Iterator[Iterator[Any]]:
    """``map(fn, tasks)`` in ``workers`` processes, results in order; the block stops them.

    With ``workers`` <= 1 it maps in this process after
    ``initializer(*initargs, single_thread=False)``; a pool process runs
    ``initializer(*initargs)``.

    concurrent.futures rather than multiprocessing.Pool: a Pool whose worker
    dies (killed, out of memory) waits for that worker's result for ever, and
    its terminate() deadlocks on the queue lock a dead worker held; here a
    dead worker breaks the pool, which ends the block with one line. Workers
    are never killed, only told to stop: they ignore SIGINT and SIGTERM
    (:func:`single_thread_worker`), and when the block ends early the work
    not yet started is cancelled and each worker exits after the chunk it
    holds. A worker killed while it sends a result would leave the pool
    reading half a message for ever (at interpreter exit, too).
    """
    if workers <= 1:
        initializer(*initargs, single_thread=False)
        yield map(fn, tasks)
        return
    executor = ProcessPoolExecutor(workers, mp_context=pool_context(), initializer=initializer, initargs=initargs)
    finished = False
    try:
        yield executor.map(fn, tasks)
        finished = True
    except BrokenProcessPool:
        raise SpectroError("a worker process died unexpectedly (killed, or out of memory?)") from None
    finally:
        executor.shutdown(wait=finished, cancel_futures=not finished)


def die_with_parent(parent: int) -> None:
    """Make this worker process exit as soon as its parent ``parent`` (a pid) dies, however it dies.

    A parent killed with SIGKILL runs no clean-up, and its pool workers
    would live on (PPID 1), holding memory for good. On Linux the kernel
    sends this process SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``;
    the pool must be started from the thread that lives as long as the
    parent's work, as spectro's are, since the signal follows the creating
    thread). Elsewhere a daemon thread checks every :data:`PARENT_POLL_S`
    seconds that the parent is still this process's parent. Either way a
    parent that died before this call is caught at once.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
            if os.getppid() != parent:  # it died between fork and prctl
                os._exit(1)
            return
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="spectro-parent-watch").start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(1)  # the parent is gone: nobody will read what this process would compute


def single_thread_worker() -> Any:
    """Set up a pool process: one thread, and no signal handling of its own.

    Two busy workers with thread pools of their own would oversubscribe the
    cores. Ctrl-C and SIGTERM are ignored: the main process handles them and
    stops the workers (:func:`process_map`), so none prints a traceback of
    its own or dies in the middle of the pool's bookkeeping; a parent that
    dies without stopping them (SIGKILL) takes them with it
    (:func:`die_with_parent`). Returns the threadpoolctl limit, which the
    caller keeps alive.
    """
    die_with_parent(os.getppid())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    torch.set_num_threads(1)
    return threadpool_limits(1)
