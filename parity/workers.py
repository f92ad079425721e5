"""Independent jobs shared out to worker processes, one thread each, so that a check uses every
core: two single-threaded processes kept busy do more on 2 cores than one process with 2
threads, whose libraries (torch, MKL, our kernels) split each small product in two and wait.

Workers are spawned (not forked: torch and MLX keep threads and state a fork would copy), pull
jobs from one queue in the order given (longest first balances the load), and report when each
starts and ends, so the caller can say what runs. With `workers=1` the jobs run in this process,
with its threads as they are.

With a `budget`, each job also declares a `cost` (e.g. its peak memory in MB): jobs start in the
order given, and one starts only while the running jobs' costs plus its own fit the budget (a job
that costs more than the whole budget starts alone). `python -m parity sweep` bounds memory so.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
MAX_WORKERS = 4  # each worker holds its own copy of the models (whisper-base: ~1 GB with torch)


@dataclass(frozen=True)
class Job:
    key: str  # unique, shown in progress lines
    args: tuple  # passed to the job function (picklable)


@dataclass(frozen=True)
class Done:
    job: Job
    result: Any  # the function's return value; None when it raised
    wall_s: float
    cpu_s: float  # this job's CPU time in its worker (all of that process's threads)
    error: str | None = None  # the traceback when the function raised


def cpu_count() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def default_workers(n_jobs: int) -> int:
    return max(1, min(cpu_count(), MAX_WORKERS, n_jobs))


def _single_threaded() -> None:
    """Before any numerical library loads: one thread in each (MLX's BLAS and kernels through
    OpenMP, torch's intra-op pool)."""
    for k in THREAD_VARS:
        os.environ[k] = "1"
    import mlx_impl  # noqa: F401  (preloads MKL/OpenBLAS: it must come before mlx)

    try:
        import torch
    except ImportError:  # a job that needs torch will say so itself
        return
    torch.set_num_threads(1)


def _timed(fn: Callable, job: Job) -> Done:
    t, c = time.perf_counter(), time.process_time()
    try:
        result, error = fn(*job.args), None
    except Exception:
        result, error = None, traceback.format_exc()
    return Done(job, result, time.perf_counter() - t, time.process_time() - c, error)


class _Gate:
    """Lets jobs start in their queue order while the sum of the running jobs' costs (integers)
    fits `budget`; a job costing more than the budget waits until nothing runs."""

    def __init__(self, ctx, budget: int):
        self.budget = budget
        self.cond = ctx.Condition()
        self.used = ctx.Value("q", 0, lock=False)  # guarded by cond
        self.turn = ctx.Value("q", 0, lock=False)  # queue position of the next job to start

    def acquire(self, position: int, cost: int) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.turn.value == position and (
                self.used.value == 0 or self.used.value + cost <= self.budget))
            self.turn.value += 1
            self.used.value += cost
            self.cond.notify_all()

    def release(self, cost: int) -> None:
        with self.cond:
            self.used.value -= cost
            self.cond.notify_all()


def _worker(fn: Callable, jobs, events, init: Callable[[], None], gate: _Gate | None) -> None:
    init()
    while True:
        item = jobs.get()
        if item is None:
            return
        position, job, cost = item
        if gate is not None:
            gate.acquire(position, cost)
        events.put(("start", job, os.getpid()))
        try:
            done = _timed(fn, job)
        finally:
            if gate is not None:
                gate.release(cost)
        events.put(("done", done, os.getpid()))


def run(fn: Callable, jobs: Iterable[Job], workers: int,
        on_start: Callable[[Job], None] = lambda job: None,
        init: Callable[[], None] = _single_threaded,
        cost: Callable[[Job], int] | None = None, budget: int | None = None) -> Iterable[Done]:
    """Yield a `Done` per job, as they finish; `fn` must be a module-level function.

    `init` runs once in each spawned worker before its first job (default: one thread per
    numerical library). With `budget`, `cost(job)` (an integer) bounds what runs at once (see
    the module docstring)."""
    jobs = list(jobs)
    if workers <= 1:
        for job in jobs:
            on_start(job)
            yield _timed(fn, job)
        return
    ctx = mp.get_context("spawn")
    todo, events = ctx.Queue(), ctx.Queue()
    gate = _Gate(ctx, int(budget)) if budget is not None else None
    for i, job in enumerate(jobs):
        todo.put((i, job, int(cost(job)) if cost is not None and gate is not None else 0))
    procs = [ctx.Process(target=_worker, args=(fn, todo, events, init, gate), daemon=True)
             for _ in range(workers)]
    for _ in procs:
        todo.put(None)
    for p in procs:
        p.start()
    left = len(jobs)
    try:
        while left:
            try:
                kind, payload, _pid = events.get(timeout=5.0)
            except queue.Empty:
                dead = [p for p in procs if p.exitcode not in (None, 0)]
                if dead:
                    raise RuntimeError(f"a worker process died (exit code {dead[0].exitcode}, "
                                       "e.g. killed for memory) with jobs left; run with fewer "
                                       "workers or free memory") from None
                continue
            if kind == "start":
                on_start(payload)
            else:
                left -= 1
                yield payload
    finally:
        for p in procs:  # all done: let each worker exit on its own (killed, it can leave a lock)
            p.join(timeout=30 if not left else 0)
        for p in procs:  # the caller stopped early, or a worker hangs
            if p.is_alive():
                p.terminate()
                p.join(timeout=10)
