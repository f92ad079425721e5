"""The one inference thread: it owns every MLX model and runs the jobs of a bounded queue.

MLX is not safe to drive from many threads, and on a CPU or one GPU two inferences at once only
share the same cores. So HTTP handlers (asyncio) never touch a model: they submit a job, a
function of the `ModelPool`, to `InferenceWorker`, which runs jobs one at a time in its own
thread, in arrival order. The queue is bounded: a submit to a full queue raises `Busy` at once
(the server answers 503), it never waits.

A streaming job is a function `fn(pool, emit)` that calls `emit(item)` for each item it makes
(an audio chunk, a text delta); each goes to the event loop as it comes. When the client goes
away the handler cancels the job and the job's next `emit` raises, which unwinds the generation
loop, so a dropped stream frees the thread promptly.

`ModelPool` (used only from the worker thread): a model loads on first use; a model unused for
`idle_ttl` seconds is unloaded when the worker is idle; when the models held exceed
`memory_budget` bytes (their parameters' sizes) the least recently used others are unloaded.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("mlx_impl.server")


class Busy(Exception):
    """The request queue is full."""


def parameter_bytes(obj, depth: int = 2) -> int:
    """Bytes of the MLX parameters of `obj`: an `nn.Module`, or an object holding modules as
    attributes (a transcriber's `model`, a TTS's `lm` and codec), `depth` levels down."""
    import mlx.nn as nn
    from mlx.utils import tree_flatten

    if isinstance(obj, nn.Module):
        return sum(v.nbytes for _, v in tree_flatten(obj.parameters()))
    if depth == 0 or not hasattr(obj, "__dict__"):
        return 0
    return sum(parameter_bytes(v, depth - 1) for v in vars(obj).values())


@dataclass
class Loaded:
    model: object
    nbytes: int
    last_used: float


class ModelPool:
    """Models by id, each loaded on first use (worker thread only)."""

    def __init__(self, memory_budget: int, idle_ttl: float):
        self.memory_budget, self.idle_ttl = memory_budget, idle_ttl
        self._models: OrderedDict[str, Loaded] = OrderedDict()  # least recently used first
        self._lock = threading.Lock()  # /health reads the table from the event loop's thread
        self.loads = self.unloads = 0

    def get(self, model_id: str, load: Callable[[], object]):
        """The model `model_id`, made by `load()` if it is not held."""
        entry = self._models.get(model_id)
        if entry is None:
            t0 = time.perf_counter()
            model = load()
            entry = Loaded(model, parameter_bytes(model), time.monotonic())
            with self._lock:
                self._models[model_id] = entry
            self.loads += 1
            log.info("loaded %s (%.0f MB) in %.2f s", model_id, entry.nbytes / 2**20,
                     time.perf_counter() - t0)
            self._fit_budget(keep=model_id)
        entry.last_used = time.monotonic()
        with self._lock:
            self._models.move_to_end(model_id)
        return entry.model

    def _fit_budget(self, keep: str) -> None:
        for model_id in list(self._models):
            if self.held_bytes() <= self.memory_budget:
                return
            if model_id != keep:
                self.unload(model_id, "memory budget")
        if self.held_bytes() > self.memory_budget:
            log.warning("%s alone (%.0f MB) exceeds the memory budget (%.0f MB); kept loaded",
                        keep, self.held_bytes() / 2**20, self.memory_budget / 2**20)

    def unload(self, model_id: str, why: str) -> None:
        import mlx.core as mx

        with self._lock:
            entry = self._models.pop(model_id, None)
        if entry is not None:
            del entry
            gc.collect()
            mx.clear_cache()
            self.unloads += 1
            log.info("unloaded %s (%s)", model_id, why)

    def unload_idle(self) -> None:
        now = time.monotonic()
        with self._lock:  # ids only: no reference to a model may outlive its unload
            stale = [k for k, e in self._models.items() if now - e.last_used > self.idle_ttl]
        for model_id in stale:
            self.unload(model_id, f"idle > {self.idle_ttl:g} s")

    def held_bytes(self) -> int:
        return sum(self.loaded().values())

    def loaded(self) -> dict[str, int]:
        """Bytes of each model held, least recently used first."""
        with self._lock:
            return {k: e.nbytes for k, e in self._models.items()}


_END = object()


class _Cancelled(Exception):
    """Raised inside a streaming job by `emit` once its client has gone away."""


@dataclass
class Job:
    fn: Callable  # fn(pool) -> result; a streaming job: fn(pool, emit) -> None
    streaming: bool
    loop: asyncio.AbstractEventLoop
    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)
    items: asyncio.Queue | None = None  # a streaming job's items, then _END or an exception
    cancelled: threading.Event = field(default_factory=threading.Event)
    queued_at: float = field(default_factory=time.perf_counter)
    started_at: float | None = None
    ended_at: float | None = None

    @property
    def wait_s(self) -> float:
        return (self.started_at or self.queued_at) - self.queued_at

    @property
    def run_s(self) -> float:
        if self.started_at is None:
            return 0.0
        return (self.ended_at or time.perf_counter()) - self.started_at


class InferenceWorker:
    """One thread running jobs from a queue of at most `max_queue` waiting jobs."""

    def __init__(self, pool: ModelPool, max_queue: int):
        if max_queue < 1:
            raise ValueError(f"max_queue must be >= 1, got {max_queue}")
        self.pool = pool
        self.max_queue = max_queue
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(target=self._run, name="mlx-inference", daemon=True)
        self.busy = False
        self.done = self.failed = self.cancelled = self.rejected = 0
        self._thread.start()

    # -- event-loop side ---------------------------------------------------------------------

    def _submit(self, job: Job) -> Job:
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self.rejected += 1
            raise Busy(f"the server is busy: {self.max_queue} requests are already waiting for "
                       "the inference worker; retry later") from None
        return job

    async def run(self, fn: Callable, timing: dict | None = None):
        """fn(pool) on the worker thread; its result or exception. `timing` gets wait_s/run_s."""
        job = self._submit(Job(fn, False, asyncio.get_running_loop()))
        try:
            return await asyncio.wrap_future(job.future)
        except asyncio.CancelledError:
            job.cancelled.set()  # the client went away before the job started: skip it
            raise
        finally:
            if timing is not None:
                timing.update(wait_s=job.wait_s, run_s=job.run_s)

    def open_stream(self, fn: Callable) -> Job:
        """Queue a streaming job now (so a full queue is an error before any response starts);
        read it with `stream(job)`."""
        loop = asyncio.get_running_loop()
        return self._submit(Job(fn, True, loop, items=asyncio.Queue()))

    async def stream(self, job: Job, timing: dict | None = None):
        """The items of a streaming job as they are produced. Leaving the loop early (a client
        disconnect cancels the handler) stops the job at its next item."""
        try:
            while True:
                item = await job.items.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            job.cancelled.set()
            if timing is not None:
                timing.update(wait_s=job.wait_s, run_s=job.run_s)

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the job in hand, drop the rest, end the thread."""
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.cancelled.set()
                self._fail(job, RuntimeError("the server is shutting down"))
        self._queue.put(None)
        self._thread.join(timeout)

    def stats(self) -> dict:
        return {"queued": self._queue.qsize(), "max_queue": self.max_queue, "busy": self.busy,
                "done": self.done, "failed": self.failed, "cancelled": self.cancelled,
                "rejected": self.rejected, "loads": self.pool.loads,
                "unloads": self.pool.unloads,
                "loaded": {k: round(v / 2**20, 1) for k, v in self.pool.loaded().items()},
                "held_mb": round(self.pool.held_bytes() / 2**20, 1),
                "memory_budget_mb": round(self.pool.memory_budget / 2**20, 1)}

    # -- worker thread -----------------------------------------------------------------------

    def _deliver(self, job: Job, item) -> None:
        job.loop.call_soon_threadsafe(job.items.put_nowait, item)

    def _fail(self, job: Job, error: BaseException) -> None:
        if job.streaming:
            try:
                self._deliver(job, error)
            except RuntimeError:  # the event loop is closed
                pass
        elif not job.future.done():
            job.future.set_exception(error)

    def _run(self) -> None:
        poll = max(0.05, min(1.0, self.pool.idle_ttl / 4))
        while True:
            try:
                job = self._queue.get(timeout=poll)
            except queue.Empty:
                self.pool.unload_idle()
                continue
            if job is None:
                return
            if job.cancelled.is_set():
                self.cancelled += 1
                continue
            self.busy = True
            job.started_at = time.perf_counter()
            try:
                if job.streaming:
                    self.done += self._run_stream(job)
                else:
                    job.future.set_result(job.fn(self.pool))
                    self.done += 1
            except BaseException as e:  # noqa: BLE001  (handed to the request, never lost)
                self.failed += 1
                self._fail(job, e)
            finally:
                job.ended_at = time.perf_counter()
                self.busy = False
            self.pool.unload_idle()

    def _run_stream(self, job: Job) -> bool:
        """Run a streaming job; False when its client cancelled it."""
        def emit(item) -> None:
            if job.cancelled.is_set():
                raise _Cancelled
            self._deliver(job, item)

        try:
            job.fn(self.pool, emit)
        except _Cancelled:
            self.cancelled += 1
            log.info("stream cancelled by the client; its generation stopped")
            return False
        self._deliver(job, _END)
        return True
