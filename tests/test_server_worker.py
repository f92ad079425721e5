"""The server's inference worker and model pool (mlx_impl/server/worker.py), without HTTP: one
thread in arrival order, a full queue refused at once, errors handed back, a cancelled stream
stopped at its next item; models loaded once, unloaded when idle past the TTL and least
recently used first over the memory budget."""

from __future__ import annotations

import asyncio
import threading
import time
import weakref

import mlx.core as mx
import mlx.nn as nn
import pytest

from mlx_impl.server.worker import Busy, InferenceWorker, ModelPool, parameter_bytes


def linear(n: int) -> nn.Module:
    layer = nn.Linear(n, n, bias=False)
    mx.eval(layer.parameters())
    return layer


def test_parameter_bytes_reaches_held_modules():
    class Holder:  # a transcriber holding its model, a TTS its LM and codec
        def __init__(self):
            self.model, self.codec, self.name = linear(8), linear(4), "x"

    assert parameter_bytes(linear(8)) == 8 * 8 * 4
    assert parameter_bytes(Holder()) == (64 + 16) * 4


def test_pool_loads_once_and_evicts_least_recently_used():
    pool = ModelPool(memory_budget=2 * 64 * 4, idle_ttl=60)  # room for two 8x8 float32
    calls = []

    def loader(name):
        return lambda: calls.append(name) or linear(8)

    a = pool.get("a", loader("a"))
    assert pool.get("a", loader("a")) is a and calls == ["a"]
    pool.get("b", loader("b"))
    pool.get("a", loader("a"))  # a is now the most recently used
    pool.get("c", loader("c"))  # over budget: b goes, not a
    assert list(pool.loaded()) == ["a", "c"] and calls == ["a", "b", "c"]
    assert (pool.loads, pool.unloads) == (3, 1)
    big = ModelPool(memory_budget=10, idle_ttl=60)
    big.get("huge", loader("huge"))  # alone over the budget: kept (it is needed now)
    assert list(big.loaded()) == ["huge"]


def test_pool_unloads_idle_models():
    pool = ModelPool(memory_budget=2**30, idle_ttl=0.05)
    model = weakref.ref(pool.get("a", lambda: linear(4)))
    pool.unload_idle()
    assert list(pool.loaded()) == ["a"]
    time.sleep(0.1)
    pool.unload_idle()
    assert pool.loaded() == {} and pool.unloads == 1
    assert model() is None  # nothing holds the unloaded model: its memory is free


def test_worker_runs_one_at_a_time_in_order_and_refuses_a_full_queue():
    async def scenario():
        worker = InferenceWorker(ModelPool(2**30, 60), max_queue=2)
        gate, order, threads = threading.Event(), [], set()

        def job(i):
            def run(pool):
                threads.add(threading.get_ident())
                if i == 0:
                    gate.wait(10)
                order.append(i)
                return i * 10
            return run

        first = asyncio.create_task(worker.run(job(0)))
        await asyncio.sleep(0.2)  # job 0 is running, holding the thread
        queued = [asyncio.create_task(worker.run(job(i))) for i in (1, 2)]
        await asyncio.sleep(0.05)
        with pytest.raises(Busy, match="2 requests are already waiting"):
            await worker.run(job(3))
        gate.set()
        results = await asyncio.gather(first, *queued)
        assert results == [0, 10, 20] and order == [0, 1, 2]
        assert len(threads) == 1 and threading.get_ident() not in threads

        def boom(pool):
            raise ValueError("bad input")

        with pytest.raises(ValueError, match="bad input"):
            await worker.run(boom)
        assert await worker.run(job(4)) == 40  # still serving
        assert (worker.done, worker.failed, worker.rejected) == (4, 1, 1)
        worker.stop()

    asyncio.run(scenario())


def test_cancelled_stream_stops_at_its_next_item():
    async def scenario():
        worker = InferenceWorker(ModelPool(2**30, 60), max_queue=4)
        made = []

        def produce(pool, emit):
            for i in range(1000):
                made.append(i)
                emit(i)
                time.sleep(0.005)

        items = worker.stream(worker.open_stream(produce))
        got = [await items.__anext__() for _ in range(3)]
        await items.aclose()  # the client went away
        for _ in range(200):
            if worker.cancelled:
                break
            await asyncio.sleep(0.01)
        assert got == [0, 1, 2] and worker.cancelled == 1 and len(made) < 1000
        worker.stop()

    asyncio.run(scenario())
