"""``Secret``: a value saved under a name and never shown, as Prefect's ``prefect.blocks.system``.

>>> from kernelflow.blocks.system import Secret
>>> Secret(value="sk-1234").save("openai-key")        # doctest: +SKIP
UUID('0193...')
>>> secret = Secret.load("openai-key")                # doctest: +SKIP
>>> secret                                            # doctest: +SKIP
Secret(value='**********')
>>> secret.get()                                      # doctest: +SKIP
'sk-1234'

Where it is kept: one file per secret in ``<KERNELFLOW_HOME>/secrets/``, mode
0600 in the store's private home (see :mod:`kernelflow.store.secrets`). A
secret is never in the database, so no ``kernelflow.sql`` query, ``kernelflow
sql``, ``runs show`` or REST call can read it, and never in a journal or a log
line: kernelflow does not write it anywhere else. Its ``repr`` and ``str``
are masked, so a secret passed to a task shows as ``'**********'`` in the
run's parameters and logs. What your own code does with ``get()`` is up to it.

Names hold lowercase letters, digits and dashes, as Prefect's block names.
Values are strings or any JSON value (a dict of credentials, say); as in
Prefect, :meth:`Secret.get` parses a string that is JSON (``'{"a": 1}'``
comes back as a dict, ``"123"`` as an int).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any, Generic, TypeVar

from kernelflow.errors import ConfigurationError

__all__ = ["Secret", "SecretValue"]

T = TypeVar("T")

_MASK = "**********"
_NAME = re.compile(r"[a-z0-9-]+")
#: Prefect's block type slug, accepted as a prefix: ``Secret.load("secret/openai-key")``.
_SLUG = "secret/"


class SecretValue(Generic[T]):
    """A value that does not show itself: ``repr`` and ``str`` give ``'**********'``.

    Like pydantic's ``SecretStr``, which Prefect's ``Secret.value`` is.

    Parameters
    ----------
    value
        What to hide.

    Examples
    --------
    >>> hidden = SecretValue("hunter2")
    >>> hidden, str(hidden)
    (SecretValue('**********'), '**********')
    >>> hidden.get_secret_value()
    'hunter2'
    """

    __slots__ = ("_secret_value",)

    def __init__(self, value: T) -> None:
        self._secret_value = value

    def get_secret_value(self) -> T:
        """The hidden value itself."""
        return self._secret_value

    def __repr__(self) -> str:
        return f"SecretValue({_MASK!r})"

    def __str__(self) -> str:
        return _MASK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretValue):
            return NotImplemented
        return self._secret_value == other._secret_value

    def __hash__(self) -> int:
        return hash(json.dumps(self._secret_value, sort_keys=True, default=repr))


class Secret(Generic[T]):
    """A value saved under a name in the store, shown nowhere.

    Parameters
    ----------
    value
        A string, or any JSON value (e.g. a dict of credentials).

    Attributes
    ----------
    value
        A :class:`SecretValue`; ``value.get_secret_value()`` is the raw value.

    Examples
    --------
    >>> Secret(value={"user": "etl", "password": "s3cr3t"})
    Secret(value='**********')
    >>> Secret(value="sk-1234").save("api-key", overwrite=True)  # doctest: +SKIP
    UUID('0193...')
    >>> Secret.load("api-key").get()  # doctest: +SKIP
    'sk-1234'
    """

    __slots__ = ("_block_document_id", "_block_document_name", "value")

    def __init__(self, value: T | SecretValue[T]) -> None:
        if not isinstance(value, SecretValue):
            value = SecretValue(value)
        self.value: SecretValue[T] = value
        self._block_document_id: uuid.UUID | None = None
        self._block_document_name: str | None = None

    def __repr__(self) -> str:
        return f"Secret(value={_MASK!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return self.value == other.value

    __hash__ = None  # type: ignore[assignment]  # mutable: save() names it

    def get(self) -> Any:
        """The secret's value; a string that is JSON comes back parsed, as in Prefect."""
        value = self.value.get_secret_value()
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    def save(self, name: str | None = None, overwrite: bool = False) -> uuid.UUID:
        """Save the value under ``name`` in the store; return the secret's id.

        Parameters
        ----------
        name
            Lowercase letters, digits and dashes. Default: the name it was
            loaded or saved under.
        overwrite
            Replace a secret of that name (it keeps its id); without it, an
            existing name is an error.

        Returns
        -------
        uuid.UUID

        Raises
        ------
        ValueError
            (:class:`~kernelflow.errors.ConfigurationError`) No name, a name
            with other characters, a value that is not JSON, or the name is
            taken and ``overwrite`` is false.
        StoreError
            The store cannot be written.
        """
        if name is None:
            name = self._block_document_name
            if name is None:
                raise ConfigurationError(
                    "You're attempting to save a secret without a name; call "
                    "save('a-name') (lowercase letters, numbers and dashes)."
                )
        name = _check_name(name)
        value = self.value.get_secret_value()
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            # The message names the type only: the value itself must not appear anywhere.
            raise ConfigurationError(
                f"A Secret's value must be a string or a JSON value, not a {type(value).__name__}."
            ) from None
        from kernelflow.runs import new_id
        from kernelflow.store.secrets import save_secret

        saved = save_secret(name, value, new_id(), overwrite)
        if saved is None:
            raise ConfigurationError(
                f"A secret named {name!r} already exists. If you would like to overwrite "
                "the value that is saved, then save with `overwrite=True`."
            )
        self._block_document_name = name
        self._block_document_id = uuid.UUID(saved["id"])
        return self._block_document_id

    @classmethod
    def load(cls, name: str, validate: bool = True) -> Secret:
        """The secret saved as ``name``.

        Parameters
        ----------
        name
            Its name (``"secret/<name>"``, Prefect's slug form, works too).
        validate
            Accepted for Prefect compatibility; a secret is always loaded whole.

        Raises
        ------
        ValueError
            (:class:`~kernelflow.errors.ConfigurationError`) No secret has that name.
        """
        name = _check_name(name)
        from kernelflow.store.secrets import load_secret

        saved = load_secret(name)
        if saved is None:
            raise ConfigurationError(
                f"Unable to find block document named {name} for block type secret; save "
                f"one first with Secret(value=...).save({name!r})."
            )
        secret = cls(saved["value"])
        secret._block_document_name = name
        secret._block_document_id = uuid.UUID(saved["id"])
        return secret

    @classmethod
    def delete(cls, name: str) -> None:
        """Delete the secret saved as ``name``.

        Raises
        ------
        ValueError
            (:class:`~kernelflow.errors.ConfigurationError`) No secret has that name.
        """
        name = _check_name(name)
        from kernelflow.store.secrets import delete_secret

        if not delete_secret(name):
            raise ConfigurationError(
                f"Unable to find block document named {name} for block type secret."
            )

    async def asave(self, name: str | None = None, overwrite: bool = False) -> uuid.UUID:
        """:meth:`save`, to ``await`` (one small file write)."""
        return self.save(name, overwrite)

    @classmethod
    async def aload(cls, name: str, validate: bool = True) -> Secret:
        """:meth:`load`, to ``await`` (one small file read)."""
        return cls.load(name, validate)

    @classmethod
    async def adelete(cls, name: str) -> None:
        """:meth:`delete`, to ``await``."""
        cls.delete(name)


def _check_name(name: Any) -> str:
    if not isinstance(name, str):
        raise ConfigurationError(f"A secret's name is a str, not {type(name).__name__}.")
    if name.startswith(_SLUG):
        name = name[len(_SLUG) :]
    if not _NAME.fullmatch(name):
        raise ConfigurationError(
            f"Secret name {name!r} must only contain lowercase letters, numbers, and dashes "
            "(e.g. 'openai-key')."
        )
    return name
