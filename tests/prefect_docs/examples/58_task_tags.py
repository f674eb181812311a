"""Task tags (the keys of tag-based concurrency limits), from the decorator and ``tags``.

Page: docs/v3/how-to-guides/workflows/tag-based-concurrency-limits.mdx
(PrefectHQ/prefect at 1e9e53de44e7cc00a19ae1867ba58b53a3509c83).
Scenario: tasks tagged "database" (one also "analytics") run three queries in
a flow; no limit is set on the tags, so nothing waits. Each task prints the
tags its run got; under ``with tags("etl")`` the run gets that tag too.
Replaced: the database with a function that echoes the query.
Re-written for this test from the page's description, not copied.
"""

from prefect import flow, tags, task
from prefect.runtime import task_run


@task(tags=["database"])
def query_database(query: str) -> str:
    print(f"{query!r} ran with tags {sorted(task_run.tags)}")
    return f"Results for {query}"


@task(tags=["database", "analytics"])
def complex_query() -> str:
    print(f"complex_query ran with tags {sorted(task_run.tags)}")
    return "complex results"


@flow
def data_pipeline() -> None:
    query_database("SELECT * FROM users")
    query_database("SELECT * FROM orders")
    with tags("etl"):
        query_database("SELECT * FROM products")
    print(complex_query())


if __name__ == "__main__":
    data_pipeline()
