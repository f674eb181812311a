"""Benchmarks of notebook deployments (issues 6 and 13), each measured in the same run.

1. Fire -> start. A scheduler (``Scheduler(slots=2)``, in this process) runs a trivial
   notebook every few seconds. A fire's latency is the time from its scheduled instant to
   its **start**: the worker has read and parameterized the notebook, written the output's
   first version, and papermill asks jupyter_client for the kernel (the worker stamps that
   call; :class:`kernelflow.deployments.scheduler.StartedFire`). Sessions with the default
   pre-started worker (``warm_workers=1``) alternate with sessions of cold workers
   (``warm_workers=0``: each try imports papermill first, as before issue 13). Rows: the
   median and the worst fire of each session (target: worst <= 0.5 s). The time until the
   kernel answers (the first cell runs next) is in the notes: it is the kernel's own start,
   the same under plain papermill.
2. A whole deployment run of a trivial notebook with the defaults, as a user starts one:
   ``python -m kernelflow.cli deployment run NAME --wait``, from the command's start until
   it and every process it left behind have ended (the worker, the kernel, any after-exit
   compaction, detached or not: this process is their subreaper), vs ``python -m
   papermill`` on the same notebook and kernel, measured the same way; interleaved, each
   side ``--repeat`` times (target: <= 1.2x). CPU of all those processes is in the notes.
   The HTML copy is made when first viewed, not by the run
   (:mod:`kernelflow.deployments.html_copy`): what that first view costs (nbconvert's
   import and the render, in a process that has nbformat loaded as the Jupyter server
   has) is in the notes too.
3. An idle scheduler process (``kernelflow scheduler``) with 1,000 active deployments:
   CPU time of it and its children (the waiting pre-started worker) over a quiet window,
   as % of one core, from each thread's nanosecond CPU clock (target: < 1%).

Usage::

    python bench/bench_deployments.py [--repeat 3] [--fires 12] [--quick]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import logging
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import row, write_rows  # bench/ is not a package: found on sys.path

ROOT = Path(__file__).resolve().parent.parent
KERNEL = "kernelflow-bench-deploy"
SECTION = "Deployments"
#: Seconds between fires: a run of the trivial notebook (kernel start included) fits.
INTERVAL_S = 5
#: Linux prctl option: orphaned descendants are re-parented to this process.
PR_SET_CHILD_SUBREAPER = 36


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


# -- 1. fire -> start --------------------------------------------------------------------------
def fire_session(notebook: Path, name: str, fires: int, warm: int) -> list[Any]:
    """Run a scheduler until ``fires`` first tries of deployment ``name`` started; their record."""
    from kernelflow.deployments import Scheduler, deploy, pause

    scheduler = Scheduler(slots=2, warm_workers=warm)
    scheduler.start()
    try:
        # Steady state: the scheduler has taken over (first compaction, imports) and its
        # worker is waiting before the deployment exists; deploying wakes it (FIFO).
        if not scheduler.active.wait(60):
            raise RuntimeError("the scheduler did not become active")
        time.sleep(3.0)
        deploy(notebook, name, interval=INTERVAL_S)
        deadline = time.monotonic() + fires * INTERVAL_S + 120
        while len(_of(scheduler, name)) < fires:
            if time.monotonic() > deadline or scheduler.error is not None:
                raise RuntimeError(
                    f"{len(_of(scheduler, name))} of {fires} fires started: {scheduler.error}"
                )
            time.sleep(0.5)
        pause(name)
    finally:
        scheduler.stop()
    return _of(scheduler, name)[:fires]


def _of(scheduler: Any, name: str) -> list[Any]:
    return [f for f in scheduler.started_fires if f.deployment == name and f.attempt == 1]


def fire_to_start(notebook: Path, sessions: int, fires: int) -> dict[str, Any]:
    """Alternating sessions with and without a pre-started worker; latencies per session."""
    found: dict[str, Any] = {"warm": [], "cold": []}
    for i in range(sessions):
        for kind, warm in (("warm", 1), ("cold", 0)):
            started = fire_session(notebook, f"{kind}-{i}", fires, warm)
            missing = [f for f in started if f.kernel_requested is None]
            if missing:
                raise RuntimeError(f"{len(missing)} fire(s) never asked for a kernel")
            found[kind].append(
                {
                    "start": [f.kernel_requested - f.scheduled_time for f in started],
                    "ready": [
                        f.kernel_ready - f.scheduled_time
                        for f in started
                        if f.kernel_ready is not None
                    ],
                    "standby": sum(f.standby for f in started),
                }
            )
            print(f"fire -> start, {kind} session {i}: {found[kind][-1]}", file=sys.stderr)
    return found


# -- 2. a whole run, all of its work -------------------------------------------------------------
def _become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def _all_of(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of ``argv`` and every process it leaves behind, until all end."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[2:4]} failed: {err.decode()[-500:]}")
    while True:  # the detached ones were re-parented to us: wait for each
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def whole_run(notebook: Path, repeat: int) -> dict[str, list[float]]:
    """Interleaved: the ``deployment run --wait`` command vs the papermill command.

    Then the first view of one run's HTML copy (``html`` and ``html_cpu``, see :func:`first_view`).
    """
    from kernelflow.deployments import deploy

    _become_subreaper()
    deploy(notebook, "trivial", interval=3600)
    out = notebook.with_name("papermill-out.ipynb")
    ours = [sys.executable, "-m", "kernelflow.cli", "deployment", "run", "trivial", "--wait"]
    theirs = [sys.executable, "-m", "papermill", str(notebook), str(out), "-k", KERNEL]
    theirs += ["--no-progress-bar", "--log-level", "ERROR"]
    found: dict[str, list[float]] = {"ours": [], "ours_cpu": [], "theirs": [], "theirs_cpu": []}
    for i in range(repeat):
        for side, argv in (("ours", ours), ("theirs", theirs)):
            wall, cpu = _all_of(argv)
            found[side].append(wall)
            found[f"{side}_cpu"].append(cpu)
        print(f"whole run {i}: { ({k: v[-1] for k, v in found.items()}) }", file=sys.stderr)
    outputs = sorted((Path(os.environ["KERNELFLOW_HOME"]) / "outputs" / "trivial").glob("*.ipynb"))
    found["html"], found["html_cpu"] = first_view(outputs[-1])
    return found


#: The first view of a run's HTML copy, timed in a process that has nbformat loaded, as the
#: Jupyter server serving ``GET runs/<id>/html`` has: nbconvert's import and the render.
_FIRST_VIEW = """
import json, sys, time
import nbformat
from kernelflow.deployments.html_copy import html_copy
wall, cpu = time.perf_counter(), time.process_time()
html_copy(sys.argv[1])
print(json.dumps([time.perf_counter() - wall, time.process_time() - cpu]))
"""


def first_view(notebook: Path) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of making ``notebook``'s HTML copy on its first view."""
    done = subprocess.run(
        [sys.executable, "-c", _FIRST_VIEW, str(notebook)],
        capture_output=True,
        text=True,
        check=True,
    )
    wall, cpu = json.loads(done.stdout.strip().splitlines()[-1])
    return [wall], [cpu]


