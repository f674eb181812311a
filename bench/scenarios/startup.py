"""Scenario 3: a fresh process that imports the library, runs a one-task flow and exits.

Phases, each a fresh process: ``import`` times the library's import alone and lists the
heavy modules it loaded; ``flow`` is the whole one-task script, timed from outside.
"""

import os
import sys
import time

HEAVY = ("duckdb", "pandas", "pyarrow")


def import_phase() -> None:
    start = time.perf_counter()
    __import__(os.environ.get("BENCH_API", "kernelflow"))
    took = time.perf_counter() - start
    from _api import report

    report(import_s=took, heavy_modules=[m for m in HEAVY if m in sys.modules])


def flow_phase() -> None:
    from _api import flow, task

    @task
    def hello(name: str) -> str:
        return f"hello {name}"

    @flow
    def one_task() -> str:
        return hello("world")

    assert one_task() == "hello world"


if __name__ == "__main__":
    phase = sys.argv[sys.argv.index("--phase") + 1] if "--phase" in sys.argv else ""
    if phase == "import":
        import_phase()
    elif phase == "flow":
        flow_phase()
    else:
        from _api import report, run_self

        alone = run_self("--phase", "import")
        script = run_self("--phase", "flow")
        report(
            import_s=alone["import_s"],
            heavy_modules=alone["heavy_modules"],
            import_process_wall_s=alone["wall_s"],
            process_wall_s=script["wall_s"],
            process_cpu_s=script["cpu_s"],
        )
