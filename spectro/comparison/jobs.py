"""The runs of a comparison: one per (model, test fold), planned, reused when finished, resumed when
interrupted, trained here or side by side in spawned processes.

Each run is a plain :func:`spectro.train` into ``OUT/<model>-<options hash>/fold<k>/``: another
scheduler could run each as ``spectro train``. A run's failure is its outcome, never an exception.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import signal
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace

import pandas as pd
import torch

from spectro.config import RUNTIME_FIELDS, TrainConfig
from spectro.errors import SpectroError, TrainingInterrupted, first_line
from spectro.training.classifier import classifier_class
from spectro.training.run import diverged_advice, run_status
from spectro.training.train import train
from spectro.utils.files import read_json
from spectro.utils.signals import StopSignals
from spectro.utils.workers import die_with_parent

__all__ = ["Job", "job_config", "options_hash", "run_jobs", "train_job", "one_line", "train_seconds"]


@dataclass(frozen=True)
class Job:
    """One run to train: a model on one test fold, into ``run_dir``, with its TrainConfig as a dict."""

    model: str
    test_fold: int
    run_dir: str
    store: str
    config: dict
    threads: int = 0
    progress: bool = False
    #: The seed this run stands for in a comparison over seeds (a model that ignores the seed serves them all).
    seed: int | None = None


def run_jobs(all_jobs: list[Job], jobs: int, progress: bool, say) -> dict[str, dict]:
    outcomes: dict[str, dict] = {}
    pending = []
    for job in all_jobs:
        if run_status(job.run_dir) == "done":
            outcomes[job.run_dir] = {"status": "reused", "seconds": 0.0}
            say(f"{job.model} fold {job.test_fold}: reusing the finished run {job.run_dir}")
        else:
            pending.append(job)
    workers = max(1, min(int(jobs), len(pending)))
    if workers == 1:
        for job in pending:
            outcomes[job.run_dir] = train_job(replace(job, progress=progress))
            say_outcome(say, job, outcomes[job.run_dir])
        return outcomes
    # Threads: the ones this process would use, shared out; oversubscribing cores slows every job.
    threads = max(1, torch.get_num_threads() // workers)
    say(f"training {len(pending)} runs, {workers} at a time, {threads} thread(s) each")
    with _Slots(workers) as slots, _ForwardStop(slots.processes, say) as stop:
        outcomes.update(_run_in_slots(slots, [replace(job, threads=threads) for job in pending], stop, say))
    if stop.signals:
        stopped = [j for j in pending if outcomes.get(j.run_dir, {}).get("status") in ("stopped", None)]
        raise TrainingInterrupted(f"compare stopped by {stop.signals[0]}: {len(stopped)} run(s) not finished "
                                  "(those that had started are checkpointed); run the same compare again to "
                                  "resume them", signum=signal.Signals[stop.signals[0]])
    return outcomes


#: A job whose process died: what happened and how to go on (the other jobs went on).
DIED = ("its training process died (killed by a signal, or out of memory) before it finished; the other runs went "
        "on; run the same compare again to resume it")


class _Slots:
    """``n`` job processes, each its own single-process pool (spawned): one that dies breaks its own pool
    alone, and only its job fails; the slot gets a new process for the next job."""

    def __init__(self, n: int) -> None:
        self.context = multiprocessing.get_context("spawn")  # no forked torch/OpenMP state, same on every OS
        self.pools = [self._pool() for _ in range(n)]

    def _pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=1, mp_context=self.context, initializer=_job_worker,
                                   initargs=(os.getpid(),))

    def replace(self, i: int) -> None:
        self.pools[i].shutdown(wait=True, cancel_futures=True)  # a broken pool: its threads end at once
        self.pools[i] = self._pool()

    def processes(self) -> list:
        # Processes of the pools (a CPython attribute since 3.2; no public way to reach them).
        return [proc for pool in self.pools for proc in list((getattr(pool, "_processes", None) or {}).values())]

    def __enter__(self) -> "_Slots":
        return self

    def __exit__(self, *exc) -> None:
        for pool in self.pools:
            pool.shutdown(wait=True, cancel_futures=True)


def _run_in_slots(slots: _Slots, queue: list[Job], stop: "_ForwardStop", say) -> dict[str, dict]:
    """Run ``queue`` in ``slots``, the next job into whichever slot is free; a signal starts no new job."""
    outcomes: dict[str, dict] = {}
    running: dict = {}  # future -> (slot, job)
    queue = list(queue)

    def start(i: int) -> None:
        job = queue.pop(0)
        running[slots.pools[i].submit(_spawned_job, job)] = (i, job)

    for i in range(min(len(slots.pools), len(queue))):
        start(i)
    while running:
        done, _ = wait(running, return_when=FIRST_COMPLETED)
        for fut in done:
            i, job = running.pop(fut)
            if fut.cancelled():
                continue
            try:
                outcomes[job.run_dir] = fut.result()
            except BrokenProcessPool:  # its process died: this job alone fails, the slot starts afresh
                outcomes[job.run_dir] = {"status": "failed", "error": DIED}
                if not stop.signals:
                    slots.replace(i)
            except Exception as err:  # noqa: BLE001 - the job could not be sent or its result not read back
                outcomes[job.run_dir] = {"status": "failed", "error": f"worker process failed: {one_line(err)}"}
            if outcomes[job.run_dir]["status"] != "stopped":
                say_outcome(say, job, outcomes[job.run_dir])
            if queue and not stop.signals:
                start(i)
    return outcomes


class _ForwardStop(StopSignals):
    """SIGINT or SIGTERM to the compare process alone: pass it on to the training processes.

    Each job stops at its next batch with a resumable checkpoint, as
    ``--jobs 1`` does (a second signal aborts them at once); jobs not yet
    started are cancelled. The parent waits for them, then raises
    :class:`~spectro.errors.TrainingInterrupted`. Handlers can be set only
    in the main thread; elsewhere nothing is installed.
    """

    def __init__(self, processes, say) -> None:
        super().__init__()
        self.processes, self.say, self.signals = processes, say, []

    def _handle(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if not self.signals:
            self.say(f"{name}: stopping every training job after its current batch (checkpointed)")
        self.signals.append(name)
        for proc in self.processes():
            with contextlib.suppress(ProcessLookupError, OSError, ValueError):
                os.kill(proc.pid, signum)


# State of a spawned job process: a stop asked for while it waits for (or sets up) a job.
_WORKER = {"stop": False, "busy": False}


def _job_worker(parent: int) -> None:
    """Set up a spawned job process: it dies with ``parent`` (even by SIGKILL) and stops when told."""
    die_with_parent(parent)
    # Its own process group: a Ctrl-C at the terminal reaches the compare process alone, which passes
    # it on once (two would abort the job at once instead of at its next batch).
    if hasattr(os, "setpgrp"):
        os.setpgrp()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _worker_stop)


def _worker_stop(signum, frame) -> None:
    # Inside the training loop its own handler stops at the next batch; here the job is between
    # steps (loading, fitting an SVM, scoring) and unwinds, or the process is idle and starts no job.
    _WORKER["stop"] = True
    if _WORKER["busy"]:
        raise KeyboardInterrupt


def _spawned_job(job: Job) -> dict:
    if _WORKER["stop"]:
        return {"status": "stopped"}
    _WORKER["busy"] = True
    try:
        return train_job(job)
    except KeyboardInterrupt:  # TrainingInterrupted too: stopped at a batch, checkpointed
        _WORKER["stop"] = True
        return {"status": "stopped"}
    finally:
        _WORKER["busy"] = False


def train_job(job: Job) -> dict:
    """Train (or resume) one run; never raises for a failure of the run itself."""
    if job.threads:
        torch.set_num_threads(job.threads)
    t0 = time.perf_counter()
    try:
        status = run_status(job.run_dir)
        if status == "diverged":
            info = read_json(os.path.join(job.run_dir, "run.json"))
            return {"status": "failed", "error": f"diverged earlier: {info.get('error')}; "
                                                 f"{diverged_advice(job.run_dir, info)}"}
        if status is not None:
            run = train(job.store, resume=job.run_dir, progress=job.progress)
            action = "resumed"
        else:
            run = train(job.store, out=job.run_dir, config=TrainConfig.from_dict(job.config), progress=job.progress)
            action = "trained"
        if run is None or run.status != "done":
            return {"status": "failed", "error": f"stopped before the end ({getattr(run, 'status', 'no run')})"}
        return {"status": action, "seconds": time.perf_counter() - t0}
    except (SpectroError, RuntimeError, ValueError, OSError, MemoryError) as err:
        return {"status": "failed", "error": one_line(err), "seconds": time.perf_counter() - t0}


def say_outcome(say, job: Job, outcome: dict) -> None:
    if outcome["status"] == "failed":
        say(f"{job.model} fold {job.test_fold}: FAILED: {outcome['error']}")
    else:
        say(f"{job.model} fold {job.test_fold}: {outcome['status']} in {outcome.get('seconds', 0):.1f} s")


def one_line(err: BaseException) -> str:
    """:func:`~spectro.errors.first_line`, with the type in front unless it is spectro's own one-line error."""
    if isinstance(err, SpectroError) or not str(err).strip():
        return first_line(err)
    return f"{type(err).__name__}: {first_line(err)}"


def train_seconds(run_dir: str) -> float:
    """Seconds a run spent training: its epochs in metrics.csv summed (an SVM's one row: its fit).

    Every epoch that counts, whichever session ran it: a run resumed after an
    interruption, or reused from an earlier compare, costs what all its epochs
    took, not what the last session took. (An epoch cut short by an
    interruption is run again and counted once.)
    """
    return float(pd.read_csv(os.path.join(run_dir, "metrics.csv"))["seconds"].sum())


def job_config(model: str, options: dict, model_options: dict) -> TrainConfig:
    ignores = classifier_class(model).ignores  # left out, they do not change the run's options hash
    options = {k: v for k, v in options.items() if k not in ignores}
    try:
        return TrainConfig(model=model, model_options=dict(model_options), **options)
    except TypeError as err:
        raise SpectroError(f"bad training option: {err}") from None


def options_hash(cfg: TrainConfig) -> str:
    """Six hex digits of what the run computes (not where it runs, not its folds).

    A field added later at its former value is left out (``TrainConfig.identity``), so runs made
    before it existed keep their names and are reused.
    """
    d = {k: v for k, v in cfg.identity().items() if k not in RUNTIME_FIELDS and k not in ("test_fold", "val_fold")}
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:6]
