"""Benchmark: a 10,000-task flow in a notebook kernel, live view on vs widgets off.

The live-view figures of issue 13, measured in the same run on a real kernel
(jupyter_client, the way a notebook front end talks to it):

- ``wall``: the flow's wall time with the live view on (kernelflow's samples) against
  the same flow's with the widgets off (the baseline's); target on / off <= 1.1;
- ``comm messages / s``: widget messages (``comm_open`` + ``comm_msg``) the kernel sends
  for that flow, per second of the flow's run time, counted on the IOPub channel from the
  cell's start until the view's final update (target <= 10).

One kernel (``%load_ext kernelflow``, then a warm-up cell that runs both shapes in both
modes, so the first view's import of ipywidgets lands in no sample) runs each flow shape
(sequential task calls; ``.submit()`` of every task) ``--repeat`` times in each mode,
switching with ``kernelflow.widgets.set_enabled`` (what ``KERNELFLOW_WIDGETS=off`` does
at start-up). Ten pairs by default: ``bench/report.py`` then judges a ratio by the pairs'
10th to 90th percentile rather than by one outlier pair. The two runs of a pair go back
to back, in alternating order, so drift on this shared machine hits both modes alike.
Both modes run with the defaults: console logging at INFO and the store's background
compaction on. Before each timed run, an untimed cell folds what the earlier runs
journaled (``CATCH_UP``), so that fold does not land in a random timed run of either
mode; the background compaction may still fold part of a timed run's own journal during
it. ``--widget-only`` holds that compaction off altogether, which measures the view
alone; its rows say so.

Usage: ``python bench/bench_widgets.py [--n 10000] [--repeat 10] [--quick] [--widget-only]``;
prints a table and writes ``bench/out/bench_widgets.json`` (rows of the bench contract:
``bench/report.py`` decides whether a target is met).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"

SETUP = """
try:
    get_ipython().run_line_magic("load_ext", "kernelflow")
except Exception:
    pass
import kernelflow.widgets
kernelflow.widgets.install()
import json, time
from kernelflow import flow, task

@task
def inc(x):
    return x + 1

@flow
def sequential(n):
    total = 0
    for i in range(n):
        total += inc(i)
    return total

@flow
def submitted(n):
    return sum(f.result() for f in [inc.submit(i) for i in range(n)])

"""

#: A separate cell (views show only for flows a cell starts after ``install``): the first
#: view imports ipywidgets and anywidget, a one-off cost of the kernel, not of a flow.
WARM_UP = """
for _on in (True, False):
    kernelflow.widgets.set_enabled(_on)
    sequential(100)
    submitted(100)
"""

TIMED = """
_start, _cpu = time.perf_counter(), time.process_time()
_total = {shape}({n})
_wall, _cpu = time.perf_counter() - _start, time.process_time() - _cpu
assert _total == {n} * ({n} + 1) // 2
print(json.dumps({{"wall_s": _wall, "cpu_s": _cpu}}))
"""


#: Run untimed before each timed cell with background compaction on: the journals of the
#: runs before are folded (by the child process the compactor itself would start), so a
#: fold of earlier runs does not land in a random timed run of either mode.
CATCH_UP = """
from kernelflow import settings as _settings
from kernelflow.store.compactor import start_detached_compaction as _start_fold
_fold = _start_fold(_settings.paths())
assert _fold is not None and _fold.wait(timeout=300) == 0
"""

#: The flow shapes measured: task calls one after another, and ``.submit()`` of every task.
SHAPES = ("sequential", "submitted")


class Kernel:
    """A kernel started like a notebook's, with every IOPub message of a cell collected."""

    def __init__(self, widgets: str, home: Path, widget_only: bool = False) -> None:
        from jupyter_client.manager import start_new_kernel

        env = dict(os.environ, KERNELFLOW_HOME=str(home), KERNELFLOW_WIDGETS=widgets)
        # The defaults, whatever the caller's environment says; both modes alike.
        for name in ("KERNELFLOW_COMPACT_SECONDS", "KERNELFLOW_LOGGING_LEVEL"):
            env.pop(name, None)
        if widget_only:
            # The store's background compaction would land in random runs of either mode.
            env["KERNELFLOW_COMPACT_SECONDS"] = "3600"
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        self.manager, self.client = start_new_kernel(
            kernel_name="python3", env=env, startup_timeout=60
        )

    def run(self, code: str, settle: float = 0.0, timeout: float = 600) -> list[dict]:
        """Execute ``code``; return the IOPub messages until idle, plus ``settle`` seconds."""
        msg_id = self.client.execute(code)
        messages = []
        deadline = time.monotonic() + timeout
        while True:
            msg = self.client.get_iopub_msg(timeout=max(1.0, deadline - time.monotonic()))
            messages.append(msg)
            if (
                msg["parent_header"].get("msg_id") == msg_id
                and msg["msg_type"] == "status"
                and msg["content"]["execution_state"] == "idle"
            ):
                break
        end = time.monotonic() + settle
        while time.monotonic() < end:
            try:
                messages.append(self.client.get_iopub_msg(timeout=0.05))
            except Exception:  # queue.Empty: nothing more yet
                continue
        errors = [m for m in messages if m["msg_type"] == "error"]
        if errors:
            content = errors[0]["content"]
            raise RuntimeError(f"{content['ename']}: {content['evalue']}")
        return messages

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


