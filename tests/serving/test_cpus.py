"""TensorFlow's pools sized to the CPUs: the cgroup quota files as the kernel writes them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlreg.serving.cpus import (
    available_cpus,
    cgroup_cpu_quota,
    size_tensorflow_pools,
    threads_per_worker,
)

CORES = len(os.sched_getaffinity(0))


def cgroup_v2(root: Path, cpu_max: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cpu.max").write_text(cpu_max + "\n")
    return root


def cgroup_v1(root: Path, quota: str, period: str, controller: str = "cpu,cpuacct") -> Path:
    (root / controller).mkdir(parents=True)
    (root / controller / "cpu.cfs_quota_us").write_text(quota + "\n")
    (root / controller / "cpu.cfs_period_us").write_text(period + "\n")
    return root


@pytest.mark.parametrize(
    ("cpu_max", "quota"),
    [
        ("200000 100000", 2.0),  # docker run --cpus 2, a Kubernetes limit of 2
        ("50000 100000", 0.5),  # 500m
        ("150000 100000", 1.5),
        ("max 100000", None),  # no limit
        ("garbage", None),
        ("0 100000", None),
    ],
)
def test_cgroup_v2_quota(tmp_path, cpu_max, quota):
    assert cgroup_cpu_quota(cgroup_v2(tmp_path / "cg", cpu_max)) == quota


@pytest.mark.parametrize(
    ("quota", "period", "controller", "expected"),
    [
        ("300000", "100000", "cpu,cpuacct", 3.0),
        ("100000", "100000", "cpu", 1.0),
        ("-1", "100000", "cpu,cpuacct", None),  # cgroup v1's "no quota"
        ("1000", "0", "cpu", None),
    ],
)
def test_cgroup_v1_quota(tmp_path, quota, period, controller, expected):
    root = cgroup_v1(tmp_path / "cg", quota, period, controller)
    assert cgroup_cpu_quota(root) == expected


def test_no_cgroup_files_means_no_quota(tmp_path):
    assert cgroup_cpu_quota(tmp_path / "missing") is None
    assert available_cpus(tmp_path / "missing") == CORES


def test_a_quota_below_the_cores_wins_and_one_above_does_not(tmp_path):
    assert available_cpus(cgroup_v2(tmp_path / "low", "50000 100000")) == 0.5
    assert available_cpus(cgroup_v2(tmp_path / "high", f"{(CORES + 8) * 100000} 100000")) == CORES


@pytest.mark.parametrize(
    ("cpus", "workers", "threads"),
    [(2, 1, 2), (2, 2, 1), (2, 4, 1), (0.5, 1, 1), (1.5, 1, 2), (16, 3, 6), (64, 2, 32)],
)
def test_threads_per_worker_share_the_cpus_rounding_up(cpus, workers, threads):
    assert threads_per_worker(cpus, workers) == threads


def test_pools_are_set_for_the_workers_from_the_quota(tmp_path):
    environ: dict[str, str] = {}
    said = size_tensorflow_pools(environ, 2, cgroup_v2(tmp_path / "cg", "400000 100000"))
    expected = str(threads_per_worker(min(4, CORES), 2))
    assert environ == {"TF_NUM_INTRAOP_THREADS": expected, "TF_NUM_INTEROP_THREADS": expected}
    assert said == f"TensorFlow {expected} thread(s) per pool for {min(4, CORES):g} CPU(s)"


@pytest.mark.parametrize(
    "given",
    [
        {"TF_NUM_INTRAOP_THREADS": "3"},
        {"TF_NUM_INTEROP_THREADS": "5"},
        {"TF_NUM_INTRAOP_THREADS": "3", "TF_NUM_INTEROP_THREADS": "1"},
    ],
)
def test_tensorflows_own_variables_win(tmp_path, given):
    """One set by the user leaves both alone: TensorFlow sizes the other as it would."""
    environ = dict(given)
    said = size_tensorflow_pools(environ, 2, cgroup_v2(tmp_path / "cg", "100000 100000"))
    assert environ == given
    assert said == ", ".join(f"{k}={v}" for k, v in given.items())
