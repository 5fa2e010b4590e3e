"""TensorFlow's thread pools sized to the CPUs a worker may use.

TensorFlow sizes its intra-op and inter-op pools by the cores the process may be scheduled
on, not by a container's CPU quota (a Kubernetes limit, ``docker run --cpus``), and every
gunicorn worker makes pools of its own, each as large as if it had the machine to itself.
With the pools split among the workers (two workers on 2 cores: 1 thread each instead of
2), the reference CNN served 12-18% more ``/invocations`` and 18-25% more V2 binary requests
per second at concurrency 16, and 10-15% more 256-image batches at concurrency 4 (the same,
within the machine's noise, at concurrency 1).

``mlreg serve`` sets TensorFlow's own variables for its workers (read when TensorFlow starts
in each worker), unless they are set already: those win.
"""

from __future__ import annotations

import math
import os
from collections.abc import MutableMapping
from pathlib import Path

#: TensorFlow's variables for the size of its pools.
TF_THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
CGROUP_ROOT = Path("/sys/fs/cgroup")


def available_cpus(cgroup_root: Path = CGROUP_ROOT) -> float:
    """The CPUs this process may use: the cores it may run on, or fewer under a CPU quota."""
    cpus = float(len(os.sched_getaffinity(0)))
    quota = cgroup_cpu_quota(cgroup_root)
    return min(cpus, quota) if quota is not None else cpus


def cgroup_cpu_quota(root: Path = CGROUP_ROOT) -> float | None:
    """The cgroup's CPU quota in CPUs (cgroup v2's ``cpu.max``, else v1's CFS quota); None
    when there is none or it cannot be read. ``root`` is where a container sees its own
    cgroup (Docker and Kubernetes mount it there; on a host the root cgroup has no quota)."""
    try:
        quota, period = (root / "cpu.max").read_text().split()
        return None if quota == "max" else _ratio(int(quota), int(period))
    except (OSError, ValueError):
        pass
    for controller in ("cpu", "cpu,cpuacct"):
        try:
            quota_us = int((root / controller / "cpu.cfs_quota_us").read_text())
            period_us = int((root / controller / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        return _ratio(quota_us, period_us)  # -1: no quota
    return None


def _ratio(quota: int, period: int) -> float | None:
    return quota / period if quota > 0 and period > 0 else None


def threads_per_worker(cpus: float, workers: int) -> int:
    return max(1, math.ceil(cpus / workers))


def size_tensorflow_pools(
    environ: MutableMapping[str, str], workers: int, cgroup_root: Path = CGROUP_ROOT
) -> str:
    """Set TensorFlow's pool sizes in ``environ`` for ``workers`` processes sharing the CPUs,
    unless already set; says what the pools are (for the banner)."""
    given = {name: environ[name] for name in TF_THREAD_VARIABLES if environ.get(name)}
    if given:
        return ", ".join(f"{name}={value}" for name, value in given.items())
    cpus = available_cpus(cgroup_root)
    threads = threads_per_worker(cpus, workers)
    for name in TF_THREAD_VARIABLES:
        environ[name] = str(threads)
    return f"TensorFlow {threads} thread(s) per pool for {cpus:g} CPU(s)"


__all__ = [
    "TF_THREAD_VARIABLES",
    "available_cpus",
    "cgroup_cpu_quota",
    "size_tensorflow_pools",
    "threads_per_worker",
]
