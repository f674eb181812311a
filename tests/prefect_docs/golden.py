"""Record what Prefect 3.9.1 shows for each documentation example: ``make prefect-golden``.

Runs every program of ``examples/`` (or those named on the command line) on
real Prefect, with the interpreter of ``.bench-venv`` (created by
``bench/run.py``'s ``bench_python()``, which installs ``prefect==3.9.1``), and
writes ``golden/NN_short_name.json``: the raw run (exit code, escaped
exception, stdout, stderr, seconds) and, for reading, its normalised facts
(``docs_harness.normalise``; the test recomputes them from the raw run, so a
change to the masking needs no new recording).

Each program runs in a fresh process, in an empty working directory, with a
``PREFECT_HOME`` of its own: a copy of a home warmed once by a one-flow
program, so no example pays for creating Prefect's database and none sees
another's runs, caches or limits. No ``PREFECT_API_URL``: each process starts
Prefect's temporary local server, as a user's first script does. Telemetry is
off. Two programs run at a time (``--jobs``).

Usage: ``python tests/prefect_docs/golden.py [--jobs N] [--refresh] [NAME ...]``
(``--refresh`` only rewrites the summaries from the recorded runs.)
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import docs_harness as h

WARM_UP = "from prefect import flow\n\n\n@flow\ndef warm_up():\n    return 1\n\n\nwarm_up()\n"


def prefect_python() -> Path:
    """``.bench-venv``'s interpreter, with Prefect 3.9.1 in it (made on first use)."""
    sys.path.insert(0, str(h.REPO / "bench"))
    from run import BENCH_REQUIREMENTS, bench_python

    wanted = f"prefect=={h.PREFECT_VERSION}"
    if wanted not in BENCH_REQUIREMENTS:
        raise SystemExit(f"bench/run.py's BENCH_REQUIREMENTS no longer holds {wanted}")
    python = bench_python()
    version = subprocess.run(
        [str(python), "-c", "import prefect; print(prefect.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if version != h.PREFECT_VERSION:
        raise SystemExit(f"{python} has Prefect {version}, not {h.PREFECT_VERSION}")
    return python


def warm_home(python: Path, scratch: Path) -> Path:
    """A Prefect home whose database exists (one flow run in it)."""
    home, cwd = scratch / "warm-home", scratch / "warm-cwd"
    home.mkdir()
    cwd.mkdir()
    program = cwd / "warm_up.py"
    program.write_text(WARM_UP)
    run = h.run_program(python, program, h.prefect_environment(home), cwd)
    if run.exit_code != 0:
        raise SystemExit(f"warming Prefect's home failed:\n{run.stderr[-3000:]}")
    return home


def record(name: str, python: Path, template: Path, scratch: Path) -> tuple[str, float, int]:
    """Run example ``name`` on Prefect and write its golden file."""
    work = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=scratch))
    home, cwd = work / "home", work / "cwd"
    shutil.copytree(template, home)
    cwd.mkdir()
    program = h.example_path(name)
    run = h.run_program(python, program, h.prefect_environment(home), cwd)
    golden = {
        "example": name,
        "prefect": h.PREFECT_VERSION,
        "python": platform.python_version(),
        "run": run.as_json(),
        "normalised": h.readable(h.normalise(run, program.read_text())),
    }
    h.golden_path(name).write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return name, run.seconds, run.exit_code


def refresh(names: list[str]) -> None:
    """Rewrite the ``normalised`` summaries from the recorded runs (after a masking change)."""
    for name in names:
        path = h.golden_path(name)
        golden = json.loads(path.read_text())
        source = h.example_path(name).read_text()
        golden["normalised"] = h.readable(h.normalise(h.Run(**golden["run"]), source))
        path.write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="examples to record (default: all)")
    parser.add_argument("--jobs", type=int, default=2, help="programs run at a time")
    parser.add_argument(
        "--refresh", action="store_true", help="only rewrite the summaries; run nothing"
    )
    args = parser.parse_args()
    names = args.names or h.example_names()
    unknown = sorted(set(names) - set(h.example_names()))
    if unknown:
        parser.error(f"no such example: {', '.join(unknown)}")
    if args.refresh:
        refresh([n for n in names if h.golden_path(n).exists()])
        return 0
    python = prefect_python()
    h.GOLDEN.mkdir(exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="prefect-golden-") as tmp:
        scratch = Path(tmp)
        template = warm_home(python, scratch)
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            jobs = [pool.submit(record, name, python, template, scratch) for name in names]
            for job in jobs:
                name, seconds, code = job.result()
                print(f"{name}: exit {code}, {seconds:.1f} s", file=sys.stderr, flush=True)
    took = time.perf_counter() - started
    print(f"recorded {len(names)} example(s) in {took:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
