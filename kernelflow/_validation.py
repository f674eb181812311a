"""Validating and coercing flow parameters with pydantic, as Prefect does.

A flow with ``validate_parameters=True`` (the default) checks each argument
it is called with against the parameter's annotation, in pydantic's lax mode:
``"3"`` becomes ``3`` for an ``int``, a dict becomes the pydantic model a
parameter is annotated with, and ``1`` for a ``str`` is refused with
:class:`~kernelflow.errors.ParameterTypeError`. As in Prefect, defaults are
not validated, unannotated parameters (and ``*args`` / ``**kwargs``) pass
unchanged, and arbitrary classes are checked with ``isinstance``.

pydantic is imported on a flow's first call, and only for flows with an
annotated parameter, so ``import kernelflow`` and decorating stay cheap. A value
whose type is exactly its plain annotation (``int``, ``float``, ``str``, ``bool``,
``bytes``) is what lax mode returns, so it needs no pydantic: ``run(n=1000)`` of a
``def run(n: int)`` does not pay pydantic's import (0.1-0.2 s) on its first call. The
model is built once per function, with internal field names aliased to the
parameter names, so any parameter name works (``_private``, ``model_x``,
``schema``). Values of the ``passthrough`` types (the flow gives futures and
states, which the engine resolves for a subflow) are left as they are; the
caller names them, so this foundation module knows nothing of the run model.
"""

from __future__ import annotations

import inspect
import logging
import typing
import warnings
from collections.abc import Callable
from typing import Any

from kernelflow.errors import ConfigurationError, ParameterTypeError

__all__ = ["ParameterValidator", "annotated_parameters"]

_log = logging.getLogger("kernelflow.flows")
_REGULAR = (
    inspect.Parameter.POSITIONAL_ONLY,
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    inspect.Parameter.KEYWORD_ONLY,
)


def annotated_parameters(signature: inspect.Signature) -> list[str]:
    """Names of the parameters with an annotation (the ones validation looks at)."""
    return [
        p.name
        for p in signature.parameters.values()
        if p.kind in _REGULAR and p.annotation is not inspect.Parameter.empty
    ]


class ParameterValidator:
    """Checks and coerces a flow's call arguments against its annotations.

    Parameters
    ----------
    fn:
        The flow's function.
    owner:
        How errors name the flow, e.g. ``"flow 'etl'"``.
    passthrough:
        Types whose values are passed on unvalidated.
    """

    def __init__(
        self, fn: Callable[..., Any], owner: str, passthrough: tuple[type, ...] = ()
    ) -> None:
        self.fn = fn
        self.owner = owner
        self.passthrough = passthrough
        self.signature = inspect.signature(fn)
        self.names = annotated_parameters(self.signature)
        self._model: Any = None
        self._fields: dict[str, str] = {}
        self._plain: dict[str, type] | None = None  # parameter -> its plain annotation

    def __getstate__(self) -> dict[str, Any]:
        # The model is a class made at run time: rebuilt where the flow is unpickled
        # (a process or Dask worker) rather than pickled with it.
        return {**self.__dict__, "_model": None, "_fields": {}, "_plain": None}

    def validate(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """``parameters`` with each given annotated value validated and coerced.

        A value that is its parameter's default is not validated (Prefect
        validates only what the caller passed), nor one of a ``passthrough`` type.

        Raises
        ------
        ParameterTypeError
            A value does not fit its annotation; the message names each one.
        ConfigurationError
            The annotations cannot be turned into a pydantic model.
        """
        given = {}
        for name in self.names:
            if name not in parameters:
                continue
            value = parameters[name]
            if value is self.signature.parameters[name].default:
                continue
            if isinstance(value, self.passthrough):
                continue
            given[name] = value
        if given:
            plain = self._plain_annotations()
            given = {k: v for k, v in given.items() if type(v) is not plain.get(k)}
        if not given:
            return parameters
        model = self._build()
        import pydantic

        try:
            validated = model.model_validate(given)
        except pydantic.ValidationError as exc:
            raise self._error(exc) from None
        out = dict(parameters)
        for name in given:
            out[name] = getattr(validated, self._fields[name])
        return out

    def _plain_annotations(self) -> dict[str, type]:
        """The parameters annotated with a plain type whose exact values lax mode keeps."""
        if self._plain is None:
            hints = self._hints()
            self._plain = {
                name: hints[name]
                for name in self.names
                # By identity: an annotation may be any object, with any ``==``.
                if any(hints.get(name) is plain for plain in (int, float, str, bool, bytes))
            }
        return self._plain

    def _error(self, exc: Any) -> ParameterTypeError:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error.get("loc", ()))
            problems.append(f"{where}: {error.get('msg', 'invalid')}")
        return ParameterTypeError(
            "Flow run received invalid parameters: "
            + "; ".join(problems)
            + f" (for {self.owner}); pass values of the annotated types, or use "
            "@flow(validate_parameters=False)."
        )

    def _build(self) -> Any:
        if self._model is not None:
            return self._model
        import pydantic

        hints = self._hints()
        fields: dict[str, Any] = {}
        aliases: dict[str, str] = {}
        for i, name in enumerate(self.names):
            annotation = hints.get(name, Any)
            field = f"p{i}"
            aliases[name] = field
            fields[field] = (annotation, pydantic.Field(default=None, alias=name))
        config = pydantic.ConfigDict(arbitrary_types_allowed=True, extra="ignore")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", pydantic.warnings.ArbitraryTypeWarning)
                model = pydantic.create_model(
                    f"{getattr(self.fn, '__name__', 'flow')}_parameters",
                    __config__=config,
                    **fields,
                )
            for warning in caught:
                # e.g. an annotation that is no type (``x: 42``): its values are not checked.
                _log.debug("Validating the parameters of %s: %s", self.owner, warning.message)
        except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise ConfigurationError(
                f"The parameter annotations of {self.owner} cannot be validated ({first}); "
                "use @flow(validate_parameters=False) or annotate with types pydantic accepts."
            ) from None
        if not model.__pydantic_complete__:  # e.g. list["Undefined"]: cannot validate
            raise ConfigurationError(
                f"The parameter annotations of {self.owner} name types that are not defined "
                "where the flow is; define them there, or use @flow(validate_parameters=False)."
            )
        self._fields = aliases
        self._model = model
        return model

    def _hints(self) -> dict[str, Any]:
        """The parameters' annotations, resolved; one that cannot be resolved is not validated."""
        try:
            return typing.get_type_hints(self.fn, include_extras=True)
        except (NameError, TypeError, AttributeError, SyntaxError):
            pass
        hints = {}
        namespace = getattr(self.fn, "__globals__", {})
        for name in self.names:
            annotation = self.signature.parameters[name].annotation
            # A string is evaluated as get_type_hints does; twice for a quoted
            # annotation under ``from __future__ import annotations``.
            for _ in range(2):
                if not isinstance(annotation, str):
                    break
                try:
                    annotation = eval(annotation, namespace)
                except Exception as exc:  # the annotation is any expression
                    _log.debug(
                        "Annotation %r of parameter %r of %s cannot be resolved (%s); "
                        "its values are not validated",
                        annotation,
                        name,
                        self.owner,
                        exc,
                    )
                    break
            if not isinstance(annotation, str):
                hints[name] = annotation
        return hints
