"""What a notebook deployment is: a snapshotted notebook, a schedule and how to run it.

A :class:`Deployment` is a plain record. The registry
(:mod:`kernelflow.deployments.registry`) validates it and stores it in the
``deployments`` table (the whole record as JSON in ``definition``, the
often-queried fields as columns); the scheduler reads it back with
:meth:`Deployment.from_definition`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kernelflow.deployments.schedules import CronSchedule, IntervalSchedule, Schedule
from kernelflow.errors import ConfigurationError

__all__ = [
    "API_DEPLOYMENT_OPTIONS",
    "CATCHUP_POLICIES",
    "DEPLOYMENT_OPTIONS",
    "Deployment",
    "check_count",
    "check_name",
]

#: What the scheduler does with slots missed while no scheduler ran.
CATCHUP_POLICIES = ("skip", "latest", "all")
#: Every option of a deployment, as :func:`~kernelflow.deployments.registry.plan` names
#: them (:func:`~kernelflow.deployments.registry.update` may change each).
DEPLOYMENT_OPTIONS = (
    "notebook",
    "cron",
    "interval",
    "timezone",
    "parameters",
    "timeout",
    "cell_timeout",
    "retries",
    "retry_delay",
    "catchup",
    "max_catchup",
    "limit",
    "grace",
    "kernel",
    "tags",
    "paused",
    "after",
    "notify",
    "dask",
)
#: The options the lab's REST API sets (``POST deployments``, ``PATCH deployments/<name>``);
#: the others keep their defaults, or their stored values.
API_DEPLOYMENT_OPTIONS = (
    "notebook",
    "cron",
    "interval",
    "timezone",
    "parameters",
    "timeout",
    "retries",
    "retry_delay",
    "catchup",
    "notify",
    "paused",
)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")

#: The parameter through which an ``--after`` run learns the upstream run's id.
UPSTREAM_PARAMETER = "upstream_run_id"


def check_name(name: str) -> str:
    """Return ``name`` if it can name a deployment (it becomes a directory name)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigurationError(
            f"Deployment name {name!r} is not allowed; use letters, digits, '-', '_' or '.' "
            "(at most 100, starting with a letter or digit)."
        )
    return name


