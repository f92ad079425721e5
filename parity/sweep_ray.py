"""`python -m parity sweep --ray ADDRESS`: each sweep item as one Ray task.

A task runs `parity.sweep.run_item` on whichever node Ray picks: the item's own
`python -m parity run` process there, in that node's checkout (the same path as the caller's,
with the same code: the task refuses otherwise), and returns the item's report and output to the
caller, which writes them. Each task asks for 1 CPU, the item's measured peak memory
(parity/sweep_costs.json) and a sliver (0.001) of the custom resource naming the backend
(`--device`: `cpu`, `gpu` or `metal`), so a CUDA item lands only on a node started with
`ray start ... --resources '{"gpu": 1}'` and a Metal one on a Mac with `{"metal": 1}`.

A task whose worker or node is lost (`WorkerCrashedError`, `NodeDiedError`, ...) is submitted
once more; the result says so (`reruns`, `rerun_reason`) and a second loss is reported as
"lost", never dropped. An exception raised by `run_item` itself is an "error" and not rerun.

`python -m parity.sweep_ray --nodes 2` starts a local cluster on 127.0.0.1 only (a head and
worker nodes, one CPU each) and prints its address; it stops by itself after `--lifetime` seconds
or when its standard input closes. The tests drive `--ray` with it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterator

from parity.sweep import ROOT, Item, peak_mb, run_item

# Ray swaps a 127.0.0.1 address for the host's network address unless told that the machine is
# not a cluster member; a loopback cluster (the tests, `--nodes`) must stay on loopback.
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
INSTALL = ("--ray needs the ray package: `.venv/bin/pip install -e '.[ray]'` (ray==2.60.0) on "
           "the caller and on every node")


def _import_ray(address: str | None):
    if address is not None and address.split(":")[0] in ("127.0.0.1", "localhost"):
        os.environ.setdefault(LOOPBACK_ENV, "0")
    try:
        import ray
    except ImportError:
        raise RuntimeError(INSTALL) from None
    return ray


def _task(item: Item, root: str, timeout_s: float, code_key: str) -> dict:
    import ray

    r = run_item(item, root, timeout_s, threads=1, code_key=code_key)
    return {**r, "node": f"{r['node']}/ray-node-{ray.get_runtime_context().get_node_id()[:8]}"}


def _failed(item: Item, status: str, why: str) -> dict:
    return {"id": item.id, "model": item.model, "dtype": item.dtype, "kind": item.kind,
            "status": status, "rc": None, "duration_s": 0.0, "peak_rss_mb": 0.0,
            "first_failure": why, "node": "", "log": why}


def run_on_ray(items: list[Item], address: str, costs: dict, timeout_s: float, threads: int,
               device: str, code_key: str, on_start: Callable[[Item], None],
               log: Callable[[str], None]) -> Iterator[dict]:
    """Yield each item's result as its task finishes (`threads` is not used: one CPU a task)."""
    ray = _import_ray(address)
    ray.init(address=address, log_to_driver=False, logging_level="WARNING",
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    try:
        offered = ray.cluster_resources()
        if offered.get(device, 0) <= 0:
            raise RuntimeError(f"no node of the Ray cluster at {address} offers the custom "
                               f"resource {device!r}; start the nodes that can run these items "
                               f"with `ray start ... --resources '{{\"{device}\": 1}}'`")
        node_mem = max((n["Resources"].get("memory", 0) for n in ray.nodes() if n["Alive"]
                        and n["Resources"].get(device, 0) > 0), default=0)
        remote = ray.remote(_task)

        def submit(it: Item):
            mem = min(peak_mb(it, costs) * 2**20, node_mem)  # else unschedulable forever
            on_start(it)
            return remote.options(num_cpus=1, memory=mem, resources={device: 0.001},
                                  max_retries=0, name=f"parity-sweep:{it.id}").remote(
                it, str(ROOT), timeout_s, code_key)

        pending = {submit(it): (it, 0, None) for it in items}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=60.0)
            for ref in ready:
                it, reruns, reason = pending.pop(ref)
                try:
                    r = ray.get(ref)
                except ray.exceptions.RayTaskError as e:  # run_item raised: a bug, not a loss
                    r = _failed(it, "error", f"the sweep task raised: {e}"[:2000])
                except ray.exceptions.RayError as e:  # the worker or its node was lost
                    why = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
                    if reruns == 0:
                        log(f"LOST {it.id} ({why}); running it once more")
                        pending[submit(it)] = (it, 1, why)
                        continue
                    r = _failed(it, "lost", f"lost twice; last: {why}")
                yield {**r, "reruns": reruns, "rerun_reason": reason}
    finally:
        ray.shutdown()


def local_cluster(nodes: int, lifetime_s: float) -> None:
    """A head and `nodes - 1` worker nodes on 127.0.0.1, one CPU and one `cpu` unit each; prints
    `address <gcs address>` and each worker node's raylet pid, then waits for standard input to
    close or `lifetime_s` to pass, and stops every process it started."""
    import select

    ray = _import_ray("127.0.0.1")
    from ray.cluster_utils import Cluster

    args = dict(node_ip_address="127.0.0.1", num_cpus=1, resources={"cpu": 1})
    cluster = Cluster(initialize_head=True, head_node_args={**args, "include_dashboard": False})
    try:
        for _ in range(nodes - 1):
            cluster.add_node(**args)
        cluster.wait_for_nodes()
        print(f"address {cluster.address}", flush=True)
        end = time.monotonic() + lifetime_s
        while time.monotonic() < end:
            ready, _, _ = select.select([sys.stdin], [], [], min(1.0, end - time.monotonic()))
            if ready and not os.read(sys.stdin.fileno(), 4096):  # closed: the caller is done
                break
    finally:
        cluster.shutdown()
        del ray


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="python -m parity.sweep_ray",
                                description="a local Ray cluster on 127.0.0.1 for `--ray`")
    p.add_argument("--nodes", type=int, default=2, help="nodes, the head included (2)")
    p.add_argument("--lifetime", type=float, default=600.0, help="seconds before it stops (600)")
    a = p.parse_args()
    local_cluster(a.nodes, a.lifetime)
