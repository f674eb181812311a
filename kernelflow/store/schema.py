"""The store's tables, created and upgraded by numbered migrations.

``MIGRATIONS[i]`` is the SQL script that takes a database from schema version
``i`` to ``i + 1``; the ``schema_version`` table records each version applied.
A released script is never edited: a change is a new script appended to the
list. Every column is documented in ``docs/schema.md``, which is public API.

No table has a PRIMARY KEY or UNIQUE constraint. DuckDB checks such
constraints eagerly inside a transaction, so updating a row twice in one
transaction (which compaction does) can fail on a constraint that would hold
at commit. Uniqueness comes from compaction instead: each journal byte is
imported once (``journal_offsets``) and new runs are inserted with an anti-join.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kernelflow.errors import SchemaTooNewError

if TYPE_CHECKING:
    import duckdb

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "TERMINAL_STATE_TYPES", "migrate", "schema_version"]

#: A run in one of these state types is finished; everything else may still change.
TERMINAL_STATE_TYPES = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")

_V1 = """
CREATE TABLE flow_runs (
    id                 VARCHAR,
    name               VARCHAR,
    flow_name          VARCHAR,
    flow_version       VARCHAR,
    parent_flow_run_id VARCHAR,
    parent_task_run_id VARCHAR,
    deployment_id      VARCHAR,
    parameters         JSON,
    tags               VARCHAR[],
    state_type         VARCHAR,
    state_name         VARCHAR,
    state_message      VARCHAR,
    state_timestamp    TIMESTAMPTZ,
    created            TIMESTAMPTZ,
    start_time         TIMESTAMPTZ,
    end_time           TIMESTAMPTZ,
    duration_s         DOUBLE,
    run_count          INTEGER,
    result             VARCHAR,
    host               VARCHAR,
    pid                INTEGER,
    process            VARCHAR
);

CREATE TABLE task_runs (
    id                 VARCHAR,
    flow_run_id        VARCHAR,
    task_name          VARCHAR,
    name               VARCHAR,
    tags               VARCHAR[],
    cache_key          VARCHAR,
    inputs             JSON,
    outputs            JSON,
    cached             BOOLEAN,
    result             VARCHAR,
    state_type         VARCHAR,
    state_name         VARCHAR,
    state_message      VARCHAR,
    state_timestamp    TIMESTAMPTZ,
    created            TIMESTAMPTZ,
    start_time         TIMESTAMPTZ,
    end_time           TIMESTAMPTZ,
    duration_s         DOUBLE,
    run_count          INTEGER,
    host               VARCHAR,
    pid                INTEGER,
    process            VARCHAR
);

CREATE TABLE states (
    run_id     VARCHAR,
    run_kind   VARCHAR,
    state_type VARCHAR,
    state_name VARCHAR,
    message    VARCHAR,
    timestamp  TIMESTAMPTZ,
    process    VARCHAR,
    seq        BIGINT
);

CREATE TABLE logs (
    run_id     VARCHAR,
    run_kind   VARCHAR,
    level      INTEGER,
    level_name VARCHAR,
    logger     VARCHAR,
    message    VARCHAR,
    timestamp  TIMESTAMPTZ,
    process    VARCHAR,
    seq        BIGINT
);

CREATE TABLE cache_entries (
    key         VARCHAR,
    task_name   VARCHAR,
    result      VARCHAR,
    checksum    VARCHAR,
    size        BIGINT,
    created     TIMESTAMPTZ,
    expires     TIMESTAMPTZ,
    task_run_id VARCHAR,
    duration_s  DOUBLE,
    hits        BIGINT,
    last_hit    TIMESTAMPTZ,
    deleted     BOOLEAN,
    deleted_at  TIMESTAMPTZ
);

CREATE TABLE processes (
    process      VARCHAR,
    host         VARCHAR,
    pid          INTEGER,
    start_ticks  BIGINT,
    boot_id      VARCHAR,
    argv         VARCHAR[],
    started      TIMESTAMPTZ,
    ended        TIMESTAMPTZ,
    crashed_runs INTEGER
);

CREATE TABLE journal_offsets (
    file     VARCHAR,
    "offset" BIGINT
);
"""

# Concurrency and rate limits (kernelflow.concurrency). The definition files
# under <home>/limits are what acquisitions read; this table mirrors them so
# limits are queryable, written by kernelflow.concurrency on every change.
_V2_LIMITS = """
CREATE TABLE concurrency_limits (
    name                  VARCHAR,
    slot_limit            INTEGER,
    slot_decay_per_second DOUBLE,
    active                BOOLEAN,
    created               TIMESTAMPTZ,
    updated               TIMESTAMPTZ
);
"""

# Notebook deployments (kernelflow.deployments). ``deployments`` is written by
# the registry under the store's lock; the claim tables are insert-only, so
# their keys can be real constraints (the eager-check caveat above concerns
# rows updated twice in one transaction): a fire (deployment, scheduled time)
# and a try (flow run, attempt) are each claimed once, whatever races.
# ``deployment_progress`` reads the progress lines a deployment run logs.
_V3_DEPLOYMENTS = """
CREATE TABLE deployments (
    id             VARCHAR,
    name           VARCHAR,
    notebook       VARCHAR,
    snapshot       VARCHAR,
    content_hash   VARCHAR,
    schedule       VARCHAR,
    cron           VARCHAR,
    interval_s     DOUBLE,
    timezone       VARCHAR,
    parameters     JSON,
    paused         BOOLEAN,
    tags           VARCHAR[],
    definition     JSON,
    created        TIMESTAMPTZ,
    updated        TIMESTAMPTZ
);

