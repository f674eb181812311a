"""Acquiring slots of one or more limits: validation, waiting, timeouts, release.

An acquisition is all-or-nothing across its names: it tries every limit
without waiting; if one is full, it gives back what it took, waits, and tries
again. No process ever waits while holding part of what it asked for, so
acquisitions cannot deadlock each other.

Waiting is polling: a concurrency limit is retried after a short, growing,
jittered pause (0.5 ms up to 20 ms); a rate limit after exactly the time its
counter says the slots need to decay. The sync and async front ends
(:mod:`kernelflow.concurrency.sync`, :mod:`kernelflow.concurrency.asyncio`)
share everything here but the pause.

A name with no limit behind it is skipped, as in Prefect: the other names are
acquired, and when none of them exists the acquisition holds nothing and logs
Prefect's warning (``Concurrency limits ['db'] do not exist - skipping
acquisition.``). ``strict=True`` raises
:class:`~kernelflow.errors.ConcurrencySlotAcquisitionError` instead.
"""

from __future__ import annotations

import contextvars
import logging
import random
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from kernelflow.concurrency import _rate, _slots
from kernelflow.concurrency._limits import LimitDefinition, check_name, limit_dir, read_definition
from kernelflow.errors import (
    AcquireConcurrencySlotTimeoutError,
    ConcurrencySlotAcquisitionError,
    ConfigurationError,
    LimitNotFoundError,
)

__all__ = ["Acquisition", "Holding", "plan"]

_FIRST_PAUSE = 0.0005
_MAX_PAUSE = 0.02
#: A rate-limit waiter re-reads the definition at least this often (it may change).
_MAX_RATE_PAUSE = 0.5

#: Slots held by the running thread or asyncio task, per limit name: an
#: acquisition that could only succeed once its own holder lets go is refused.
_held: contextvars.ContextVar[tuple[object, dict[str, int]] | None] = contextvars.ContextVar(
    "kernelflow_held_slots", default=None
)


@dataclass
class _Part:
    definition: LimitDefinition
    directory: str
    fds: list[int] = field(default_factory=list)
    taken_at: float = 0.0


class Holding:
    """Slots held across one or more limits; :meth:`release` frees them (once)."""

    __slots__ = ("_owner", "_parts", "_released", "_token", "occupy")

    def __init__(self, parts: list[_Part], occupy: int, owner: object | None) -> None:
        self._parts = parts
        self.occupy = occupy
        self._owner = owner
        self._released = False
        self._token: contextvars.Token | None = None
        held = [p.definition.name for p in parts if not p.definition.decays]
        if held and owner is not None:
            current = _held.get()
            counts = dict(current[1]) if current is not None and current[0] == owner else {}
            for name in held:
                counts[name] = counts.get(name, 0) + occupy
            self._token = _held.set((owner, counts))

    def release(self) -> None:
        """Free every slot this holding has (a second call does nothing)."""
        if self._released:
            return
        self._released = True
        now = time.time()
        for part in self._parts:
            if part.fds:
                _slots.release_slots(part.fds)
            elif part.definition.decays and part.taken_at:
                d = part.definition
                try:
                    _rate.give_back(
                        part.directory,
                        d.limit,
                        d.slot_decay_per_second,
                        self.occupy,
                        now - part.taken_at,
                    )
                except FileNotFoundError:
                    pass  # the limit was deleted meanwhile: nothing left to give back to
        if self._token is not None:
            try:
                _held.reset(self._token)
            except ValueError:
                pass  # released from another context (e.g. another thread): nothing to undo
            self._token = None

    def keep(self) -> None:
        """Leave rate-limit slots occupied to decay on their own (``rate_limit``)."""
        for part in self._parts:
            part.taken_at = 0.0
        self.release()

    def __del__(self) -> None:
        # A holder that was never released (an interrupted engine) must not
        # keep slots for the rest of the process's life.
        if not self._released:
            for part in self._parts:
                if part.fds:
                    _slots.release_slots(part.fds)


