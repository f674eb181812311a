"""Cache policies: what makes two task calls "the same".

As in Prefect, policies compose: ``INPUTS + TASK_SOURCE`` keys on both, and
``INPUTS - "conn"`` leaves one argument out. Unlike Prefect's default, keys do
not include the run id unless you ask for ``RUN_ID``, so a cached result is
reused across flow runs and processes; and every key is namespaced by the
task, so two tasks with equal inputs never share an entry.

As in Prefect, caching needs persisted results: it is on when a task sets
``cache_policy``, ``cache_key_fn`` or ``result_storage_key``, or persists its
results (``persist_result=True`` on the task or its flow), which without a
policy means ``DEFAULT``. Otherwise it is off.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from kernelflow.errors import CachePolicyError

if TYPE_CHECKING:
    from kernelflow.context import TaskRunContext

__all__ = [
    "DEFAULT",
    "FLOW_PARAMETERS",
    "INPUTS",
    "NO_CACHE",
    "RUN_ID",
    "TASK_SOURCE",
    "CacheKeyFnPolicy",
    "CachePolicy",
    "CompoundCachePolicy",
    "Inputs",
]


class CachePolicy:
    """Base class: turns a task run context and its inputs into a key part."""

    #: Set on policies that key on the call's arguments (used to record lineage).
    uses_inputs = False

    def key_part(
        self, ctx: TaskRunContext, inputs: dict[str, Any], hashes: dict[str, str]
    ) -> str | None:
        """This policy's contribution to the key; ``None`` disables caching for the call.

        ``hashes`` maps each input name to its value hash; it is filled lazily by
        :class:`Inputs` so that several policies never hash a value twice.
        """
        raise NotImplementedError

    def refuse(self, value: Any) -> str | None:
        """Why a cached ``value`` found under this policy's key must not be used (None: use it).

        For what the key cannot hold: a ``%%task`` cell refuses an entry made
        while a global random generator was in another state.
        """
        return None

    def __add__(self, other: CachePolicy) -> CachePolicy:
        if not isinstance(other, CachePolicy):
            return NotImplemented
        return CompoundCachePolicy([*_flatten(self), *_flatten(other)])

    def __sub__(self, name: str) -> CachePolicy:
        if not isinstance(name, str):
            raise CachePolicyError(
                "Subtract an argument name from a cache policy, e.g. INPUTS - 'x'."
            )
        return CompoundCachePolicy(
            [p - name if isinstance(p, Inputs) else p for p in _flatten(self)]
        )

    def __repr__(self) -> str:
        return type(self).__name__


def _flatten(policy: CachePolicy) -> list[CachePolicy]:
    return list(policy.policies) if isinstance(policy, CompoundCachePolicy) else [policy]


class Inputs(CachePolicy):
    """Keys on the values of the task's arguments, minus ``exclude``."""

    uses_inputs = True

    def __init__(self, exclude: Iterable[str] = ()) -> None:
        self.exclude = tuple(exclude)

    def key_part(
        self, ctx: TaskRunContext, inputs: dict[str, Any], hashes: dict[str, str]
    ) -> str | None:
        from kernelflow.hashing import hash_bytes, hash_value

        parts = []
        for name in sorted(inputs):
            if name in self.exclude:
                continue
            digest = hashes.get(name)
            if digest is None:
                digest = hashes[name] = hash_value(inputs[name], name=name)
            parts.append(f"{name}={digest}")
        return hash_bytes(*parts)

    def __sub__(self, name: str) -> CachePolicy:
        return Inputs((*self.exclude, name))

    def __repr__(self) -> str:
        return f"Inputs(exclude={list(self.exclude)})" if self.exclude else "INPUTS"


class _TaskSource(CachePolicy):
    """Keys on the source code of the task's function (``TASK_SOURCE``)."""

    def key_part(
        self, ctx: TaskRunContext, inputs: dict[str, Any], hashes: dict[str, str]
    ) -> str | None:
        from kernelflow.hashing import source_hash

        return source_hash(ctx.task.fn)

    def __repr__(self) -> str:
        return "TASK_SOURCE"


