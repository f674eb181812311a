"""A transaction rolls back a task's side effect when a later task fails.

Page: docs/v3/advanced/transactions.mdx (PrefectHQ/prefect at
94a903879bc5aa97880a57be6afd5a4ecdc71783), "Write your first transaction" and
"Transaction lifecycle" (``on_commit``).
Scenario: inside ``with transaction()``, a task writes side-effect.txt and a
quality check needs at least two lines. With one line the check fails, the
writer's ``on_rollback`` hook deletes the file and the flow fails; with two
lines the transaction commits and the writer's ``on_commit`` hook runs.
Shortened: no 2 s sleep between the tasks.
Re-written for this test from the page's description, not copied.
"""

import os

from prefect import flow, task
from prefect.transactions import transaction


@task
def write_file(contents: str) -> None:
    with open("side-effect.txt", "w") as f:
        f.write(contents)


@write_file.on_rollback
def del_file(txn):
    print("rolling back: deleting side-effect.txt")
    os.unlink("side-effect.txt")


@write_file.on_commit
def confirmation(txn):
    print("committing a record now using the task's cache key!")


@task
def quality_test() -> None:
    with open("side-effect.txt") as f:
        data = f.readlines()
    if len(data) < 2:
        raise ValueError("Not enough data!")


@flow
def pipeline(contents: str) -> None:
    with transaction():
        write_file(contents)
        quality_test()


if __name__ == "__main__":
    state = pipeline(contents="hello world", return_state=True)
    print(state.name, "| file exists:", os.path.exists("side-effect.txt"))
    state = pipeline(contents="hello\nworld\n", return_state=True)
    print(state.name, "| file exists:", os.path.exists("side-effect.txt"))
