"""Values stored on a transaction, read back in a rollback hook.

Page: docs/v3/advanced/transactions.mdx (PrefectHQ/prefect at
94a903879bc5aa97880a57be6afd5a4ecdc71783), "Access data within transactions".
Scenario: the flow puts the file name on the transaction (``txn.set``); the
writer's rollback hook reads it back (``txn.get``) to delete the file when
the quality check fails; ``get_transaction()`` inside a task sees the value
too.
Shortened: no 2 s sleep.
Re-written for this test from the page's description, not copied.
"""

import os

from prefect import flow, task
from prefect.transactions import get_transaction, transaction


@task
def write_file(filename: str, contents: str) -> None:
    print("task sees filename:", get_transaction().get("filename"))
    with open(filename, "w") as f:
        f.write(contents)


@write_file.on_rollback
def del_file(txn):
    print("rollback removes", txn.get("filename"))
    os.unlink(txn.get("filename"))


@task
def quality_test(filename: str) -> None:
    with open(filename) as f:
        if len(f.readlines()) < 2:
            raise ValueError("Not enough data!")


@flow
def pipeline(filename: str, contents: str) -> None:
    with transaction() as txn:
        txn.set("filename", filename)
        write_file(filename, contents)
        quality_test(filename)


if __name__ == "__main__":
    state = pipeline(filename="side-effect.txt", contents="hello world", return_state=True)
    print(state.name, "| file exists:", os.path.exists("side-effect.txt"))
