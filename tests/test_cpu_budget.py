"""The CPU budget: affinity and the cgroup quota, not just the host's count (chapter 0)."""

from __future__ import annotations

import os

import pytest

from flashtrade_lib.measure.env import CpuBudget, cpu_budget


def _cgroup(tmp_path, lines: str, files: dict[str, str]):
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "self").write_text(lines)
    for rel, text in files.items():
        path = tmp_path / "fs" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return cpu_budget(cgroup_root=tmp_path / "fs", self_cgroup=tmp_path / "self")


def test_v2_quota_of_this_processs_group(tmp_path) -> None:
    b = _cgroup(tmp_path, "0::/job/42\n", {"job/42/cpu.max": "150000 100000\n", "cpu.max": "max 100000\n"})
    assert b.quota == pytest.approx(1.5)
    assert b.usable == min(2, b.host, b.affinity)


def test_v2_without_limit_and_v1_quota(tmp_path) -> None:
    assert _cgroup(tmp_path / "a", "0::/\n", {"cpu.max": "max 100000\n"}).quota is None
    v1 = _cgroup(tmp_path / "b", "3:cpuset:/\n1:cpu,cpuacct:/box\n",
                 {"cpu,cpuacct/box/cpu.cfs_quota_us": "50000\n", "cpu,cpuacct/box/cpu.cfs_period_us": "100000\n"})
    assert v1.quota == pytest.approx(0.5) and v1.usable == 1
    unlimited = _cgroup(tmp_path / "c", "1:cpu:/\n", {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"})
    assert unlimited.quota is None


def test_no_cgroup_files_means_no_quota_and_affinity_is_read(tmp_path) -> None:
    b = _cgroup(tmp_path, "garbage", {})
    assert b.quota is None
    assert b.host == os.cpu_count()
    if hasattr(os, "sched_getaffinity"):
        assert b.affinity == len(os.sched_getaffinity(0))
    assert b.usable == min(b.host, b.affinity)


def test_usable_is_the_smallest_limit() -> None:
    assert CpuBudget(host=64, affinity=8, quota=None).usable == 8
    assert CpuBudget(host=64, affinity=8, quota=2.5).usable == 3
    assert CpuBudget(host=4, affinity=4, quota=0.2).usable == 1
