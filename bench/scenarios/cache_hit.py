"""Scenario 4: a small task cached with ``task_input_hash``, filled once, then hit n times.

The figure is the wall time of one hit inside a running flow. The task counts its own
executions, so a miss fails the scenario instead of flattering it.
"""

import time

from _api import args, flow, report, task, task_input_hash

executions = 0


@task(cache_key_fn=task_input_hash)
def double(x: int) -> int:
    global executions
    executions += 1
    return 2 * x


@flow
def hits(n: int) -> float:
    double(21)
    start = time.perf_counter()
    for _ in range(n):
        assert double(21) == 42
    return time.perf_counter() - start


if __name__ == "__main__":
    opts = args(n=1000)
    wall = hits(opts.n)
    if executions != 1:
        raise SystemExit(f"cache missed: the task ran {executions} times, expected once")
    report(n=opts.n, wall_s=wall, per_hit_s=wall / opts.n)
