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
from spectro.utils.console import note

__all__ = ["pool_context", "process_map", "single_thread_worker", "die_with_parent", "process_alive", "worker_count",
           "available_cpus"]

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


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one, else the CPU count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def worker_count(workers: Any, *, option: str = "--workers") -> int:
    """How many decoding processes ``workers`` asks for, at most :func:`available_cpus` (None: that many).

    More processes than CPUs only compete for them (and 100000 of them fork
    until the out-of-memory killer comes): a larger number is capped, with a
    note. 0 and 1 work in this process.

    Raises
    ------
    SpectroError
        ``workers`` is not a whole number of 0 or more.
    """
    cpus = available_cpus()
    if workers is None:
        return cpus
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise SpectroError(f"{option} must be a whole number of 0 or more, got {workers!r}")
    if workers > cpus:
        note(f"{option} {workers}: this machine gives the process {cpus} CPU(s); using {cpus} workers")
        return cpus
    return workers


@contextlib.contextmanager
def process_map(fn: Callable[[Any], Any], tasks: Sequence[Any], *, workers: int,
                initializer: Callable[..., Any], initargs: tuple = ()) -> Iterator[Iterator[Any]]:
    """``map(fn, tasks)`` in ``workers`` processes, results in order; the block stops them.

    With ``workers`` <= 1 it maps in this process after
    ``initializer(*initargs, single_thread=False)``; a pool process first
    ties its life to this process (:func:`die_with_parent`, given this
    process's pid from here: a worker that starts after this process died
    exits at once) and then runs ``initializer(*initargs)``.

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
    executor = ProcessPoolExecutor(workers, mp_context=pool_context(), initializer=_start_worker,
                                   initargs=(os.getpid(), initializer, initargs))
    finished = False
    try:
        yield executor.map(fn, tasks)
        finished = True
    except BrokenProcessPool:
        raise SpectroError("a worker process died unexpectedly (killed, or out of memory?)") from None
    finally:
        executor.shutdown(wait=finished, cancel_futures=not finished)


def _start_worker(parent: int, initializer: Callable[..., Any], initargs: tuple) -> None:
    """A pool process's first step: die with ``parent`` (the pid the parent gave), then set up."""
    die_with_parent(parent)
    initializer(*initargs)


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
    (:func:`die_with_parent`, which :func:`process_map` calls with the
    parent's pid before this: asked here, ``os.getppid()`` of a worker whose
    parent already died is 1, and that worker would never exit). Returns the
    threadpoolctl limit, which the caller keeps alive.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    torch.set_num_threads(1)
    return threadpool_limits(1)
