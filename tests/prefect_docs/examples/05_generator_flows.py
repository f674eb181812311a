"""Generator flows, and a generator returned by a flow.

Pages: docs/v3/how-to-guides/workflows/write-and-run.mdx (PrefectHQ/prefect at
cf898f1f4c7f91fee66fe4b14a937817434fe2bf), "Define a workflow"; and
docs/v3/concepts/flows.mdx (at 201c2ef8835a9c20e31fec21b30293ce892a7828),
"Supported function types".
Scenario: a flow that yields values is iterated by its caller; a flow that
*returns* a generator has it consumed into a list (the generator's last line
runs before the caller sees the result); a flow that *yields* a generator
hands it over unconsumed.
Nothing replaced.
Re-written for this test from the pages' descriptions, not copied.
"""

from prefect import flow


@flow
def countdown():
    yield from range(5, 0, -1)


def letters():
    yield from ["a", "b", "c"]
    print("letters consumed")


@flow
def returns_generator():
    return letters()


@flow
def yields_generator():
    yield letters()


if __name__ == "__main__":
    for value in countdown():
        print("countdown", value)
    result = returns_generator()
    print("returned:", type(result).__name__, result)
    inner = next(yields_generator())
    print("yielded:", type(inner).__name__)
    print("drained:", list(inner))
