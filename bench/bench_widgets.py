"""Benchmark: a 10,000-task flow in a notebook kernel, live view on vs widgets off.

Both figures of issue 5, measured in the same run on real kernels (jupyter_client, the
way a notebook front end talks to them):

- ``wall ratio``: the flow's wall time with the live view on, divided by the same flow's
  with the widgets off (target <= 1.1);
- ``comm messages / s``: widget messages (``comm_open`` + ``comm_msg``) the kernel sends
  for that flow, per second of the flow's run time, counted on the IOPub channel from the
  cell's start until the view's final update (target <= 10).

One kernel (``%load_ext kernelflow``, a warm-up flow) runs each flow shape (sequential
task calls; ``.submit()`` of every task) ``--repeat`` times in each mode, switching with
``kernelflow.widgets.set_enabled`` (what ``KERNELFLOW_WIDGETS=off`` does at start-up). The
two runs of a pair go back to back, in alternating order, so drift on this shared machine
hits both modes alike; the wall ratio is the median of the pairs' ratios. The ratio of
the fastest runs and the ratio of the kernel's CPU time (all its threads, the widgets'
updater included) are printed beside it. Logging is at WARNING, as in ``bench/run.py``,
so 10,000 "Finished" lines to stderr do not hide the widgets' cost, and the store's
background compaction is held off (it would land in random runs of either mode).

Usage: ``python bench/bench_widgets.py [--n 10000] [--repeat 3]``; prints a table and
writes ``bench/out/widgets.json``.
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

sequential(10)
submitted(10)
"""

TIMED = """
_start, _cpu = time.perf_counter(), time.process_time()
_total = {shape}({n})
_wall, _cpu = time.perf_counter() - _start, time.process_time() - _cpu
assert _total == {n} * ({n} + 1) // 2
print(json.dumps({{"wall_s": _wall, "cpu_s": _cpu}}))
"""


class Kernel:
    """A kernel started like a notebook's, with every IOPub message of a cell collected."""

    def __init__(self, widgets: str, home: Path) -> None:
        from jupyter_client.manager import start_new_kernel

        env = dict(
            os.environ,
            KERNELFLOW_HOME=str(home),
            KERNELFLOW_WIDGETS=widgets,
            # The store's background compaction would land in random runs of either mode.
            KERNELFLOW_COMPACT_SECONDS="3600",
            KERNELFLOW_LOGGING_LEVEL="WARNING",
        )
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
        if msg["msg_type"] == "stream" and msg["content"]["text"].startswith("{"):
            printed = json.loads(msg["content"]["text"].splitlines()[0])
    wall = printed.get("wall_s")
    comm = [m for m in messages if m["msg_type"] in ("comm_open", "comm_msg")]
    return {
        "wall_s": wall,
        "cpu_s": printed.get("cpu_s"),
        "comm_messages": len(comm),
        "comm_per_s": len(comm) / wall if wall else float("nan"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    opts = parser.parse_args(argv)

    scratch = Path(tempfile.mkdtemp(prefix="kernelflow-bench-widgets-"))
    kernel = Kernel("on", scratch / "home")
    results: dict[tuple[str, str], list[dict]] = {}
    try:
        kernel.run(SETUP, settle=0.5)
        for shape in ("sequential", "submitted"):
            for repeat in range(opts.repeat):
                # Pairs run back to back, in alternating order, so drift hits both modes alike.
                modes = ("off", "on") if repeat % 2 == 0 else ("on", "off")
                for mode in modes:
                    kernel.run(f"kernelflow.widgets.set_enabled({mode == 'on'})")
                    # 1 s after idle catches the view's last update, if the ticker sends one.
                    messages = kernel.run(TIMED.format(shape=shape, n=opts.n), settle=1.0)
                    results.setdefault((shape, mode), []).append(figures(messages))
    finally:
        kernel.close()
        shutil.rmtree(scratch, ignore_errors=True)

    lines = [
        f"Live run view, {opts.n:,}-task flow in a kernel, {opts.repeat} runs per mode",
        "",
        "| flow | wall, view on (s) | wall, widgets off (s) | wall ratio | best-run ratio | "
        "CPU ratio | target | comm msgs | comm msgs / s | target | met |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    summary = {}
    for shape in ("sequential", "submitted"):
        on = results[(shape, "on")]
        off = results[(shape, "off")]
        pairs = [a["wall_s"] / b["wall_s"] for a, b in zip(on, off, strict=True)]
        ratio = statistics.median(pairs)
        wall_on = statistics.median(r["wall_s"] for r in on)
        wall_off = statistics.median(r["wall_s"] for r in off)
        best_ratio = min(r["wall_s"] for r in on) / min(r["wall_s"] for r in off)
        cpu_ratio = statistics.median(a["cpu_s"] / b["cpu_s"] for a, b in zip(on, off, strict=True))
        msgs = statistics.median(r["comm_messages"] for r in on)
        rate = max(r["comm_per_s"] for r in on)
        met = ratio <= 1.1 and rate <= 10
        summary[shape] = {
            "wall_on_s": wall_on,
            "wall_off_s": wall_off,
            "wall_ratio": ratio,
            "best_wall_ratio": best_ratio,
            "cpu_ratio": cpu_ratio,
            "comm_messages": msgs,
            "comm_per_s": rate,
            "off_comm_messages": statistics.median(r["comm_messages"] for r in off),
        }
        lines.append(
            f"| {shape} | {wall_on:.3f} | {wall_off:.3f} | {ratio:.3f} | "
            f"{best_ratio:.3f} | {cpu_ratio:.3f} | <= 1.1 | {msgs:.0f} | {rate:.2f} | "
            f"<= 10 | {'yes' if met else 'no'} |"
        )
    lines.append("")
    lines.append(
        "wall ratio: median over back-to-back pairs of (view on / widgets off); "
        "walls: medians; comm msgs / s: the worst run's widget messages per second "
        "of its flow."
    )
    print("\n".join(lines))
    OUT.mkdir(exist_ok=True)
    (OUT / "widgets.json").write_text(
        json.dumps(
            {
                "n": opts.n,
                "repeat": opts.repeat,
                "summary": summary,
                "runs": {f"{k[0]}/{k[1]}": v for k, v in results.items()},
            },
            indent=1,
        )
    )
    # Like run.py: a missed target is reported in the table, not as a failed command.
    return 0


if __name__ == "__main__":
    sys.exit(main())
