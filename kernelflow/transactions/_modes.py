"""The modes, states and records of a transaction: what a caller chooses and reads back."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, NamedTuple

from kernelflow.errors import ConfigurationError

if TYPE_CHECKING:
    from kernelflow.results import ResultRecord
    from kernelflow.store.cache_index import CacheEntry

__all__ = [
    "DONE",
    "CommitMode",
    "IsolationLevel",
    "StagedEntry",
    "TransactionRecord",
    "TransactionState",
    "member",
]


class IsolationLevel(str, enum.Enum):
    """How transactions with the same key see each other.

    ``READ_COMMITTED`` (the default): a transaction sees records committed
    before it began; two at once may both do the work. ``SERIALIZABLE``: a
    transaction with a key holds a lock on it until it commits or rolls back,
    so a second one waits and then sees the first one's record.
    """

    READ_COMMITTED = "READ_COMMITTED"
    SERIALIZABLE = "SERIALIZABLE"


class CommitMode(str, enum.Enum):
    """When a transaction commits.

    ``LAZY`` (the default): when the outermost transaction ends without an
    error. ``EAGER``: as soon as the transaction itself ends, even inside
    another. ``OFF``: never on its own; it rolls back at the end unless
    :meth:`Transaction.commit` was called.
    """

    EAGER = "EAGER"
    LAZY = "LAZY"
    OFF = "OFF"


class TransactionState(str, enum.Enum):
    """Where a transaction is in its life: PENDING → ACTIVE → STAGED → COMMITTED | ROLLED_BACK."""

    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    STAGED = "STAGED"
    COMMITTED = "COMMITTED"
    ROLLED_BACK = "ROLLED_BACK"


DONE = (TransactionState.COMMITTED, TransactionState.ROLLED_BACK)


class TransactionRecord(NamedTuple):
    """A committed record, as :meth:`Transaction.read` returns it.

    Attributes
    ----------
    result
        The committed value (Prefect's ``ResultRecord.result``).
    entry
        Its :class:`~kernelflow.store.cache_index.CacheEntry` (when, by which run, expiry).
    """

    result: Any
    entry: CacheEntry


class StagedEntry(NamedTuple):
    """A task's cache entry waiting for its transaction to commit (written by the engine)."""

    key: str
    result: ResultRecord
    task_name: str
    expires: float | None
    task_run_id: str
    duration: float

    def write(self) -> None:
        """Point the key at the persisted result."""
        from kernelflow.store import cache_index

        cache_index.point(
            self.key,
            self.result,
            task_name=self.task_name,
            expires=self.expires,
            task_run_id=self.task_run_id,
            duration=self.duration,
        )


def member(kind: type[enum.Enum], value: Any, option: str) -> Any:
    """``value`` as a member of ``kind`` (None stays None); a one-line error names the choices."""
    if value is None or isinstance(value, kind):
        return value
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(member.value for member in kind)
        raise ConfigurationError(
            f"{option}={value!r} is not a {kind.__name__}; use one of {choices}."
        ) from None
