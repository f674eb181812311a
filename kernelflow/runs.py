"""Flow run and task run records, as state hooks and run contexts see them.

These are plain in-memory objects owned by the engine; the store keeps their
history. Ids are UUIDv7 strings, so sorting by id sorts by creation time.
"""

from __future__ import annotations

import os
import random
import threading
import time
from typing import Any

from kernelflow.states import State

__all__ = ["FlowRun", "TaskRun", "new_id", "random_run_name"]


_id_lock = threading.Lock()
_last_ms = 0
_seq = 0
# The random bits of ids: a generator of our own, seeded from the OS (one os.urandom call
# per id was a system call per run), reseeded in a forked child so that parent and child
# never make the same ids; user code seeding the random module cannot touch it.
_rng = random.Random()
os.register_at_fork(after_in_child=_rng.seed)
#: The UUID's version (7) and variant (0b10) bits, and the mask of its 62 random bits.
_VERSION_AND_VARIANT = (0x7 << 76) | (0b10 << 62)
_LOW62 = (1 << 62) - 1


def new_id() -> str:
    """A time-ordered UUIDv7 string; ids made by one process sort in creation order.

    Within one millisecond the 12-bit ``rand_a`` field counts up (RFC 9562,
    method 1), so two runs created in the same millisecond still sort right.
    """
    global _last_ms, _seq
    rand = _rng.getrandbits(64)
    with _id_lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms, _seq = ms, rand >> 54  # a random start, leaving room to count
        else:
            ms = _last_ms  # the clock went back or stood still: keep counting
            _seq += 1
            if _seq > 0xFFF:  # counter full: borrow the next millisecond
                _last_ms = ms = ms + 1
                _seq = 0
        seq = _seq
    value = (ms << 80) | _VERSION_AND_VARIANT | (seq << 64) | (rand & _LOW62)
    h = value.to_bytes(16, "big").hex()  # faster than format(value, "032x")
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_ADJECTIVES = (
    "amber azure bold brave bright calm clever cosmic crimson daring eager fancy fiery "
    "gentle golden happy hidden humble icy jolly keen lively lucky mellow misty nimble "
    "noble olive proud quick quiet rapid rustic sage silver smart snowy solar spry "
    "steady sunny swift tidy vivid warm wild witty zesty"
).split()
_ANIMALS = (
    "badger bat bear beaver bison cobra condor crane crow deer dingo eagle falcon "
    "ferret finch fox gecko gibbon hawk heron ibis jackal jaguar koala lemur lion "
    "lynx marten mole moose newt okapi orca otter owl panda puma quail raven robin "
    "seal shark sloth swan tapir tiger toad viper walrus wolf yak zebra"
).split()


def random_run_name() -> str:
    """A memorable run name such as ``nimble-falcon``, as Prefect gives."""
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_ANIMALS)}"


class FlowRun:
    """One execution of a flow.

    Attributes
    ----------
    id, name, flow_name:
        Identity of the run.
    parameters:
        The bound call arguments.
    parent_flow_run_id, parent_task_run_id:
        Set for subflows and for task-spawned flows.
    state:
        The current :class:`~kernelflow.states.State`.
    run_count:
        How many times the flow body has started (retries add one each).
    """

    __slots__ = (
        "__weakref__",
        "_lock",
        "_task_counts",
        "deployment_id",
        "end_time",
        "flow_name",
        "id",
        "name",
        "parameters",
        "parent_flow_run_id",
        "parent_task_run_id",
        "run_count",
        "start_time",
        "state",
        "tags",
    )

    def __init__(
        self,
        flow_name: str,
        name: str,
        parameters: dict[str, Any],
        tags: list[str],
        parent_flow_run_id: str | None = None,
        parent_task_run_id: str | None = None,
        deployment_id: str | None = None,
    ) -> None:
        self.id = new_id()
        self.flow_name = flow_name
        self.name = name
        self.parameters = parameters
        self.tags = tags
        self.parent_flow_run_id = parent_flow_run_id
        self.parent_task_run_id = parent_task_run_id
        self.deployment_id = deployment_id
        self.state: State | None = None
        self.run_count = 0
        self.start_time: float | None = None
        self.end_time: float | None = None
        self._task_counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def next_task_index(self, task_name: str) -> int:
        """A per-task counter used to name task runs ``name-0``, ``name-1``..."""
        with self._lock:
            n = self._task_counts.get(task_name, 0)
            self._task_counts[task_name] = n + 1
        return n

    def __repr__(self) -> str:
        return f"FlowRun(name={self.name!r}, flow_name={self.flow_name!r}, id={self.id!r})"


class TaskRun:
    """One execution of a task (all its tries).

    Attributes
    ----------
    id, name, task_name, flow_run_id:
        Identity of the run and the flow run it belongs to (None outside flows).
    state:
        The current :class:`~kernelflow.states.State`.
    run_count:
        Tries started so far.
    cache_key:
        The cache key, when caching is on.
    returned_state:
        True when the last try's function returned a State (which became the
        run's state, and which calling the task returns, as in Prefect).
    """

    __slots__ = (
        "cache_key",
        "end_time",
        "flow_run_id",
        "id",
        "name",
        "returned_state",
        "run_count",
        "start_time",
        "state",
        "tags",
        "task_name",
    )

    def __init__(self, task_name: str, name: str, flow_run_id: str | None, tags: list[str]) -> None:
        self.id = new_id()
        self.task_name = task_name
        self.name = name
        self.flow_run_id = flow_run_id
        self.tags = tags
        self.state: State | None = None
        self.run_count = 0
        self.start_time: float | None = None
        self.end_time: float | None = None
        self.cache_key: str | None = None
        self.returned_state = False

    def __repr__(self) -> str:
        return f"TaskRun(name={self.name!r}, id={self.id!r})"
