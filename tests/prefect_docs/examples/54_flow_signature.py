"""A flow keeps its function's signature; parameters are type-converted.

Page: docs/v3/concepts/flows.mdx (PrefectHQ/prefect at
201c2ef8835a9c20e31fec21b30293ce892a7828), "Specify flow parameters".
Scenario: ``inspect.signature`` of a flow shows the function's parameters;
called with strings for an int and a bool, the flow receives them converted.
Nothing replaced.
Re-written for this test from the page's description, not copied.
"""

import inspect

from prefect import flow


@flow
def schleeb(x: int, y: str, z: bool | None = None) -> None:
    print(f"x: {x!r}, y: {y!r}, z: {z!r}")


if __name__ == "__main__":
    print(inspect.signature(schleeb))
    schleeb(1, "one")
    schleeb("2", "two", "true")
