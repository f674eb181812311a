"""Limits across processes: the count holds under contention, and dead holders free slots."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kernelflow.concurrency import create_limit, limit_status
from kernelflow.concurrency.sync import concurrency
from kernelflow.errors import AcquireConcurrencySlotTimeoutError

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
HAMMER = HERE / "limit_hammer.py"


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env["KERNELFLOW_LOGGING_LEVEL"] = "WARNING"
    return env


def start(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(HAMMER), *args],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def most_at_once(intervals: list[tuple[int, int]]) -> int:
    """The largest number of intervals that overlap at one instant."""
    events = [(enter, 1) for enter, _ in intervals] + [(leave, -1) for _, leave in intervals]
    events.sort(key=lambda e: (e[0], e[1]))  # at a tie, a leave comes before an enter
    now = peak = 0
    for _, change in events:
        now += change
        peak = max(peak, now)
    return peak


def read_intervals(path: Path) -> list[tuple[int, int]]:
    rows = [line.split() for line in path.read_text().splitlines()]
    return [(int(row[0]), int(row[1])) for row in rows]


def test_most_at_once_counts_overlaps():
    assert most_at_once([(0, 10), (5, 15), (10, 20)]) == 2
    assert most_at_once([(0, 10), (1, 9), (2, 8)]) == 3
    assert most_at_once([(0, 1), (1, 2)]) == 1


@pytest.mark.slow
def test_three_processes_never_hold_more_than_the_limit(tmp_path):
    create_limit("k", 2)
    outputs = [tmp_path / f"hammer-{i}.txt" for i in range(3)]
    children = [start("hammer", "k", "3", str(out)) for out in outputs]
    counts = []
    for child in children:
        stdout, stderr = child.communicate(timeout=60)  # no deadlock: all three finish
        assert child.returncode == 0, stderr
        counts.append(int(stdout.strip()))
    assert all(count > 10 for count in counts), counts  # every process got its turns
    intervals = [iv for out in outputs for iv in read_intervals(out)]
    assert len(intervals) == sum(counts)
    assert most_at_once(intervals) == 2
    assert limit_status("k").occupied == 0


@pytest.mark.slow
def test_a_holder_killed_with_sigkill_frees_its_slot_within_a_second():
    create_limit("k", 1)
    child = start("hold", "k")
    try:
        assert child.stdout.readline().strip() == "held"
        holders = limit_status("k").holders
        assert [h.pid for h in holders] == [child.pid]
        with pytest.raises(AcquireConcurrencySlotTimeoutError):
            with concurrency("k", timeout_seconds=0.05):
                pass
        os.kill(child.pid, signal.SIGKILL)
        killed = time.monotonic()
        with concurrency("k", timeout_seconds=1.0):
            freed_after = time.monotonic() - killed
        assert freed_after < 1.0
    finally:
        child.kill()
        child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_tag_limits_hold_across_processes(tmp_path):
    create_limit("db", 2)
    out = tmp_path / "tagged.txt"
    children = [start("tagged", "db", "6", str(out)) for _ in range(2)]
    for child in children:
        _, stderr = child.communicate(timeout=120)
        assert child.returncode == 0, stderr
    rows = [line.split() for line in out.read_text().splitlines()]
    assert len(rows) == 12
    assert len({row[2] for row in rows}) == 2  # both processes ran tasks
    assert most_at_once([(int(r[0]), int(r[1])) for r in rows]) == 2
