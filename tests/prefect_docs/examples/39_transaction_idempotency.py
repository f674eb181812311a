"""An idempotent section: a keyed transaction runs once.

Page: docs/v3/advanced/transactions.mdx (PrefectHQ/prefect at
94a903879bc5aa97880a57be6afd5a4ecdc71783), "Idempotency".
Scenario: a ``log_prints`` flow opens ``transaction(key=...)``; if the
transaction is already committed it says so and returns, otherwise it
"downloads" data and writes it to data.txt. Run twice: the first run writes,
the second exits early.
Replaced: the download with a task returning a fixed string.
Re-written for this test from the page's description, not copied.
"""

from prefect import flow, task
from prefect.transactions import transaction

writes = []


@task
def download_data() -> str:
    return "some data"


@task
def write_data(data: str) -> None:
    writes.append(data)
    with open("data.txt", "w") as f:
        f.write(data)


@flow(log_prints=True)
def pipeline() -> None:
    with transaction(key="download-and-write-data") as txn:
        if txn.is_committed():
            print("Data file has already been written. Exiting early.")
            return
        write_data(download_data())


if __name__ == "__main__":
    pipeline()
    pipeline()
    print("writes:", writes)
    with open("data.txt") as f:
        print("data.txt:", f.read())
