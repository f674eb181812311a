"""Hello world: one flow called several times, inside a ``tags`` context.

Page: docs/v3/examples/hello-world.mdx (PrefectHQ/prefect at
13afb00d8b30c7f50576361a445f13356fb34654).
Scenario: a ``log_prints`` flow greets a name (default "Marvin"); it is called
with the default, with an explicit name and once per crew member, all under
``with tags("test")``.
Added: the flow also prints its run's tags (``prefect.runtime``), so the
effect of ``tags`` shows in the output.
Re-written for this test from the page's description, not copied.
"""

from prefect import flow, tags
from prefect.runtime import flow_run


@flow(log_prints=True)
def hello(name: str = "Marvin") -> None:
    """Greet someone."""
    print(f"Hello, {name}!")
    print(f"run tags: {sorted(flow_run.tags)}")


if __name__ == "__main__":
    with tags("test"):
        hello()
        hello("Marvin")
        for member in ["Zaphod", "Trillian", "Ford"]:
            hello(member)
    hello("outside the tags block")
