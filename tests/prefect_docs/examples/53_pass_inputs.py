"""Flow inputs: defaults, type validation, ``validate_parameters=False``, pydantic models.

Page: docs/v3/how-to-guides/workflows/pass-inputs.mdx (PrefectHQ/prefect at
54979684bb0b9cc02d5c84913bf719929dd4ce9f).
Scenario: a flow greets a name (default "World"); passing an int for a str
fails validation; the same flow with ``validate_parameters=False`` accepts it;
a flow typed with a pydantic model coerces a dict with a numeric string and
refuses one with a wrong value.
Nothing replaced.
Re-written for this test from the page's description, not copied.
"""

from prefect import flow
from pydantic import BaseModel


@flow
def my_workflow(name: str = "World") -> str:
    return f"Hello, {name}!"


@flow(validate_parameters=False)
def lenient_workflow(name: str = "World") -> str:
    return f"Hello, {name}!"


class Model(BaseModel):
    a: int
    b: str


@flow
def flow_that_validates_parameters(model: Model) -> str:
    return f"{type(model).__name__}(a={model.a!r}, b={model.b!r})"


if __name__ == "__main__":
    print(my_workflow())
    print(my_workflow(name="Marvin"))
    try:
        my_workflow(name=1)
    except Exception as exc:
        print("name=1:", type(exc).__name__)
    print(lenient_workflow(name=1))
    print(flow_that_validates_parameters(model={"a": "7", "b": "fine"}))
    try:
        flow_that_validates_parameters(model={"a": "WRONG", "b": "fine"})
    except Exception as exc:
        print("a='WRONG':", type(exc).__name__)
