"""Variables: named, mutable JSON values shared by runs and processes (``prefect.variables``).

>>> from kernelflow.variables import Variable
>>> Variable.set("batch_size", 500)                                  # doctest: +SKIP
Variable(name='batch_size', value=500, tags=[])
>>> Variable.get("batch_size")                                       # doctest: +SKIP
500
>>> Variable.set("batch_size", 1000, overwrite=True).value           # doctest: +SKIP
1000
>>> Variable.get("missing", default="fallback")                      # doctest: +SKIP
'fallback'

A variable is stored in the store's database as soon as it is set, so the
next :meth:`Variable.get`, in this process or any other on the same store,
sees it (kernelflow reads them from there: ``kernelflow.sql("SELECT * FROM
variables")``). Each call opens the database for a few milliseconds, so
read a variable once, not in a tight loop. For values that must stay
secret, use :class:`kernelflow.blocks.system.Secret`, which is never in the
database.

Names hold lowercase letters, digits, dashes and underscores (at most 255
characters); values are JSON: str, int, float, bool, None, lists and dicts
(at most 5000 characters as JSON), as in Prefect.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any, Generic, TypeVar

from kernelflow.errors import ConfigurationError

__all__ = ["Variable"]

#: As Prefect: the longest variable name, and the longest value as JSON.
MAX_VARIABLE_NAME_LENGTH = 255
MAX_VARIABLE_VALUE_LENGTH = 5000

_NAME = re.compile(r"[a-z0-9_-]+")

T = TypeVar("T")


class Variable(Generic[T]):
    """A named JSON value in the store: :meth:`get`, :meth:`set`, :meth:`unset`.

    ``Variable[str].get(name)`` reads the same as ``Variable.get(name)``; the
    type parameter is for type checkers only.

    Parameters
    ----------
    name
        The variable's name.
    value
        Its value.
    tags
        Labels for it.

    Examples
    --------
    >>> from kernelflow import flow
    >>> @flow
    ... def load():
    ...     limit = Variable.get("row_limit", default=100)
    ...     Variable.set("last_limit", limit, overwrite=True)
    """

    __slots__ = ("name", "tags", "value")

    def __init__(self, name: str, value: T, tags: list[str] | None = None) -> None:
        self.name = name
        self.value = value
        self.tags = list(tags or [])

    def __repr__(self) -> str:
        return f"Variable(name={self.name!r}, value={self.value!r}, tags={self.tags!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Variable):
            return NotImplemented
        return (self.name, self.value, self.tags) == (other.name, other.value, other.tags)

    __hash__ = None  # type: ignore[assignment]  # mutable, like Prefect's model

    @classmethod
    def set(
        cls,
        name: str,
        value: Any,
        tags: list[str] | None = None,
        overwrite: bool = False,
    ) -> Variable:
        """Store ``value`` as variable ``name``; return the variable as stored.

        Parameters
        ----------
        name
            Lowercase letters, digits, dashes and underscores, at most 255 characters.
        value
            A JSON value: str, int, float, bool, None, list or dict (at most
            5000 characters as JSON).
        tags
            Labels (replacing those it had).
        overwrite
            Replace a variable of that name; without it, an existing name is an error.

        Returns
        -------
        Variable
            With the value as it reads back (tuples become lists).

        Raises
        ------
        ValueError
            (:class:`~kernelflow.errors.ConfigurationError`) The variable exists
            and ``overwrite`` is false, or the name or value is not allowed.
        StoreError
            The store's database cannot be written.
        """
        _check_name(name)
        value_json = _value_json(value)
        tag_list = _check_tags(tags)
        from kernelflow.store.variables import write_variable

        stored = write_variable(name, value_json, tag_list, overwrite)
        if stored is None:
            raise ConfigurationError(
                f"Variable {name!r} already exists. Use `overwrite=True` to update it."
            )
        return cls(stored.name, stored.value, stored.tags)

    @classmethod
    def get(cls, name: str, default: Any = None) -> Any:
        """The value of variable ``name``, or ``default`` if there is none.

        Parameters
        ----------
        name
            The variable's name.
        default
            Returned when no variable has that name.

        Raises
        ------
        StoreError
            The store's database cannot be read.
        """
        if not isinstance(name, str):
            raise ConfigurationError(f"A variable name is a str, not {type(name).__name__}.")
        from kernelflow.store.variables import read_variable

        stored = read_variable(name)
        return stored.value if stored is not None else default

    @classmethod
    def unset(cls, name: str) -> bool:
        """Delete variable ``name``.

        Returns
        -------
        bool
            True if it existed, False if there was none.
        """
        if not isinstance(name, str):
            raise ConfigurationError(f"A variable name is a str, not {type(name).__name__}.")
        from kernelflow.store.variables import delete_variable

        return delete_variable(name)

    @classmethod
    async def aset(
        cls,
        name: str,
        value: Any,
        tags: list[str] | None = None,
        overwrite: bool = False,
    ) -> Variable:
        """:meth:`set`, to ``await`` (the database work runs in a worker thread)."""
        return await asyncio.to_thread(cls.set, name, value, tags, overwrite)

    @classmethod
    async def aget(cls, name: str, default: Any = None) -> Any:
        """:meth:`get`, to ``await`` (the database work runs in a worker thread)."""
        return await asyncio.to_thread(cls.get, name, default)

    @classmethod
    async def aunset(cls, name: str) -> bool:
        """:meth:`unset`, to ``await`` (the database work runs in a worker thread)."""
        return await asyncio.to_thread(cls.unset, name)


def _check_name(name: Any) -> None:
    if not isinstance(name, str):
        raise ConfigurationError(f"A variable name is a str, not {type(name).__name__}.")
    if not _NAME.fullmatch(name):
        raise ConfigurationError(
            f"Variable name {name!r} must only contain lowercase letters, numbers, and dashes "
            "or underscores (e.g. 'batch_size')."
        )
    if len(name) > MAX_VARIABLE_NAME_LENGTH:
        raise ConfigurationError(
            f"Variable name {name[:20]!r}... has {len(name)} characters; at most "
            f"{MAX_VARIABLE_NAME_LENGTH} are allowed."
        )


def _value_json(value: Any) -> str:
    try:
        text = json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"Variable value must be serializable to JSON ({exc}); store str, int, float, "
            "bool, None, lists and dicts."
        ) from None
    if value is not None and len(text) > MAX_VARIABLE_VALUE_LENGTH:
        raise ConfigurationError(
            f"Variable value must be less than {MAX_VARIABLE_VALUE_LENGTH} characters as JSON "
            f"(it has {len(text)}); keep large data in a file or a task result."
        )
    return text


def _check_tags(tags: Any) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str) or not all(isinstance(tag, str) for tag in tags):
        raise ConfigurationError(f"Variable tags are a list of str, not {tags!r}.")
    return list(tags)
