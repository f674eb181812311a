"""Scenario 1: n trivial tasks called one after another in a flow; total CPU per task.

The flow runs twice in fresh processes, with 0 and with n tasks; the difference in CPU of
the whole process tree (Prefect's temporary API server included), divided by n, is the
cost of one task wherever it is paid.

kernelflow appends runs to a journal and folds it into DuckDB later (at the next query, or
in the background in Jupyter); ``cpu_per_task_with_store_us`` adds the CPU of that fold,
done in a fresh process after each flow. Prefect's server has written its database by the
time the flow process exits, so there the two figures are one.
"""

from _api import API, args, flow, report, run_self, task


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
    if opts.phase == "flow":
        assert sequential(opts.n) == opts.n * (opts.n + 1) // 2
    elif opts.phase == "store":
        from kernelflow.store import compact

        compact()
    else:
        store = API == "kernelflow"
        if store:  # fold what the store holds already, so both folds below find a database
            run_self("--phase", "store")
        empty = run_self("--phase", "flow", "--n", "0")
        fold_empty = run_self("--phase", "store")["cpu_s"] if store else 0.0
        full = run_self("--phase", "flow", "--n", str(opts.n))
        fold_full = run_self("--phase", "store")["cpu_s"] if store else 0.0
        cpu = full["cpu_s"] - empty["cpu_s"]
        report(
            n=opts.n,
            cpu_per_task_us=cpu / opts.n * 1e6,
            cpu_per_task_with_store_us=(cpu + fold_full - fold_empty) / opts.n * 1e6,
            wall_per_task_us=(full["wall_s"] - empty["wall_s"]) / opts.n * 1e6,
            cpu_s=full["cpu_s"],
            empty_flow_cpu_s=empty["cpu_s"],
        )
