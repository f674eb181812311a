"""Variables: set, get, overwrite, unset.

Page: docs/v3/concepts/variables.mdx (PrefectHQ/prefect at
379d7a3838a56d251f1b54213d9a7431946dd080), "Through the Python SDK".
Scenario: a variable is set, read, overwritten with ``overwrite=True``, read
again (also from inside a flow), then unset; reading it afterwards gives the
default.
Nothing replaced.
Re-written for this test from the page's description, not copied.
"""

from prefect import flow
from prefect.variables import Variable


@flow
def reads_config() -> str:
    return Variable.get("my_variable", default="unset")


if __name__ == "__main__":
    Variable.set("my_variable", "my_value")
    print(Variable.get("my_variable"))
    Variable.set("my_variable", "my_new_value", overwrite=True)
    print(reads_config())
    Variable.unset("my_variable")
    print(Variable.get("my_variable", default="gone"))