def figures(messages: list[dict]) -> dict:
    """The flow's wall time (printed by the cell) and the widget messages around it."""
    printed: dict = {}
    for msg in messages:
        if msg["msg_type"] != "stream":
            continue
        # With the view off, the flow's summary line may share the stream message.
        for line in msg["content"]["text"].splitlines():
            if line.startswith('{"wall_s"'):
                printed = json.loads(line)
    if not printed:
        raise RuntimeError("the timed cell printed no figures")
    wall = printed["wall_s"]
    comm = [m for m in messages if m["msg_type"] in ("comm_open", "comm_msg")]
    return {
        "wall_s": wall,
        "cpu_s": printed["cpu_s"],
        "comm_messages": len(comm),
        "comm_per_s": len(comm) / wall,
    }


def rows(results: dict, n: int, quick: bool, widget_only: bool) -> list[dict]:
    """The bench contract's rows: the figures of every run, nothing decided here."""
    setting = (
        "background compaction held off (the view alone)"
        if widget_only
        else "default settings (INFO logging, background compaction on) in both modes; "
        "before each timed run, the earlier runs' journals folded, untimed"
    )
    found = []
    for shape in SHAPES:
        on, off = results[(shape, "on")], results[(shape, "off")]
        pairs = ", ".join(f"{a['wall_s'] / b['wall_s']:.3f}" for a, b in zip(on, off, strict=True))
        cpu = ", ".join(f"{a['cpu_s'] / b['cpu_s']:.3f}" for a, b in zip(on, off, strict=True))
        common = f"{'quick run; ' if quick else ''}one kernel, {setting}"
        found.append(
            {
                "section": "Live view",
                "label": f"{shape} flow wall time, view on vs widgets off",
                "n": n,
                "unit": "s",
                "kernelflow": [r["wall_s"] for r in on],
                "baseline_name": "widgets off",
                "baseline": [r["wall_s"] for r in off],
                "target": {"ratio_max": 1.1},
                "notes": f"{common}; {len(on)} interleaved pairs, on/off per pair: {pairs}; "
                f"kernel CPU on/off per pair: {cpu}",
            }
        )
        found.append(
            {
                "section": "Live view",
                "label": f"{shape} flow widget messages per second",
                "n": n,
                "unit": "msgs/s",
                "kernelflow": [r["comm_per_s"] for r in on],
                "baseline_name": None,
                "baseline": None,
                "target": {"max": 10},
                "notes": f"{common}; comm_open + comm_msg on IOPub from the cell's start to "
                "1 s after it went idle, per second of the flow's wall time; messages per "
                f"run: {', '.join(str(r['comm_messages']) for r in on)}",
            }
        )
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=10, help="pairs per flow shape (>= 3)")
    parser.add_argument("--quick", action="store_true", help="1,000 tasks, one pair")
    parser.add_argument(
        "--widget-only", action="store_true", help="hold the background compaction off"
    )
    opts = parser.parse_args(argv)
    n = 1_000 if opts.quick else opts.n
    repeat = 1 if opts.quick else max(3, opts.repeat)

    scratch = Path(tempfile.mkdtemp(prefix="kernelflow-bench-widgets-"))
    kernel = Kernel("on", scratch / "home", widget_only=opts.widget_only)
    results: dict[tuple[str, str], list[dict]] = {}
    try:
        kernel.run(SETUP, settle=0.5)
        kernel.run(WARM_UP, settle=0.5)
        for shape in SHAPES:
            for pair in range(repeat):
                # Pairs run back to back, in alternating order, so drift hits both modes alike.
                modes = ("off", "on") if pair % 2 == 0 else ("on", "off")
                for mode in modes:
                    kernel.run(f"kernelflow.widgets.set_enabled({mode == 'on'})")
                    if not opts.widget_only:
                        kernel.run(CATCH_UP)
                    # 1 s after idle catches the view's last update, if the ticker sends one.
                    messages = kernel.run(TIMED.format(shape=shape, n=n), settle=1.0)
                    results.setdefault((shape, mode), []).append(figures(messages))
    finally:
        kernel.close()
        shutil.rmtree(scratch, ignore_errors=True)

    found = rows(results, n, opts.quick, opts.widget_only)
    lines = [
        f"Live run view, {n:,}-task flow in a kernel, {repeat} interleaved pairs",
        "",
        "| figure | view on (median) | widgets off (median) | on / off |",
        "|---|---|---|---|",
    ]
    for row in found:
        on = statistics.median(row["kernelflow"])
        off = statistics.median(row["baseline"]) if row["baseline"] else None
        lines.append(
            f"| {row['label']} | {on:.3f} {row['unit']} | "
            + (f"{off:.3f} {row['unit']} | {on / off:.3f} |" if off else "- | - |")
        )
    print("\n".join(lines))
    OUT.mkdir(exist_ok=True)
    (OUT / "bench_widgets.json").write_text(
        json.dumps({"quick": opts.quick, "rows": found}, indent=1) + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
