"""``RunInput``: the input a paused flow run waits for (Prefect's ``prefect.input.run_input``).

A flow pauses with ``pause_flow_run(wait_for_input=...)`` and gets back what
the person who resumed it typed, validated by pydantic. ``wait_for_input``
may be

- a :class:`RunInput` subclass: the flow gets an instance of it;
- any other ``pydantic.BaseModel`` subclass: kernelflow derives a
  :class:`RunInput` from it (``<Model>RunInput``, an instance of the model too);
- any other type pydantic validates (``str``, ``int``, ``list[int]``,
  ``Literal["yes", "no"]``...): the input is one field named ``value``
  (resume with ``--input value=...``) and the flow gets that value itself.

Unlike Prefect, where the server checks only the JSON schema and a model's
own validators run after the flow resumed (raising ``ValidationError`` in the
flow), kernelflow validates the input with the model itself, in the paused
process, before resuming: input that does not fit is refused with
:class:`~kernelflow.errors.RunInputError` and the flow stays paused.

Example
-------
>>> from kernelflow.input import RunInput
>>> class Approval(RunInput):
...     approved: bool
...     comment: str = ""
>>> Approval(approved=True).approved
True
>>> Reviewed = Approval.with_initial_data(description="**Ship it?**", comment="LGTM")
>>> Reviewed(approved=True).comment, Reviewed._description
('LGTM', '**Ship it?**')
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import pydantic

__all__ = [
    "AutomaticRunInput",
    "RunInput",
    "describe_validation_error",
    "run_input_subclass_from_type",
]

R = TypeVar("R", bound="RunInput")


class RunInput(pydantic.BaseModel):
    """Base class of the input a paused flow run waits for.

    Subclass it with the fields to ask for; each field becomes one input of
    the notebook form and one ``--input NAME=VALUE`` of
    ``kernelflow flow-run resume``. Unknown fields are refused, as in Prefect.

    Example
    -------
    >>> class Shipping(RunInput):
    ...     address: str
    ...     express: bool = False
    >>> Shipping(address="1 Main St")
    Shipping(address='1 Main St', express=False)
    """

    model_config = pydantic.ConfigDict(extra="forbid")

    #: Markdown shown above the form (set with :meth:`with_initial_data`).
    _description: ClassVar[str | None] = None

    @classmethod
    def with_initial_data(cls: type[R], description: str | None = None, **kwargs: Any) -> type[R]:
        """A subclass whose fields default to ``kwargs``, with an optional description.

        Parameters
        ----------
        description
            Markdown shown above the form (and in the log of a script) when the
            flow pauses; the subclass keeps this class's description otherwise.
        **kwargs
            Field name -> default value. A field the class already declares
            keeps its annotation, title and help text; a new name becomes a
            field of the value's type.

        Returns
        -------
        type
            The subclass, to pass as ``wait_for_input``.
        """
        fields: dict[str, Any] = {}
        for name, value in kwargs.items():
            declared = cls.model_fields.get(name)
            if declared is None:
                fields[name] = (type(value), value)
            else:
                fields[name] = (
                    declared.annotation,
                    pydantic.Field(value, title=declared.title, description=declared.description),
                )
        model = pydantic.create_model(cls.__name__, __base__=cls, **fields)
        model.__qualname__ = cls.__qualname__
        if description is not None:
            model._description = description
        return model


class AutomaticRunInput(RunInput):
    """The input model made for a plain type: one field, ``value``.

    ``pause_flow_run(wait_for_input=int)`` waits for an
    ``AutomaticRunInput`` subclass whose ``value`` is an ``int`` and returns
    that ``value`` rather than the model.
    """


def run_input_subclass_from_type(wait_for_input: Any) -> type[RunInput]:
    """The :class:`RunInput` subclass that ``wait_for_input`` stands for.

    Parameters
    ----------
    wait_for_input
        A :class:`RunInput` subclass (returned as it is), another
        ``pydantic.BaseModel`` subclass (combined with :class:`RunInput`), or any
        type pydantic validates (wrapped in an :class:`AutomaticRunInput` with
        one field, ``value``).

    Returns
    -------
    type
        The model the input is validated with.
    """
    if isinstance(wait_for_input, type):
        if issubclass(wait_for_input, RunInput):
            return wait_for_input
        if issubclass(wait_for_input, pydantic.BaseModel):
            namespace = {"__module__": wait_for_input.__module__}
            return type(f"{wait_for_input.__name__}RunInput", (RunInput, wait_for_input), namespace)
    name = getattr(wait_for_input, "__name__", None) or getattr(wait_for_input, "_name", None)
    model = pydantic.create_model(
        f"{(name or 'value').lower()}AutomaticRunInput",
        __base__=AutomaticRunInput,
        value=(wait_for_input, ...),
    )
    return model


def describe_validation_error(error: pydantic.ValidationError) -> str:
    """A pydantic error on one line, each problem as ``field: message``.

    Parameters
    ----------
    error
        The error raised by ``model_validate``.

    Returns
    -------
    str
        E.g. ``name: Field required; age: Input should be a valid integer``.
    """
    parts = []
    for problem in error.errors(include_url=False):
        where = ".".join(str(part) for part in problem["loc"])
        message = " ".join(str(problem["msg"]).split())
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)
