"""``make demo``: run a small ETL flow, then print its runs as read back from DuckDB.

Run it with ``python -m kernelflow.demo``.

The flow shows what kernelflow records, with Prefect's vocabulary:

- ``fetch_rate`` fails on its first try (a flaky API) and succeeds on its retry;
- ``lookup_region`` is cached with ``cache_key_fn=task_input_hash`` and called
  twice with the same input, so the second call is ``Cached`` (run the demo
  again and both calls are: the cache is reused across processes);
- ``convert.map(...)`` fans out one task run per order;
- ``load`` is a subflow, linked to the demo run as its parent.

Afterwards the runs are read back from the store with :func:`kernelflow.sql`
and printed as a table. The store is the default one (``~/.kernelflow``, or
``KERNELFLOW_HOME`` when set), the same one every ``kernelflow`` command reads.
"""

from __future__ import annotations

import shlex
import shutil
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from kernelflow import flow, get_run_logger, task, unmapped
from kernelflow.tasks import task_input_hash

__all__ = ["etl_demo", "main"]

_ORDERS = [
    {"id": 1, "region": "emea", "amount": 120.0},
    {"id": 2, "region": "emea", "amount": 75.5},
    {"id": 3, "region": "amer", "amount": 310.0},
    {"id": 4, "region": "apac", "amount": 42.25},
]

#: Tries of ``fetch_rate`` in this process: the first one fails on purpose.
_rate_calls = {"n": 0}


@task
def extract() -> list[dict[str, Any]]:
    """Read the day's orders (a fixed list here, so the demo needs no network)."""
    return [dict(order) for order in _ORDERS]


@task(retries=2, retry_delay_seconds=0.2)
def fetch_rate(currency: str) -> float:
    """The exchange rate to ``currency``: a flaky service that fails once, then answers."""
    _rate_calls["n"] += 1
    if _rate_calls["n"] == 1:
        raise ConnectionError("rate service timed out (simulated)")
    return {"EUR": 0.92, "GBP": 0.79}[currency]


@task(cache_key_fn=task_input_hash, cache_expiration=timedelta(days=1))
def lookup_region(region: str) -> str:
    """An expensive reference lookup, worth caching."""
    time.sleep(0.3)
    return {"emea": "Europe, Middle East & Africa", "amer": "Americas", "apac": "Asia-Pacific"}[
        region
    ]


@task
def convert(order: dict[str, Any], rate: float) -> dict[str, Any]:
    """One order's amount in the target currency."""
    return {**order, "amount": round(order["amount"] * rate, 2)}


@task
def summarize(orders: list[dict[str, Any]]) -> dict[str, float]:
    """Total amount per region."""
    totals: dict[str, float] = {}
    for order in orders:
        totals[order["region"]] = round(totals.get(order["region"], 0.0) + order["amount"], 2)
    return totals


@flow
def load(orders: list[dict[str, Any]]) -> dict[str, float]:
    """The load step, as a subflow."""
    totals = summarize(orders)
    get_run_logger().info("Loaded %d orders into %d regions", len(orders), len(totals))
    return totals


_finished_runs: list[str] = []


def _remember_run(flow: Any, flow_run: Any, state: Any) -> None:
    # A state hook, as in Prefect: (flow, flow_run, state). Keeps the run id to read back.
    _finished_runs.append(flow_run.id)


@flow(name="kernelflow-demo", log_prints=True, on_completion=[_remember_run])
def etl_demo(currency: str = "EUR") -> dict[str, float]:
    """Extract orders, convert them with a flaky rate service, label regions, load totals."""
    orders = extract()
    rate = fetch_rate(currency)
    label = lookup_region("emea")
    again = lookup_region("emea")  # same input: a cache hit
    print(f"Region 'emea' is {label!r} (second lookup: {again!r})")
    converted = convert.map(orders, unmapped(rate)).result()
    return load(converted)


def _recorded_runs(flow_run_id: str) -> Any:
    """The demo run, its subflows and all their task runs, straight from DuckDB."""
    from kernelflow.store.run_tree import run_tree

    return run_tree(flow_run_id)


def _command_prefix() -> str:
    """How to call the CLI from the user's shell: ``kernelflow`` or ``.venv/bin/kernelflow``.

    ``make demo`` runs in the project's ``.venv``, which the user's shell may not
    have activated, so a script inside the working directory is shown by its path.
    """
    script = Path(sys.executable).parent / "kernelflow"
    if not script.exists():
        return "kernelflow"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        found = shutil.which("kernelflow")
        return "kernelflow" if found and Path(found) == script else str(script)


def main() -> None:
    """Run the demo flow and print the runs it recorded, read back from the store."""
    from rich.text import Text

    from kernelflow.cli.render import console, frame_table
    from kernelflow.settings import current, paths
    from kernelflow.store.run_tree import EXAMPLE_QUERY

    totals = etl_demo()
    out = console()
    out.print()
    out.print(Text(f"Totals per region: {totals}"))

    frame = _recorded_runs(_finished_runs[-1])
    out.print(
        frame_table(
            frame,
            ["kind", "flow", "run", "state_name", "duration_s", "tries", "cached"],
            headers={"state_name": "state", "duration_s": "duration"},
            title="Recorded in the store (read back with kernelflow.sql)",
        )
    )
    cli = _command_prefix()
    if current().raw("home") is not None:
        cli = f"KERNELFLOW_HOME={shlex.quote(str(paths().home))} {cli}"
    cached = frame[(frame["kind"] == "task") & (frame["state_name"] == "Cached")]
    if len(cached) > 1:
        out.print(
            Text(
                "Both lookups were Cached: the cache written by an earlier demo run is reused "
                f"across processes (to recompute: {cli} cache clear --task lookup_region).",
                style="dim",
            )
        )
    query = EXAMPLE_QUERY
    out.print(
        Text.assemble(
            "Store: ",
            (str(paths().database), "bold"),
            "\nLook at it: ",
            (f"{cli} runs ls", "bold"),
            "  |  ",
            (f"{cli} runs show <id>", "bold"),
            "  |  ",
            (f'{cli} sql "{query}"', "bold"),
            "\nFrom Python: ",
            (f'kernelflow.sql("{query}")', "bold"),
        )
    )


if __name__ == "__main__":
    from kernelflow.errors import KernelflowError

    try:
        main()
    except KernelflowError as exc:  # e.g. an unwritable store: one line, no traceback
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(1)
