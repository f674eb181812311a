"""Generate a large, realistic kernelflow store for the query benchmarks.

    python bench/make_store.py --task-runs 10M [--flow-runs 100k] [--home DIR]

The store is written straight into a DuckDB file with SQL (``range``), on the
real schema (the database is created and migrated by kernelflow itself), so
ten million task runs take a minute or two rather than the hours recording
them would. What it holds, spread over the year before today:

- ``flow_runs``: flows with realistic names, mostly Completed, some Failed,
  Crashed, Cancelled, Cached, a few still Running (the newest), about 2 %
  started by one of a few deployments;
- ``task_runs``: about 10 to 190 per flow run (100 on average; every 100th
  flow run has exactly 100, so the benchmark has a typical run to show),
  created in order inside their flow run, a few cached or failed;
- ``logs``: two lines per flow run and one for every 10th task run;
- ``deployments``, ``cache_entries`` and ``processes``: a few rows each.

Rows are inserted in creation order, as compaction inserts them over a year
of use, so DuckDB's zone maps on ``created`` look as they would in real use.
State history (``states``) is left out: it is not read by the pages the
benchmark times, and it would triple the generation time.

A store is cached under ``bench/out/stores/`` by size (and by
:data:`GENERATOR_VERSION`), so a rerun reuses it; ``--home DIR`` writes
elsewhere, and ``--force`` regenerates.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

#: Bump when the generated content changes, so cached stores are not reused.
GENERATOR_VERSION = 2
#: Where generated stores are kept, one directory per size.
CACHE = HERE / "out" / "stores"

_SUFFIXES = {"": 1, "k": 1_000, "m": 1_000_000, "M": 1_000_000, "K": 1_000}

FLOW_NAMES = [
    "etl-daily", "ingest-orders", "train-model", "score-customers", "refresh-dashboard",
    "backfill-events", "sync-inventory", "clean-logs", "export-report", "feature-store",
    "validate-schema", "compute-metrics", "nightly-rollup", "weather-pull", "price-scrape",
    "email-digest", "fit-forecast", "dedupe-contacts", "image-resize", "notebook-analysis",
]  # fmt: skip
TASK_NAMES = [
    "load", "extract", "transform", "validate", "fetch_page", "parse", "score", "aggregate",
    "write_parquet", "upload", "train_fold", "evaluate", "resize", "geocode", "join_tables",
    "clean_rows", "compute_features", "send_email", "checkpoint", "summarize",
]  # fmt: skip
ADJECTIVES = [
    "steady", "bold", "tidy", "brisk", "calm", "eager", "fancy", "gentle", "happy", "jolly",
    "keen", "lucky", "merry", "nimble", "proud", "quiet", "rapid", "sunny", "witty", "zesty",
]  # fmt: skip
ANIMALS = [
    "hawk", "seal", "newt", "otter", "lynx", "heron", "bison", "crane", "finch", "gecko",
    "ibex", "koala", "lemur", "moose", "panda", "quail", "raven", "stork", "tapir", "wombat",
]  # fmt: skip
DEPLOYMENTS = ["nightly-report", "hourly-ingest", "weekly-train", "daily-scores", "ad-hoc"]


def parse_count(text: str) -> int:
    """``10M`` -> 10_000_000, ``100k`` -> 100_000, ``2500`` -> 2500."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", text)
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count; write e.g. 10M, 100k or 2500")
    return int(float(match[1]) * _SUFFIXES[match[2]])


def label(count: int) -> str:
    """The short form of a count, as in a cache directory name: 10M, 100k, 2500."""
    for suffix, size in (("M", 1_000_000), ("k", 1_000)):
        if count >= size and count % size == 0:
            return f"{count // size}{suffix}"
    return str(count)


