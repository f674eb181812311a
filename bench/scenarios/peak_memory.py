"""Scenario 6: peak memory of a flow of n sequential trivial tasks.

The figure is the peak RSS of the flow process plus that of its largest child (Prefect's
temporary API server; kernelflow starts none), reported as the process exits.
"""

from _api import args, flow, report_peak_rss_at_exit, task

report_peak_rss_at_exit()


@task
def inc(x: int) -> int:
    return x + 1


@flow
def sequential(n: int) -> int:
    total = 0
    for i in range(n):
        total += inc(i)
    return total


if __name__ == "__main__":
    opts = args(n=10_000)
    assert sequential(opts.n) == opts.n * (opts.n + 1) // 2