CREATE TABLE deployment_fires (
    deployment_id  VARCHAR NOT NULL,
    scheduled_time TIMESTAMPTZ NOT NULL,
    flow_run_id    VARCHAR,
    kind           VARCHAR,
    parameters     JSON,
    claimed_at     TIMESTAMPTZ,
    claimed_by     VARCHAR,
    PRIMARY KEY (deployment_id, scheduled_time)
);

CREATE TABLE deployment_attempts (
    flow_run_id    VARCHAR NOT NULL,
    attempt        INTEGER NOT NULL,
    claimed_at     TIMESTAMPTZ,
    claimed_by     VARCHAR,
    PRIMARY KEY (flow_run_id, attempt)
);

CREATE VIEW deployment_progress AS
SELECT run_id AS flow_run_id,
       CAST(regexp_extract(message, '^Progress (\\d+)/(\\d+)', 1) AS INTEGER) AS cells_done,
       CAST(regexp_extract(message, '^Progress (\\d+)/(\\d+)', 2) AS INTEGER) AS cells_total,
       regexp_extract(message, '^Progress \\d+/\\d+: (.*)$', 1) AS current_cell,
       timestamp
FROM logs
WHERE logger = 'kernelflow.deployments.progress'
QUALIFY row_number() OVER (PARTITION BY run_id ORDER BY timestamp DESC, seq DESC) = 1;
"""

# Webhook outcomes (kernelflow.deployments.notify). Each delivery is journaled
# as one log line of the run, "Webhook to <url> sent|failed: <detail>" (the URL
# with no whitespace), so it travels through the journal and compaction like
# every other event and needs no table of its own; this view gives it columns.
_V4_WEBHOOKS = """
CREATE VIEW webhooks AS
SELECT run_id AS flow_run_id,
       regexp_extract(message, '^Webhook to (\\S+) (sent|failed): (.*)$', 1) AS url,
       regexp_extract(message, '^Webhook to (\\S+) (sent|failed): (.*)$', 2) AS outcome,
       regexp_extract(message, '^Webhook to (\\S+) (sent|failed): (.*)$', 3) AS detail,
       timestamp
FROM logs
WHERE logger = 'kernelflow.deployments.webhook'
  AND regexp_matches(message, '^Webhook to \\S+ (sent|failed): ');
"""

# Prefect's artifacts, variables and events (kernelflow.artifacts, .variables,
# .events). ``artifacts`` and ``events`` are folded from the journals (kinds
# ``artifact``, ``artifact_update`` and ``event``); ``variables`` is written
# directly under the store's lock (kernelflow.store.variables), because a
# variable must be read back at once, from any process. Secrets are not here
# at all: every table can be read with kernelflow.sql (kernelflow.store.secrets).
_V5_ARTIFACTS_VARIABLES_EVENTS = """
CREATE TABLE artifacts (
    id          VARCHAR,
    key         VARCHAR,
    type        VARCHAR,
    description VARCHAR,
    data        VARCHAR,
    flow_run_id VARCHAR,
    task_run_id VARCHAR,
    created     TIMESTAMPTZ,
    updated     TIMESTAMPTZ
);

CREATE TABLE variables (
    name    VARCHAR,
    value   JSON,
    tags    VARCHAR[],
    created TIMESTAMPTZ,
    updated TIMESTAMPTZ
);

CREATE TABLE events (
    id          VARCHAR,
    event       VARCHAR,
    occurred    TIMESTAMPTZ,
    resource_id VARCHAR,
    resource    JSON,
    related     JSON,
    payload     JSON,
    flow_run_id VARCHAR,
    task_run_id VARCHAR
);
"""

#: One SQL script per schema version, oldest first. Append; never edit.
MIGRATIONS: list[str] = [
    _V1,
    _V2_LIMITS,
    _V3_DEPLOYMENTS,
    _V4_WEBHOOKS,
    _V5_ARTIFACTS_VARIABLES_EVENTS,
]

#: The schema version this kernelflow writes and understands.
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    """The schema version of the open database (0 for a new, empty database)."""
    # Each query is an aggregate, so it returns exactly one row.
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() "
        "WHERE table_name = 'schema_version' AND schema_name = 'main'"
    ).fetchall()[0][0]
    if not exists:
        return 0
    return int(con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchall()[0][0])


def check_not_too_new(version: int, database: object) -> None:
    """Raise :class:`SchemaTooNewError` if ``version`` is newer than this kernelflow knows."""
    if version > SCHEMA_VERSION:
        raise SchemaTooNewError(
            f"The store database {database} has schema version {version}, but this kernelflow "
            f"understands up to {SCHEMA_VERSION}; upgrade kernelflow (pip install -U kernelflow)."
        )


def migrate(con: duckdb.DuckDBPyConnection, database: object = "database") -> int:
    """Bring the database to :data:`SCHEMA_VERSION`; return the version found before.

    Each migration runs in its own transaction with its ``schema_version`` row,
    so an interrupted upgrade leaves the previous version intact.

    Raises
    ------
    SchemaTooNewError
        The database was written by a newer kernelflow.
    """
    found = schema_version(con)
    check_not_too_new(found, database)
    for version in range(found + 1, SCHEMA_VERSION + 1):
        con.begin()
        try:
            if version == 1:
                con.execute("CREATE TABLE schema_version (version INTEGER, applied TIMESTAMPTZ)")
            con.execute(MIGRATIONS[version - 1])
            con.execute("INSERT INTO schema_version VALUES (?, now())", [version])
            con.commit()
        except BaseException:
            con.rollback()
            raise
    return found
