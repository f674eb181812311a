"""``prefect_test_harness``: run a flow against a temporary backend.

Page: docs/v3/how-to-guides/workflows/test-workflows.mdx (PrefectHQ/prefect at
0e38662d6067afd9829796bb0ef12a5d803bd969), "Run flows against a temporary database".
Scenario: a test function enters ``prefect_test_harness()`` and asserts that a
flow returns 42; the program calls the test function as pytest would and
prints that it passed.
Nothing replaced (pytest itself is not needed to call a test function).
Re-written for this test from the page's description, not copied.
"""

from prefect import flow
from prefect.testing.utilities import prefect_test_harness


@flow
def my_favorite_flow() -> int:
    return 42


def test_my_favorite_flow():
    with prefect_test_harness():
        assert my_favorite_flow() == 42


if __name__ == "__main__":
    test_my_favorite_flow()
    print("test_my_favorite_flow passed")
