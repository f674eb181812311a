"""``kernelflow sql "QUERY"``: run SQL on the store and print the result.

The query runs through :func:`kernelflow.store.queries.sql`, the same function
as ``kernelflow.sql(...)`` in Python, so it sees every run recorded so far
(pending journal events are folded in first). The tables are documented in
``docs/schema.md``. Output is a table by default, or the whole result as
JSON records (``--json``) or CSV (``--csv``) for other programs.
"""

from __future__ import annotations

import sys

import click

from kernelflow.cli.render import console, frame_table

__all__ = ["command"]


@click.command("sql")
@click.argument("query")
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="VALUE",
    help="A value for the next ? placeholder (repeat for several).",
)
@click.option("--json", "output", flag_value="json", help="Print JSON records instead of a table.")
@click.option("--csv", "output", flag_value="csv", help="Print CSV instead of a table.")
@click.option(
    "--max-rows",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Rows shown in the table (--json and --csv print all).",
)
def command(query: str, params: tuple[str, ...], output: str | None, max_rows: int) -> None:
    """Run QUERY (DuckDB SQL) on the store and print the result.

    \b
    Examples:
      kernelflow sql "SELECT flow_name, state_name, duration_s FROM flow_runs"
      kernelflow sql "SELECT * FROM task_runs WHERE task_name = ?" -p extract --csv
    """
    from kernelflow.store.queries import sql

    frame = sql(query, list(params) if params else None)
    if output == "json":
        sys.stdout.write(frame.to_json(orient="records", date_format="iso", lines=False))
        sys.stdout.write("\n")
        return
    if output == "csv":
        sys.stdout.write(frame.to_csv(index=False))
        return
    shown = frame.head(max_rows)
    total = len(frame)
    table = frame_table(shown, formatted=False)
    if total > len(shown):
        table.caption = f"first {len(shown)} of {total} rows; use --csv or --json for all"
    else:
        table.caption = f"{total} row{'' if total == 1 else 's'}"
    console().print(table)
