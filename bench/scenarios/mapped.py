"""Scenario 7: ``t.map(range(n))`` with the default thread task runner; wall time of that flow.

A trivial flow runs first, so the figure leaves out Prefect's server start.
"""

import time

from _api import args, flow, report, task, warm_up


@task
def inc(x: int) -> int:
    return x + 1


@flow
def mapped(n: int) -> int:
    futures = inc.map(range(n))
    return sum(f.result() for f in futures)


if __name__ == "__main__":
    opts = args(n=10_000)
    warm_up()
    start = time.perf_counter()
    total = mapped(opts.n)
    wall = time.perf_counter() - start
    assert total == opts.n * (opts.n + 1) // 2
    report(n=opts.n, wall_s=wall, per_item_s=wall / opts.n)
