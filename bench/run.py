"""Benchmark kernelflow against Prefect 3.9.1 (and joblib where that is the baseline).

``make bench`` runs this file with the project's venv. It creates ``.bench-venv`` once (Prefect
from PyPI), then runs every scenario in ``bench/scenarios/`` in fresh processes: on kernelflow
with this interpreter and on the baseline with its own. Scenarios are written once against
Prefect's API; ``BENCH_API`` picks the library they import (see ``scenarios/_api.py``).

Adding a scenario is one file in ``bench/scenarios/`` that prints its figures as a JSON line,
plus one :class:`Row` in :data:`ROWS` naming the figure to compare and the target.

Each library gets a store warmed once by a one-task flow (so no figure pays for creating
Prefect's database), and every run a fresh copy of it. kernelflow and joblib figures are the
median of ``--repeat`` runs; Prefect's, which take tens of seconds each, come from one run
and where noted from a smaller n, scaled per task. The table goes to stdout and, with every
figure, to ``bench/out/``.

Usage: ``python bench/run.py [--only SCENARIO ...] [--quick] [--lib kernelflow|baseline|both]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SCENARIOS = BENCH / "scenarios"
OUT = BENCH / "out"
BENCH_VENV = ROOT / ".bench-venv"
#: What the baseline venv holds; pandas for the DataFrame scenario's Prefect side.
BENCH_REQUIREMENTS = ("prefect==3.9.1", "pandas")
#: A bound on one scenario run, so a hung library cannot hang the bench.
RUN_TIMEOUT_S = 900


@dataclass(frozen=True)
class Row:
    """One line of the results table: a figure compared between kernelflow and a baseline.

    A scenario given ``n`` is run with ``--n``; ``quick`` replaces ``(n, base_n)`` under
    ``--quick``. The shown figure is the scenario's figure times ``scale`` (a per-task figure
    times the nominal n, so a baseline run at a smaller n is extrapolated per task).
    ``per_task`` says whether a figure may be compared across different n. The target is
    met when kernelflow / baseline <= ``ratio``, or kernelflow <= ``limit``, or, for a list
    figure, when kernelflow's list is empty.
    """

    label: str
    scenario: str
    figure: str
    unit: str
    n: int | None = None
    base_n: int | None = None
    quick: tuple[int, int] | None = None
    scale: float = 1.0
    per_task: bool = True
    ratio: float | None = None
    limit: float | None = None
    baseline: str = "prefect"
    note: str = ""


ROWS: tuple[Row, ...] = (
    Row(
        "sequential trivial tasks",
        "sequential",
        "cpu_per_task_us",
        "µs CPU per task, whole process tree",
        n=1000,
        base_n=1000,
        quick=(100, 100),
        ratio=1 / 100,
    ),
    Row(
        "sequential trivial tasks",
        "sequential",
        "cpu_per_task_us",
        "µs CPU per task, whole process tree",
        n=10_000,
        base_n=1000,
        quick=(1000, 100),
        ratio=1 / 100,
    ),
    Row(
        "sequential trivial tasks, incl. kernelflow's journal → DuckDB fold",
        "sequential",
        "cpu_per_task_with_store_us",
        "µs CPU per task, whole process tree",
        n=10_000,
        base_n=1000,
        quick=(1000, 100),
        ratio=1 / 100,
    ),
    Row(
        "1,000 submitted tasks",
        "submit",
        "per_task_s",
        "s wall for 1,000 tasks",
        n=1000,
        base_n=1000,
        quick=(100, 100),
        scale=1000,
        ratio=1 / 50,
        note="flow call after a warm-up flow",
    ),
    Row(
        "fresh process: import + one-task flow",
        "startup",
        "process_wall_s",
        "s wall, whole process",
        ratio=1 / 20,
    ),
    Row("`import` alone", "startup", "import_s", "ms", scale=1000, limit=150),
    Row("modules loaded by `import`", "startup", "heavy_modules", "of duckdb/pandas/pyarrow"),
    Row(
        "small cache hit",
        "cache_hit",
        "per_hit_s",
        "ms wall per hit",
        n=1000,
        base_n=500,
        quick=(100, 50),
        scale=1000,
        ratio=1 / 50,
    ),
    Row(
        "80 MB DataFrame cache hit, new process",
        "big_frame",
        "hit_s",
        "s wall",
        baseline="joblib",
        ratio=1.0,
    ),
    Row(
        "80 MB DataFrame cache hit, new process",
        "big_frame",
        "hit_s",
        "s wall",
        note="Prefect for reference",
    ),
    Row(
        "peak RSS, sequential trivial tasks",
        "peak_memory",
        "peak_rss_mb",
        "MB, flow process + server",
        n=10_000,
        base_n=2000,
        quick=(1000, 200),
        per_task=False,
        ratio=1 / 3,
    ),
    Row(
        ".map() over items",
        "mapped",
        "per_item_s",
        "s wall for 10,000 items",
        n=10_000,
        base_n=1000,
        quick=(1000, 100),
        scale=10_000,
        ratio=1 / 50,
        note="flow call after a warm-up flow",
    ),
)


def bench_python() -> Path:
    """Create ``.bench-venv`` with the baseline libraries unless it already holds them."""
    python = BENCH_VENV / "bin" / "python"
    marker = BENCH_VENV / ".installed"
    wanted = "\n".join(BENCH_REQUIREMENTS)
    if marker.exists() and marker.read_text() == wanted and python.exists():
        return python
    print(f"creating {BENCH_VENV.name} with {', '.join(BENCH_REQUIREMENTS)}", file=sys.stderr)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, *BENCH_REQUIREMENTS], check=True)
    marker.write_text(wanted)
    return python


def environment(api: str, home: Path) -> dict[str, str]:
    """The environment of one run: the caller's, less any library settings, plus ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "KERNELFLOW_"))}
    env.update(BENCH_API=api, BENCH_HOME=str(home), PYTHONUNBUFFERED="1")
    if api == "kernelflow":
        env.update(KERNELFLOW_HOME=str(home / "kernelflow"), KERNELFLOW_LOGGING_LEVEL="WARNING")
    elif api == "prefect":
        # No PREFECT_API_URL: each process starts Prefect's temporary local server.
        env.update(
            PREFECT_HOME=str(home / "prefect"),
            PREFECT_LOGGING_LEVEL="WARNING",
            DO_NOT_TRACK="1",
            PREFECT_CLOUD_ENABLE_ORCHESTRATION_TELEMETRY="false",
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120",
        )
    return env