@dataclass
class Deployment:
    """A notebook deployment.

    Attributes
    ----------
    id, name
        Identity; ``name`` is what users type.
    notebook
        The notebook's path when it was deployed (its directory is the run's
        working directory).
    snapshot, content_hash
        The copy that runs (a path relative to the store's home) and the
        SHA-256 of its bytes: later edits of ``notebook`` change nothing until
        it is deployed again.
    cron, interval, timezone, anchor
        The schedule: a cron expression or an interval in seconds (from
        ``anchor``, epoch seconds), in ``timezone``; neither for a deployment
        that only runs on demand or ``after`` another.
    parameters
        Typed values for the notebook's ``parameters`` cell.
    timeout, cell_timeout
        Whole-notebook and per-cell limits in seconds (None: no limit).
    retries, retry_delay
        Further tries after a Failed, TimedOut or Crashed try, each in a fresh kernel.
    catchup, max_catchup
        What to do with slots missed while no scheduler ran (see :data:`CATCHUP_POLICIES`).
    limit
        At most this many runs of this deployment at once (None: no bound).
    grace
        A run that has not started this many seconds after its scheduled time is Late.
    kernel
        The kernelspec name (None: the notebook's own).
    tags, paused, after, notify, dask
        Labels; paused deployments do not fire; ``after`` names a deployment
        whose completed runs trigger this one; webhook URLs told of Failed,
        TimedOut and Crashed runs; a Dask scheduler address to run on.
    problem
        Why a stored deployment cannot run (a definition written by an older
        version, or by hand), or None. Set by :meth:`from_definition`, never
        stored: such a deployment is listed with its problem and never fired,
        and the others keep firing.
    """

    name: str
    notebook: str
    snapshot: str
    content_hash: str
    id: str = ""
    cron: str | None = None
    interval: float | None = None
    timezone: str = "UTC"
    anchor: float | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    cell_timeout: float | None = None
    retries: int = 0
    retry_delay: float = 0.0
    catchup: str = "skip"
    max_catchup: int = 10
    limit: int | None = None
    grace: float = 60.0
    kernel: str | None = None
    tags: list[str] = field(default_factory=list)
    paused: bool = False
    after: str | None = None
    notify: list[str] = field(default_factory=list)
    dask: str | None = None
    created: float = 0.0
    updated: float = 0.0
    problem: str | None = field(default=None, compare=False)

    def schedule(self) -> Schedule | None:
        """The deployment's schedule, or None when it only runs on demand or after another.

        Raises
        ------
        ConfigurationError
            The deployment has a :attr:`problem` (it cannot be scheduled).
        """
        if self.problem is not None:
            raise ConfigurationError(self.problem)
        return self._schedule()

    def _schedule(self) -> Schedule | None:
        if self.cron:
            return CronSchedule(self.cron, self.timezone)
        if self.interval:
            anchor = None
            if self.anchor is not None:
                anchor = dt.datetime.fromtimestamp(self.anchor, dt.timezone.utc)
            return IntervalSchedule(self.interval, anchor, self.timezone)
        return None

    def describe_schedule(self) -> str:
        """One line for listings: the schedule, ``after <name>``, or ``on demand``.

        Never raises: a schedule that cannot be built is described from its fields.
        """
        try:
            schedule = self._schedule()
        except ConfigurationError:
            if self.cron:
                return f"cron {self.cron!r} ({self.timezone}), invalid"
            return f"every {self.interval!r} s, invalid"
        if schedule is not None:
            return schedule.describe()
        if self.after:
            return f"after {self.after}"
        return "on demand"

    def snapshot_path(self, home: Path) -> Path:
        """The absolute path of the snapshot under the store's ``home``."""
        return home / self.snapshot

    def definition(self) -> dict[str, Any]:
        """The whole record as JSON-ready values (without :attr:`problem`, which is derived)."""
        data = asdict(self)
        data.pop("problem")
        return data

    def validate(self) -> None:
        """Check every field the scheduler uses, as :func:`~kernelflow.deployments.deploy` does.

        Raises
        ------
        ConfigurationError
            One line naming the first field that cannot be used.
        """
        from kernelflow._durations import check_seconds

        if self.interval is not None:
            check_seconds(self.interval, "--interval")
        for value, what in ((self.timeout, "--timeout"), (self.cell_timeout, "--cell-timeout")):
            if value is not None:
                check_seconds(value, what)
        check_seconds(self.retry_delay, "--retry-delay", allow_zero=True)
        check_seconds(self.grace, "--grace", allow_zero=True)
        check_count(self.retries, "--retries", 0)
        check_count(self.max_catchup, "--max-catchup", 0)
        if self.limit is not None:
            check_count(self.limit, "--limit", 1)
        if self.catchup not in CATCHUP_POLICIES:
            raise ConfigurationError(
                f"--catchup must be one of {', '.join(CATCHUP_POLICIES)}, got {self.catchup!r}."
            )
        if self.anchor is not None:
            check_seconds(self.anchor, "the interval's anchor (epoch seconds)", allow_zero=True)
        if not isinstance(self.parameters, dict):
            raise ConfigurationError(f"parameters must be a mapping, got {self.parameters!r}.")
        for names, what in ((self.tags, "tags"), (self.notify, "--notify")):
            if not isinstance(names, list) or not all(isinstance(v, str) for v in names):
                raise ConfigurationError(f"{what} must be a list of strings, got {names!r}.")
        self._schedule()

    @classmethod
    def from_definition(cls, data: Any) -> Deployment:
        """The record stored by :meth:`definition` (unknown keys from newer versions ignored).

        Never raises: a definition that cannot be used (written by an older
        version, a bad value already in the store) gives a deployment whose
        :attr:`problem` says why and how to fix it.
        """
        if not isinstance(data, dict):
            data = {}
        known = {f for f in cls.__dataclass_fields__} - {"problem"}
        try:
            deployment = cls(**{k: v for k, v in data.items() if k in known})
            deployment.validate()
        except (ConfigurationError, TypeError, ValueError) as exc:
            name = data.get("name") if isinstance(data.get("name"), str) else "?"
            reason = str(exc) if isinstance(exc, ConfigurationError) else "its definition is "
            if not isinstance(exc, ConfigurationError):
                reason += f"incomplete ({' '.join(str(exc).split())})."
            deployment = cls(
                name=name,
                notebook=str(data.get("notebook") or ""),
                snapshot=str(data.get("snapshot") or ""),
                content_hash=str(data.get("content_hash") or ""),
                id=str(data.get("id") or ""),
                **{
                    k: data[k]
                    for k in ("cron", "interval", "timezone", "paused", "after")
                    if k in data and _plain(data[k])
                },
            )
            deployment.problem = (
                f"Deployment {name!r} cannot run: {reason} Deploy it again with a valid "
                f"value (kernelflow deploy NOTEBOOK --name {name} ... --update), or delete it."
            )
        return deployment


def _plain(value: Any) -> bool:
    """Whether ``value`` is a scalar a listing can show."""
    return value is None or isinstance(value, (str, int, float, bool))


def check_count(value: Any, flag: str, minimum: int) -> int:
    """``value`` as a whole number ``>= minimum`` (booleans refused), for ``flag``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{flag} must be a whole number >= {minimum}, got {value!r}.")
    return value
