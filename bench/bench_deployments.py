"""Benchmarks of notebook deployments (issue 6), each measured in the same run.

1. Fire precision: a scheduler runs a deployment every 3 s; each fire's lateness is the
   time from its scheduled instant to the start of its papermill worker process
   (target: <= 0.5 s; jupyter-scheduler polls every 10 s).
2. An idle scheduler with 1,000 active deployments: CPU time of the scheduler process
   over a quiet window, as % of one core (target: < 1%; the kernel counts CPU time in
   10 ms ticks, so 0.00 over 20 s means under 0.05%).
3. A deployment run of a trivial notebook vs ``papermill`` alone on the same notebook and
   kernel: the run's wall time (from ``run_deployment()`` to its final state, which includes
   claiming the fire, recording states, the worker process and papermill) over the wall
   time of ``python -m papermill`` (target: <= 1.2x). The HTML copy is written after the
   final state, as in every run.

Usage::

    python bench/bench_deployments.py [--repeat 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KERNEL = "kernelflow-bench-deploy"


def setup(tmp: Path) -> Path:
    """A store home, a kernelspec for this Python, and a trivial notebook; return it."""
    import nbformat

    jupyter = tmp / "jupyter"
    spec = jupyter / "kernels" / KERNEL
    spec.mkdir(parents=True)
    spec.joinpath("kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": KERNEL,
                "language": "python",
                "env": {"PYTHONPATH": str(ROOT)},
            }
        )
    )
    os.environ["JUPYTER_PATH"] = str(jupyter)
    os.environ["KERNELFLOW_HOME"] = str(tmp / "home")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("n: int = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("print(n + 1)")]
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": KERNEL, "language": "python"}
    path = tmp / "trivial.ipynb"
    nbformat.write(nb, path)
    return path


def fire_precision(notebook: Path, seconds: float) -> dict:
    from kernelflow.deployments import Scheduler, deploy

    scheduler = Scheduler(slots=2)
    scheduler.start()
    try:
        # Steady state: the scheduler has taken over (first compaction, imports) before the
        # deployment exists; deploying wakes it through its FIFO.
        if not scheduler.active.wait(60):
            raise RuntimeError("the scheduler did not become active")
        time.sleep(1.0)
        deploy(notebook, "precision", interval=3)
        time.sleep(seconds)
    finally:
        scheduler.stop()
    late = [started - scheduled for _, scheduled, started in scheduler.started_fires]
    return {
        "fires": len(late),
        "max_late_s": max(late) if late else None,
        "median_late_s": statistics.median(late) if late else None,
    }


def idle_cpu(notebook: Path, n: int, window: float) -> dict:
    import psutil

    from kernelflow.deployments import records
    from kernelflow.deployments.registry import deploy

    template = deploy(notebook, "idle-0", cron="0 0 1 1 *")
    copies = []
    for i in range(1, n):
        copy = records.Deployment.from_definition(template.definition())
        copy.name = f"idle-{i}"
        copy.cron = f"{i % 60} {i % 24} 1 1 *"  # yearly: nothing fires in the window
        copies.append(copy)
    records.save_deployments(copies, update=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kernelflow.cli", "scheduler", "--for", str(window + 15)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        lease = Path(os.environ["KERNELFLOW_HOME"]) / "scheduler.lock"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if lease.exists() and lease.read_text().strip() == str(proc.pid):
                break
            time.sleep(0.2)
        time.sleep(5)  # taking over (1,000 next-fire computations) is not idle
        ps = psutil.Process(proc.pid)
        before, t0 = ps.cpu_times(), time.monotonic()
        time.sleep(window)
        after, t1 = ps.cpu_times(), time.monotonic()
    finally:
        proc.terminate()
        proc.wait(60)
    used = (after.user + after.system) - (before.user + before.system)
    return {
        "deployments": n,
        "window_s": round(t1 - t0, 1),
        "cpu_percent_of_core": 100 * used / (t1 - t0),
    }


def trivial_ratio(notebook: Path, repeat: int) -> dict:
    from kernelflow.deployments import deploy, run_deployment
    from kernelflow.store.queries import sql

    deploy(notebook, "trivial", interval=3600)
    ours, theirs = [], []
    out = notebook.with_name("papermill-out.ipynb")
    for _ in range(repeat):
        start = time.time()
        run = run_deployment("trivial")
        assert run.state.is_completed(), run.state
        ours.append(run.state.timestamp - start)
        t = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "papermill",
                str(notebook),
                str(out),
                "-k",
                KERNEL,
                "--no-progress-bar",
                "--log-level",
                "ERROR",
            ],
            check=True,
            capture_output=True,
        )
        theirs.append(time.perf_counter() - t)
    recorded = sql(
        "SELECT count(*) FROM flow_runs WHERE state_name = 'Completed' "
        "AND parent_flow_run_id IS NULL"
    ).iloc[0, 0]
    assert recorded >= repeat
    a, b = statistics.median(ours), statistics.median(theirs)
    return {"deployment_run_s": a, "papermill_s": b, "ratio": a / b}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="kernelflow-bench-deploy-"))
    try:
        notebook = setup(tmp)
        from kernelflow.logs import configure

        configure()
        import logging

        logging.getLogger("kernelflow").setLevel(logging.WARNING)
        results = {
            "fire_precision": fire_precision(notebook, 8 if args.quick else 20),
            "trivial_run": trivial_ratio(notebook, 1 if args.quick else args.repeat),
        }
        shutil.rmtree(tmp / "home", ignore_errors=True)  # a fresh store for the idle count
        results["idle_scheduler"] = idle_cpu(notebook, 1000, 10 if args.quick else 20)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    p, t, i = results["fire_precision"], results["trivial_run"], results["idle_scheduler"]
    rows = [
        (
            f"fire -> papermill process start (max of {p['fires']})",
            f"{p['max_late_s']:.3f} s",
            "<= 0.5 s",
            p["max_late_s"] <= 0.5,
        ),
        (
            f"idle scheduler, {i['deployments']} deployments",
            f"{i['cpu_percent_of_core']:.2f} % of a core",
            "< 1 %",
            i["cpu_percent_of_core"] < 1,
        ),
        (
            "trivial notebook: deployment run / papermill",
            f"{t['ratio']:.2f}x ({t['deployment_run_s']:.2f} s / {t['papermill_s']:.2f} s)",
            "<= 1.2x",
            t["ratio"] <= 1.2,
        ),
    ]
    print(f"{'figure':<52} {'measured':<32} {'target':<9} met")
    for label, value, target, met in rows:
        print(f"{label:<52} {value:<32} {target:<9} {'yes' if met else 'NO'}")
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "deployments.json").write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