class ScenarioError(RuntimeError):
    """A scenario run exited non-zero; the message ends with its stderr's last lines."""


class Runner:
    """Runs scenarios in fresh processes, each library from a store warmed once."""

    def __init__(self, pythons: dict[str, Path], scratch: Path, repeats: dict[str, int]):
        self.pythons = pythons
        self.scratch = scratch
        self.repeats = repeats
        self.templates: dict[str, Path] = {}
        self.results: dict[tuple[str, str, int | None], list[dict]] = {}

    def _once(self, scenario: str, api: str, n: int | None, home: Path, *extra: str) -> dict:
        argv = [str(self.pythons[api]), str(SCENARIOS / f"{scenario}.py"), *extra]
        if n is not None:
            argv += ["--n", str(n)]
        # A session of its own, so a run that hangs is ended with everything it started.
        child = subprocess.Popen(
            argv,
            env=environment(api, home),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = child.communicate(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.communicate()
            raise ScenarioError(f"{scenario} on {api} ran over {RUN_TIMEOUT_S} s") from None
        if child.returncode != 0:
            tail = "\n".join(stderr.strip().splitlines()[-12:])
            raise ScenarioError(f"{scenario} on {api} exited with {child.returncode}:\n{tail}")
        figures: dict = {}
        for line in stdout.splitlines():
            if line.startswith("{"):
                figures.update(json.loads(line))
        return figures

    def _fresh_home(self, api: str) -> Path:
        if api not in self.templates:
            template = Path(tempfile.mkdtemp(prefix=f"{api}-template-", dir=self.scratch))
            if api != "joblib":
                self._once("startup", api, None, template, "--phase", "flow")
            self.templates[api] = template
        home = Path(tempfile.mkdtemp(prefix=f"{api}-", dir=self.scratch))
        shutil.copytree(self.templates[api], home, dirs_exist_ok=True)
        return home

    def figures(self, scenario: str, api: str, n: int | None) -> list[dict]:
        """Every run's figures of ``scenario`` on ``api`` (runs it on first request)."""
        key = (scenario, api, n)
        if key not in self.results:
            runs = []
            started = time.perf_counter()
            for _ in range(self.repeats[api]):
                home = self._fresh_home(api)
                try:
                    runs.append(self._once(scenario, api, n, home))
                finally:
                    shutil.rmtree(home, ignore_errors=True)
            self.results[key] = runs
            took = time.perf_counter() - started
            size = f", n={n}" if n else ""
            print(f"{scenario} on {api}{size}: {len(runs)} run(s), {took:.0f} s", file=sys.stderr)
        return self.results[key]


def figure(runs: list[dict], row: Row) -> float | list:
    """The row's figure: the median over runs, scaled; a list figure from the first run."""
    values = [run[row.figure] for run in runs]
    if isinstance(values[0], list):
        return values[0]
    return statistics.median(values) * row.scale


def verdict(row: Row, ours: float | list, base: float | list) -> tuple[str, str, str]:
    """(ratio, target, met) cells of a row."""
    if isinstance(ours, list):
        return "", "none", "yes" if not ours else "no"
    ratio = ours / base if base else float("inf")
    if row.ratio is not None:
        target = "≤ 1.0" if row.ratio == 1 else f"≤ 1/{round(1 / row.ratio)}"
        return f"{ratio:.3g}", target, "yes" if ratio <= row.ratio else "no"
    if row.limit is not None:
        return f"{ratio:.3g}", f"≤ {row.limit:g} {row.unit}", "yes" if ours <= row.limit else "no"
    return f"{ratio:.3g}", "", ""


def cell(value: float | list | str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ", ".join(value) or "none"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def machine() -> list[str]:
    """Lines describing this machine and run, for the top of the results."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    cpu = "unknown CPU"
    if Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = subprocess.run(["free", "-h"], capture_output=True, text=True, check=False)
    total = memory.stdout.splitlines()[1].split()[1] if memory.returncode == 0 else "?"
    return [
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}",
        f"- machine: {os.cpu_count()} CPUs ({cpu}), {total} RAM, {platform.platform()}",
        f"- python: {platform.python_version()}",
        f"- load average (1, 5, 15 min) at the start: {load}",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = sorted({row.scenario for row in ROWS})
    parser.add_argument(
        "--only",
        action="append",
        choices=names,
        metavar="NAME",
        help=f"run only this scenario (repeatable): {', '.join(names)}",
    )
    parser.add_argument("--quick", action="store_true", help="small n, one run each")
    parser.add_argument(
        "--lib",
        choices=("both", "kernelflow", "baseline"),
        default="both",
        help="run only kernelflow or only the baselines",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs per kernelflow and joblib figure (median); Prefect runs once",
    )
    opts = parser.parse_args(argv)

    rows = [row for row in ROWS if not opts.only or row.scenario in opts.only]
    repeat = 1 if opts.quick else opts.repeat
    pythons = {"kernelflow": Path(sys.executable), "joblib": Path(sys.executable)}
    if opts.lib != "kernelflow" and any(row.baseline == "prefect" for row in rows):
        pythons["prefect"] = bench_python()
    OUT.mkdir(exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="kernelflow-bench-"))
    runner = Runner(pythons, scratch, {"kernelflow": repeat, "joblib": repeat, "prefect": 1})

    header = machine()
    lines = [
        "| scenario | n | unit | kernelflow | baseline | ratio | target | met | notes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    failures: list[str] = []
    try:
        for row in rows:
            n, base_n = row.quick if opts.quick and row.quick else (row.n, row.base_n or row.n)
            sides: dict[str, float | list | str] = {}
            for side, api, size in (("ours", "kernelflow", n), ("base", row.baseline, base_n)):
                if (opts.lib, side) in (("kernelflow", "base"), ("baseline", "ours")):
                    sides[side] = "not run"
                    continue
                try:
                    sides[side] = figure(runner.figures(row.scenario, api, size), row)
                except ScenarioError as error:
                    failures.append(str(error))
                    sides[side] = "failed"
            ours, base = sides["ours"], sides["base"]
            notes = [f"baseline {row.baseline}"] if row.baseline != "prefect" else []
            notes += [row.note] if row.note else []
            if n and base_n and n != base_n:
                how = "per-task figure" if row.per_task else "its figure not scaled"
                notes.append(f"{row.baseline} at n={base_n:,}, {how}")
            sizes = f"{n:,}" + (f" / {base_n:,}" if base_n != n else "") if n else ""
            done = not isinstance(ours, str) and not isinstance(base, str)
            ratio, target, met = verdict(row, ours, base) if done else ("", "", "")
            lines.append(
                f"| {row.label} | {sizes} | {row.unit} | {cell(ours)} | {cell(base)} | {ratio} | "
                f"{target} | {met} | {'; '.join(notes)} |"
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    header.append(f"- load average at the end: {load}; repeats: kernelflow and joblib {repeat}")
    report = "\n".join([*header, "", *lines])
    print(report)
    for failure in failures:
        print(f"\nFAILED: {failure}")
    (OUT / "results.md").write_text(report + "\n")
    (OUT / "figures.json").write_text(
        json.dumps(
            [
                {"scenario": k[0], "api": k[1], "n": k[2], "runs": v}
                for k, v in runner.results.items()
            ],
            indent=1,
        )
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