def default_flow_runs(task_runs: int) -> int:
    """One flow run per 100 task runs (100k for 10M), at least one."""
    return max(1, task_runs // 100)


def cached_home(task_runs: int, flow_runs: int) -> Path:
    """The cache directory of a store of this size."""
    return CACHE / f"v{GENERATOR_VERSION}-{label(task_runs)}-tasks-{label(flow_runs)}-flows"


def _pick(values: list[str], number: str) -> str:
    """SQL choosing one of ``values`` by the (non-negative) integer expression ``number``."""
    listed = "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"
    return f"{listed}[1 + CAST(({number}) % {len(values)} AS BIGINT)]"


# A deterministic UUID-shaped id from a string (md5 is 32 hex digits).
_UUID = (
    "substr(md5({x}), 1, 8) || '-' || substr(md5({x}), 9, 4) || '-' || "
    "substr(md5({x}), 13, 4) || '-' || substr(md5({x}), 17, 4) || '-' || substr(md5({x}), 21, 12)"
)


def _uuid(expression: str) -> str:
    return _UUID.format(x=expression)


def generate(home: Path, task_runs: int, flow_runs: int) -> dict[str, float]:
    """Write a store of ``task_runs`` task runs in ``flow_runs`` flow runs under ``home``.

    Returns the seconds each step took.
    """
    os.environ["KERNELFLOW_HOME"] = str(home)
    from kernelflow.settings import StorePaths
    from kernelflow.store.db import connect

    paths = StorePaths(home)
    timings: dict[str, float] = {}
    # Every 100th flow run has exactly 100 task runs when the store is big enough
    # for that; the other runs share the rest in proportion to a weight of 10 to 190.
    typical_runs = (flow_runs + 99) // 100
    typical = task_runs - 100 * typical_runs >= flow_runs - typical_runs
    rest = task_runs - 100 * typical_runs if typical else task_runs
    with connect(paths) as con:
        started = time.perf_counter()
        con.execute("SET preserve_insertion_order = true")
        # The flow runs, oldest first, spread evenly over the year before now.
        # Each gets a number of task runs; the running total (``first``) places
        # its task runs, so the counts add up to exactly ``task_runs``.
        con.execute(
            f"""
            CREATE TEMP TABLE fr AS
            WITH base AS (
                SELECT i,
                    now() - INTERVAL 365 DAY
                        + to_microseconds(CAST(i * (365 * 86400e6 / $n) AS BIGINT)) AS created,
                    $typical AND i % 100 = 0 AS typical,
                    CASE WHEN $typical AND i % 100 = 0 THEN 0
                         ELSE 10 + (hash(i) % 181) END AS weight,
                    hash(i * 7 + 1) % 1000 AS roll
                FROM range($n) t(i)
            ), shares AS (
                SELECT *, sum(weight) OVER (ORDER BY i) AS upto, sum(weight) OVER () AS total
                FROM base
            ), counts AS (
                SELECT *, CASE WHEN typical THEN 100 ELSE CAST(
                    floor(($rest::HUGEINT * upto) / total)
                    - floor(($rest::HUGEINT * (upto - weight)) / total) AS BIGINT) END AS ntasks
                FROM shares
            )
            SELECT i, created, roll, ntasks,
                CAST(sum(ntasks) OVER (ORDER BY i) - ntasks AS BIGINT) AS first,
                {_uuid("'flow-run-' || i")} AS id,
                {_pick(FLOW_NAMES, "hash(i * 3)")} AS flow_name,
                {_pick(ADJECTIVES, "hash(i * 5)")} || '-' ||
                {_pick(ANIMALS, "hash(i * 11)")} AS name,
                CASE
                    WHEN i >= $n - 3 THEN 'Running'
                    WHEN roll < 60 THEN 'Failed'
                    WHEN roll < 75 THEN 'Crashed'
                    WHEN roll < 85 THEN 'Cancelled'
                    WHEN roll < 95 THEN 'TimedOut'
                    WHEN roll < 130 THEN 'Cached'
                    ELSE 'Completed'
                END AS state_name,
                CASE WHEN roll % 50 = 7 THEN
                    {_uuid("'deployment-' || (hash(i) % " + str(len(DEPLOYMENTS)) + ")")}
                END AS deployment_id
            FROM counts ORDER BY i
            """,
            {"n": flow_runs, "typical": typical, "rest": rest},
        )
        con.execute(
            """
            INSERT INTO flow_runs
            SELECT id, name, flow_name, '1.0', NULL, NULL, deployment_id,
                '{"n": "' || (roll % 50) || '", "source": "''s3://bucket/raw''"}',
                CASE WHEN roll % 4 = 0 THEN ['nightly'] ELSE [] END,
                CASE state_name WHEN 'Cached' THEN 'COMPLETED' WHEN 'TimedOut' THEN 'FAILED'
                    ELSE upper(state_name) END,
                state_name,
                CASE state_name WHEN 'Failed' THEN 'Flow run encountered an exception: '
                        || 'ValueError(''bad row'')'
                    WHEN 'Crashed' THEN 'The process running this flow run ended unexpectedly.'
                    WHEN 'TimedOut' THEN 'Flow run exceeded timeout of 600.0 second(s)'
                    ELSE NULL END,
                created + to_microseconds(ntasks * 40000 + 5000),
                created, created + INTERVAL 2 MILLISECOND,
                CASE WHEN state_name = 'Running' THEN NULL
                    ELSE created + to_microseconds(ntasks * 40000 + 5000) END,
                CASE WHEN state_name = 'Running' THEN NULL ELSE ntasks * 0.04 + 0.005 END,
                1, NULL, 'bench-host', 1000 + CAST(i % 30000 AS INTEGER),
                'bench-host:' || (1000 + i % 30000) || ':' || i
            FROM fr ORDER BY i
            """
        )
        timings["flow_runs"] = time.perf_counter() - started
        started = time.perf_counter()
        # Task runs: the k-th of its flow run is created 40 ms after the one before.
        con.execute(
            f"""
            INSERT INTO task_runs
            SELECT {_uuid("'task-run-' || (f.first + k)")},
                f.id, t.task_name, t.task_name || '-' || k, [],
                CASE WHEN t.cached THEN md5('key-' || ((f.first + k) % 5000)) END,
                '{{"x": "' || k || '"}}', NULL, t.cached, NULL,
                CASE WHEN t.state_name IN ('Completed', 'Cached') THEN 'COMPLETED'
                     ELSE 'FAILED' END,
                t.state_name,
                CASE WHEN t.state_name = 'Failed' THEN 'Task run encountered an exception '
                    || 'KeyError: ''user_id''' END,
                t.created + INTERVAL 35 MILLISECOND,
                t.created, t.created, t.created + INTERVAL 35 MILLISECOND, 0.035,
                1, 'bench-host', 1000 + CAST(f.i % 30000 AS INTEGER),
                'bench-host:' || (1000 + f.i % 30000) || ':' || f.i
            FROM fr f, LATERAL (
                SELECT k,
                    f.created + INTERVAL 2 MILLISECOND + to_microseconds(k * 40000) AS created,
                    {_pick(TASK_NAMES, "hash(f.i * 13 + k % 7)")}
                        AS task_name,
                    hash(f.first + k) % 100 < 3 AS cached,
                    CASE WHEN f.state_name = 'Failed' AND k = f.ntasks - 1 THEN 'Failed'
                         WHEN hash(f.first + k) % 100 < 3 THEN 'Cached'
                         ELSE 'Completed' END AS state_name
                FROM range(f.ntasks) r(k)
            ) t
            ORDER BY f.i, t.k
            """
        )
        timings["task_runs"] = time.perf_counter() - started
        started = time.perf_counter()
        con.execute(
            """
            INSERT INTO logs
            SELECT id, 'flow', 20, 'INFO', 'kernelflow.flow_runs',
                'Beginning flow run ''' || name || ''' for flow ''' || flow_name || '''',
                created, 'bench-host:' || (1000 + i % 30000) || ':' || i, 2 * i
            FROM fr
            UNION ALL
            SELECT id, 'flow', CASE WHEN state_name = 'Failed' THEN 40 ELSE 20 END,
                CASE WHEN state_name = 'Failed' THEN 'ERROR' ELSE 'INFO' END,
                'kernelflow.flow_runs', 'Finished in state ' || state_name || '()',
                created + to_microseconds(ntasks * 40000 + 5000),
                'bench-host:' || (1000 + i % 30000) || ':' || i, 2 * i + 1
            FROM fr WHERE state_name <> 'Running'
            """
        )
        con.execute(
            """
            INSERT INTO logs
            SELECT id, 'task', 20, 'INFO', 'kernelflow.task_runs',
                'Processed ' || (hash(id) % 10000) || ' rows', end_time, process,
                1000000000 + row_number() OVER ()
            FROM task_runs USING SAMPLE 10 PERCENT (system, 7)
            ORDER BY created
            """
        )
        timings["logs"] = time.perf_counter() - started
        started = time.perf_counter()
        for number, name in enumerate(DEPLOYMENTS):
            ident = con.execute(f"SELECT {_uuid('$x')}", {"x": f"deployment-{number}"}).fetchone()[
                0
            ]
            definition = {
                "id": ident,
                "name": name,
                "notebook": f"/home/user/notebooks/{name}.ipynb",
                "snapshot": f"deployments/{ident}/notebook.ipynb",
                "content_hash": f"{number:064x}",
                "cron": "0 * * * *" if "hourly" in name else "0 3 * * *",
                "timezone": "UTC",
                "paused": name == "ad-hoc",
            }
            con.execute(
                "INSERT INTO deployments VALUES (?, ?, ?, ?, ?, 'cron', ?, NULL, 'UTC', '{}', ?, "
                "[], ?, now() - INTERVAL 365 DAY, now() - INTERVAL 30 DAY)",
                [
                    ident,
                    name,
                    definition["notebook"],
                    definition["snapshot"],
                    definition["content_hash"],
                    definition["cron"],
                    definition["paused"],
                    json.dumps(definition),
                ],
            )
        con.execute(
            """
            INSERT INTO cache_entries
            SELECT md5('key-' || i), 'score', 'results/' || md5('key-' || i), md5('sum-' || i),
                1000 + i, now() - INTERVAL 30 DAY, NULL, NULL, 0.035, i % 40,
                now() - INTERVAL 1 DAY, FALSE, NULL
            FROM range(5000) t(i)
            """
        )
        con.execute(
            """
            INSERT INTO processes
            SELECT DISTINCT ON (process) process, host, pid, 0, 'bench-boot',
                ['python', '-m', 'ipykernel_launcher'], created, end_time, 0
            FROM flow_runs WHERE hash(id) % 100 = 0
            """
        )
        con.execute("DROP TABLE fr")
        con.execute("CHECKPOINT")
        timings["rest"] = time.perf_counter() - started
    return timings


def ensure_store(task_runs: int, flow_runs: int | None = None, *, force: bool = False) -> Path:
    """The home of a cached store of this size, generated first if missing.

    A store is complete when its ``generated.json`` exists (written last), so
    a generation stopped half-way is redone, not reused.
    """
    flow_runs = flow_runs or default_flow_runs(task_runs)
    home = cached_home(task_runs, flow_runs)
    marker = home / "generated.json"
    if marker.exists() and not force:
        return home
    _fresh(home)
    timings = generate(home, task_runs, flow_runs)
    marker.write_text(
        json.dumps({"task_runs": task_runs, "flow_runs": flow_runs, "seconds": timings})
    )
    return home


def _fresh(home: Path) -> None:
    import shutil

    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True, mode=0o700)


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task-runs", type=parse_count, default=parse_count("10M"))
    parser.add_argument("--flow-runs", type=parse_count, default=None)
    parser.add_argument("--home", type=Path, default=None, help="write the store here")
    parser.add_argument("--force", action="store_true", help="regenerate a cached store")
    args = parser.parse_args(argv)
    flow_runs = args.flow_runs or default_flow_runs(args.task_runs)
    if flow_runs > args.task_runs:
        parser.error("--flow-runs must not exceed --task-runs")
    started = time.perf_counter()
    if args.home is None:
        home = ensure_store(args.task_runs, flow_runs, force=args.force)
    else:
        home = args.home.resolve()
        if (home / "kernelflow.duckdb").exists() and not args.force:
            parser.error(f"{home} already holds a store; give --force to replace it")
        _fresh(home)
        generate(home, args.task_runs, flow_runs)
    size = (home / "kernelflow.duckdb").stat().st_size
    print(
        f"{home}: {args.task_runs:,} task runs in {flow_runs:,} flow runs, "
        f"{size / 1e6:,.0f} MB ({time.perf_counter() - started:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