class _FlowParameters(CachePolicy):
    """Keys on the parameters of the enclosing flow run (``FLOW_PARAMETERS``)."""

    def key_part(
        self, ctx: TaskRunContext, inputs: dict[str, Any], hashes: dict[str, str]
    ) -> str | None:
        from kernelflow.context import current_flow_context
        from kernelflow.hashing import hash_value

        flow_ctx = current_flow_context()
        return hash_value(flow_ctx.flow_run.parameters if flow_ctx else {}, name="flow parameters")

    def __repr__(self) -> str:
        return "FLOW_PARAMETERS"


class _RunId(CachePolicy):
    """Keys on the flow run id, so results are reused only within one run (``RUN_ID``)."""

    def key_part(
        self, ctx: TaskRunContext, inputs: dict[str, Any], hashes: dict[str, str]
    ) -> str | None:
        return ctx.task_run.flow_run_id or ctx.task_run.id

    def __repr__(self) -> str:
        return "RUN_ID"


class _NoCache(CachePolicy):
    """Never caches (``NO_CACHE``)."""

    def key_part(
        self, ctx: TaskRunContext, inputs: dict[str, Any], hashes: dict[str, str]
    ) -> str | None:
        return None

    def __repr__(self) -> str:
        return "NO_CACHE"


class CompoundCachePolicy(CachePolicy):
    """Several policies whose key parts are combined."""

    def __init__(self, policies: list[CachePolicy]) -> None:
        self.policies = policies
        self.uses_inputs = any(p.uses_inputs for p in policies)

    def key_part(
        self, ctx: TaskRunContext, inputs: dict[str, Any], hashes: dict[str, str]
    ) -> str | None:
        from kernelflow.hashing import hash_bytes

        parts = []
        for policy in self.policies:
            part = policy.key_part(ctx, inputs, hashes)
            if part is None:
                return None
            parts.append(part)
        return hash_bytes(*parts)

    def __repr__(self) -> str:
        return " + ".join(map(repr, self.policies))


class CacheKeyFnPolicy(CachePolicy):
    """Wraps a Prefect-style ``cache_key_fn(context, arguments) -> str | None``.

    Built as in Prefect, ``CacheKeyFnPolicy(cache_key_fn=fn)`` (or positionally),
    and composed like any policy.

    Example
    -------
    >>> policy = CacheKeyFnPolicy(cache_key_fn=lambda ctx, args: f"day-{args['day']}")
    >>> @task(cache_policy=policy + TASK_SOURCE)  # doctest: +SKIP
    ... def load(day): ...
    """

    uses_inputs = True

    def __init__(self, cache_key_fn: Callable[[Any, dict[str, Any]], str | None]) -> None:
        if not callable(cache_key_fn):
            raise CachePolicyError(
                f"CacheKeyFnPolicy needs a callable cache_key_fn(context, arguments), got "
                f"{cache_key_fn!r}."
            )
        self.cache_key_fn = cache_key_fn

    @property
    def fn(self) -> Callable[[Any, dict[str, Any]], str | None]:
        """The key function (kernelflow's former attribute name for ``cache_key_fn``)."""
        return self.cache_key_fn

    def key_part(
        self, ctx: TaskRunContext, inputs: dict[str, Any], hashes: dict[str, str]
    ) -> str | None:
        key = self.fn(ctx, inputs)
        if key is not None and not isinstance(key, str):
            raise CachePolicyError(
                f"cache_key_fn {getattr(self.fn, '__name__', self.fn)!r} returned "
                f"{type(key).__name__}; it must return a string or None."
            )
        return key

    def __repr__(self) -> str:
        return f"CacheKeyFnPolicy({getattr(self.fn, '__name__', self.fn)})"


INPUTS: CachePolicy = Inputs()
TASK_SOURCE: CachePolicy = _TaskSource()
FLOW_PARAMETERS: CachePolicy = _FlowParameters()
RUN_ID: CachePolicy = _RunId()
NO_CACHE: CachePolicy = _NoCache()
#: Prefect's default policy: reuse only within one flow run.
DEFAULT: CachePolicy = CompoundCachePolicy([INPUTS, TASK_SOURCE, RUN_ID])


def compute_cache_key(
    policy: CachePolicy, ctx: TaskRunContext, hashes: dict[str, str]
) -> str | None:
    """The full cache key of a call: the task's identity plus the policy's part."""
    from kernelflow.hashing import hash_bytes

    part = policy.key_part(ctx, ctx.parameters, hashes)
    if part is None:
        return None
    return hash_bytes(ctx.task.task_key, part)
