"""Scenario 2: ``[t.submit(i) for i in range(n)]`` then every result; wall time of that flow.

A trivial flow runs first, so the figure leaves out Prefect's server start (scenario
``startup`` measures that).
"""

import time

from _api import args, flow, report, task, warm_up


@task
def inc(x: int) -> int:
    return x + 1


@flow
def submitted(n: int) -> int:
    futures = [inc.submit(i) for i in range(n)]
    return sum(f.result() for f in futures)


if __name__ == "__main__":
    opts = args(n=1000)
    warm_up()
    start = time.perf_counter()
    total = submitted(opts.n)
    wall = time.perf_counter() - start
    assert total == opts.n * (opts.n + 1) // 2
    report(n=opts.n, wall_s=wall, per_task_s=wall / opts.n)
