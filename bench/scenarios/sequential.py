"""n trivial tasks called one after another in a flow, in a process of its own.

``run.py`` runs it with ``--n 0`` (the fixed cost of a process that imports the library,
runs a flow with no task and exits) and with ``--n N``, and measures each process from
outside: wall time and the CPU of the whole process tree (Prefect's temporary API server
included). kernelflow folds its journal into DuckDB at exit, in this process
(``KERNELFLOW_COMPACT_AT_EXIT=inline``), so that work is counted too. The peak RSS is
reported by ``_api`` as the process exits.
"""

from _api import args, flow, task


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
    opts = args(n=1000)
    assert sequential(opts.n) == opts.n * (opts.n + 1) // 2