@dataclass
class Acquisition:
    """One request for slots, validated; :meth:`attempt` tries it once without waiting."""

    names: list[str]
    occupy: int
    timeout_seconds: float | None
    max_retries: int | None
    rate_limit: bool
    owner: object
    deadline: float | None = None
    strict: bool = False
    #: The names as the caller gave them, for Prefect's warning.
    given: list[str] | None = None
    retries: int = 0
    pause: float = _FIRST_PAUSE

    def attempt(self) -> Holding | float:
        """A :class:`Holding`, or the seconds to wait before the next attempt."""
        definitions = self._definitions()
        if not definitions:
            return Holding([], self.occupy, None)
        # Waiting on oneself only hangs when nothing bounds the wait.
        forever = self.deadline is None and self.max_retries is None
        for definition in definitions:
            _check_fits(definition, self.occupy, self.rate_limit, self.owner if forever else None)
        parts: list[_Part] = []
        wait = 0.0
        for definition in definitions:
            if not definition.active:
                continue
            name = definition.name
            part = _Part(definition, limit_dir(name))
            try:
                if definition.decays:
                    wait = _rate.try_take(
                        part.directory,
                        definition.limit,
                        definition.slot_decay_per_second,
                        self.occupy,
                    )
                    part.taken_at = time.time()
                    ok = wait == 0.0
                else:
                    fds = _slots.try_acquire_slots(part.directory, definition.limit, self.occupy)
                    part.fds = fds or []
                    ok = fds is not None
            except FileNotFoundError:
                # Deleted between reading its definition and taking a slot: give back
                # what this attempt took and try again, without it (or raise, if strict).
                Holding(parts, self.occupy, None).release()
                if self.strict:
                    raise _must_be_created([name]) from None
                return 0.0
            if not ok:
                # All or nothing: give back what this attempt took so far.
                Holding(parts, self.occupy, None).release()
                if not definition.decays:
                    wait = self.pause * random.uniform(0.5, 1.5)
                    self.pause = min(self.pause * 2, _MAX_PAUSE)
                return min(wait, _MAX_RATE_PAUSE)
            parts.append(part)
        return Holding(parts, self.occupy, self.owner)

    def _definitions(self) -> list[LimitDefinition]:
        """The definitions of the names that have a limit; missing ones as Prefect treats them."""
        definitions = []
        missing = []
        for name in self.names:
            try:
                definitions.append(read_definition(name))
            except LimitNotFoundError:
                missing.append(name)
        if missing and self.strict:
            raise _must_be_created(missing)
        if missing and not definitions:
            _missing_logger().warning(
                "Concurrency limits %r do not exist - skipping acquisition.",
                self.given or self.names,
            )
        return definitions

    def next_pause(self, wait: float) -> float:
        """How long to sleep before the next attempt; raises when the wait is over."""
        self.retries += 1
        if self.max_retries is not None and self.retries > self.max_retries:
            raise self._timeout(f"after {self.max_retries} retries")
        if self.deadline is None:
            return wait
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise self._timeout(f"within {self.timeout_seconds:g} s")
        return min(wait, remaining)

    def _timeout(self, when: str) -> AcquireConcurrencySlotTimeoutError:
        which = ", ".join(repr(n) for n in self.names)
        kind = "rate limit" if self.rate_limit else "concurrency limit"
        return AcquireConcurrencySlotTimeoutError(
            f"No {self.occupy} free slot(s) of {kind} {which} {when}; raise the limit or "
            f"timeout_seconds, or see who holds them with 'kernelflow concurrency-limit "
            f"inspect {self.names[0]}'."
        )


def _check_fits(definition: LimitDefinition, occupy: int, rate_limit: bool, owner: object) -> None:
    name = definition.name
    if rate_limit and not definition.decays:
        raise ConfigurationError(
            f"rate_limit({name!r}) needs a limit whose slots decay; give it a rate with "
            f"'kernelflow gcl update {name} --slot-decay-per-second R', or use "
            "'with concurrency(...)' instead."
        )
    if occupy > definition.limit:
        raise ConfigurationError(
            f"occupy={occupy} is more than limit {name!r} has ({definition.limit}), so it would "
            f"wait forever; occupy fewer slots or raise the limit with 'kernelflow gcl update "
            f"{name} --limit {occupy}'."
        )
    if definition.decays or not definition.active:
        return
    current = _held.get()
    if owner is not None and current is not None and current[0] == owner:
        mine = current[1].get(name, 0)
        if mine and mine + occupy > definition.limit:
            raise ConfigurationError(
                f"This code already holds {mine} of the {definition.limit} slot(s) of limit "
                f"{name!r} (e.g. through a task tag of that name) and asks for {occupy} more: it "
                "would wait forever for itself; use a different limit name or raise the limit."
            )


def _missing_logger() -> logging.Logger | logging.LoggerAdapter:
    """The current run's logger (as Prefect logs it), else ``kernelflow.concurrency``."""
    from kernelflow.errors import MissingContextError
    from kernelflow.logs import get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:  # outside any run
        return logging.getLogger("kernelflow.concurrency")


def plan(
    names: str | Iterable[str],
    occupy: int,
    timeout_seconds: float | None,
    max_retries: int | None,
    rate_limit: bool,
    owner: object,
    strict: bool = False,
) -> Acquisition:
    """Validate a request for slots; raise :class:`ConfigurationError` for bad arguments.

    ``strict``: a name without a limit raises
    :class:`~kernelflow.errors.ConcurrencySlotAcquisitionError` instead of being skipped.
    """
    if isinstance(names, str):
        given = [names]
        name_list = [check_name(names)]
    else:
        try:
            given = list(names)
            name_list = sorted({check_name(n) for n in given})
        except TypeError:
            raise ConfigurationError(
                f"names must be a limit name or a list of names, got {names!r}."
            ) from None
        if not name_list:
            raise ConfigurationError("names is empty; give at least one concurrency limit name.")
    if isinstance(occupy, bool) or not isinstance(occupy, int) or occupy < 1:
        raise ConfigurationError(f"occupy must be a whole number >= 1, got {occupy!r}.")
    deadline = None
    if timeout_seconds is not None:
        if (
            isinstance(timeout_seconds, bool)
            or not isinstance(timeout_seconds, (int, float))
            or (not timeout_seconds >= 0)
        ):
            raise ConfigurationError(
                "timeout_seconds must be a number of seconds >= 0 or None, got "
                f"{timeout_seconds!r}."
            )
        deadline = time.monotonic() + timeout_seconds
    if max_retries is not None and (
        isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0
    ):
        raise ConfigurationError(f"max_retries must be a whole number >= 0, got {max_retries!r}.")
    return Acquisition(
        name_list,
        occupy,
        timeout_seconds,
        max_retries,
        rate_limit,
        owner,
        deadline,
        strict=strict,
        given=given,
    )


def thread_owner() -> object:
    """The holder identity of sync code: the calling thread."""
    return ("thread", threading.get_ident())


def _must_be_created(names: list[str]) -> ConcurrencySlotAcquisitionError:
    """Prefect's error, word for word, for limits ``strict=True`` found missing."""
    return ConcurrencySlotAcquisitionError(
        f"Concurrency limits {names!r} must be created before acquiring slots"
    )