# -- 3. an idle scheduler --------------------------------------------------------------------------
def _cpu_ns(pids: list[int]) -> int:
    """Nanoseconds on a CPU of every thread of ``pids`` (``/proc/*/task/*/schedstat``)."""
    total = 0
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[0])
    return total


def idle_cpu(notebook: Path, n: int, window: float) -> dict[str, Any]:
    """CPU of an idle ``kernelflow scheduler`` and its children, % of one core."""
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
        [sys.executable, "-m", "kernelflow.cli", "scheduler", "--for", str(window + 30)],
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
        time.sleep(8)  # taking over (1,000 next-fire computations, the worker's imports)
        family = [proc.pid, *(p.pid for p in psutil.Process(proc.pid).children(recursive=True))]
        # Nanosecond CPU clocks: 10 ms ticks would round an idle process to zero.
        before, t0 = _cpu_ns(family), time.monotonic()
        time.sleep(window)
        after, t1 = _cpu_ns(family), time.monotonic()
    finally:
        proc.terminate()
        proc.wait(60)
    return {
        "deployments": n,
        "processes": len(family),
        "window_s": t1 - t0,
        "cpu_percent_of_core": 100 * (after - before) / 1e9 / (t1 - t0),
    }


# -- rows -----------------------------------------------------------------------------------------
def rows(fires: dict[str, Any], run: dict[str, list[float]], idle: dict, quick: bool) -> list:
    """The contract rows (bench/report.py decides what is met)."""
    tag = "quick run; " if quick else ""
    warm, cold = fires["warm"], fires["cold"]
    per = len(warm[0]["start"])
    standby = sum(s["standby"] for s in warm)
    total = sum(len(s["start"]) for s in warm)

    def ready(sessions: list[dict]) -> str:
        every = [x for s in sessions for x in s["ready"]]
        return f"median {statistics.median(every):.2f} s, worst {max(every):.2f} s"

    how = (
        f"{tag}{len(warm)} session(s) of {per} fires every {INTERVAL_S} s per side, "
        f"interleaved; start = papermill asks jupyter_client for the kernel; in {standby} of "
        f"{total} fires the pre-started worker was ready before the fire; fire -> kernel "
        f"ready (first cell next): with it {ready(warm)}, cold {ready(cold)}"
    )
    base = "cold worker (warm_workers=0)"
    return [
        row(
            SECTION,
            "fire -> papermill start, median of a session's fires",
            "s",
            [statistics.median(s["start"]) for s in warm],
            {"max": 0.5},
            n=per,
            baseline_name=base,
            baseline=[statistics.median(s["start"]) for s in cold],
            notes=how,
        ),
        row(
            SECTION,
            "fire -> papermill start, worst of a session's fires",
            "s",
            [max(s["start"]) for s in warm],
            {"max": 0.5},
            n=per,
            baseline_name=base,
            baseline=[max(s["start"]) for s in cold],
            notes=how,
        ),
        row(
            SECTION,
            "trivial notebook: whole deployment run vs papermill",
            "s",
            run["ours"],
            {"ratio_max": 1.2},
            baseline_name="papermill",
            baseline=run["theirs"],
            notes=(
                f"{tag}`kernelflow deployment run --wait` (defaults) vs `python -m papermill`, "
                "each from its command's start until it and every process it left behind "
                "(worker, kernel, after-exit compaction) ended; interleaved; CPU of all of them "
                f"per run: kernelflow {', '.join(f'{x:.2f}' for x in run['ours_cpu'])} s, "
                f"papermill {', '.join(f'{x:.2f}' for x in run['theirs_cpu'])} s; the HTML "
                "copy is made on first view, not by the run: that view took "
                f"{run['html'][0]:.2f} s wall, {run['html_cpu'][0]:.2f} s CPU (nbconvert's "
                "import and the render, in a process with nbformat loaded, as the Jupyter "
                "server has)"
            ),
        ),
        row(
            SECTION,
            f"idle scheduler with {idle['deployments']} deployments, CPU",
            "% of a core",
            [idle["cpu_percent_of_core"]],
            {"max": 1.0},
            n=idle["deployments"],
            notes=(
                f"{tag}`kernelflow scheduler` and its {idle['processes'] - 1} child process(es) "
                f"(the waiting pre-started worker) over {idle['window_s']:.0f} s, from the "
                "threads' nanosecond CPU clocks (/proc/*/task/*/schedstat)"
            ),
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the three benchmarks; write ``bench/out/bench_deployments.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="whole runs per side")
    parser.add_argument("--sessions", type=int, default=2, help="scheduler sessions per side")
    parser.add_argument("--fires", type=int, default=12, help="fires per session")
    parser.add_argument("--quick", action="store_true", help="1 session of 4 fires, 1 run")
    args = parser.parse_args(argv)
    sessions, fires = (1, 4) if args.quick else (max(1, args.sessions), max(2, args.fires))
    repeat = 1 if args.quick else max(3, args.repeat)
    tmp = Path(tempfile.mkdtemp(prefix="kernelflow-bench-deploy-"))
    try:
        notebook = setup(tmp)
        from kernelflow.logs import configure

        configure()
        logging.getLogger("kernelflow").setLevel(logging.WARNING)
        started = fire_to_start(notebook, sessions, fires)
        run = whole_run(notebook, repeat)
        shutil.rmtree(tmp / "home", ignore_errors=True)  # a fresh store for the idle count
        idle = idle_cpu(notebook, 1000, 10 if args.quick else 20)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    found = rows(started, run, idle, args.quick)
    path = write_rows(__file__, found)
    for each in found:
        print(f"{each['label']}: {each['kernelflow']} vs {each['baseline']}", file=sys.stderr)
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
