"""Process pools for decoding (preprocess, predict): results in order, a dead worker is one line."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterator, Sequence

import torch
from threadpoolctl import threadpool_limits

from spectro.errors import SpectroError

__all__ = ["pool_context", "process_map", "single_thread_worker"]


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


def single_thread_worker() -> Any:
    """Set up a pool process: one thread, and no signal handling of its own.

    Two busy workers with thread pools of their own would oversubscribe the
    cores. Ctrl-C and SIGTERM are ignored: the main process handles them and
    stops the workers (:func:`process_map`), so none prints a traceback of
    its own or dies in the middle of the pool's bookkeeping.
    Returns the threadpoolctl limit, which the caller keeps alive.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    torch.set_num_threads(1)
    return threadpool_limits(1)
