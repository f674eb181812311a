"""Artifacts: a Markdown report, a link and a table, read back by key.

Page: docs/v3/how-to-guides/workflows/artifacts.mdx (PrefectHQ/prefect at
16fd0f73389de965418d975a7dd9e5db5e012ec0), "Create link artifacts", "Create
Markdown artifacts", "Create table artifacts" and "Fetching artifacts".
Scenario: a task creates a keyed Markdown sales report, another a keyed link
(twice, two versions), the flow a keyed table; the program then fetches the
report and the link by key and prints their type, description and data.
Replaced: the bucket URLs with example.com links (nothing is fetched).
Re-written for this test from the page's description, not copied.
"""

from prefect import flow, task
from prefect.artifacts import (
    Artifact,
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)


@task
def markdown_task() -> None:
    report = "# Sales Report\n\n| Region | Revenue |\n|:--|--:|\n| Europe | $250,000 |\n"
    create_markdown_artifact(
        key="gtm-report", markdown=report, description="Quarterly Sales Report"
    )


@task
def link_task(name: str) -> None:
    create_link_artifact(
        key="irregular-data",
        link=f"https://example.com/my-bucket/{name}.csv",
        description=f"## {name}",
    )


@flow
def my_flow() -> None:
    markdown_task()
    link_task("highly_variable_data")
    link_task("low_pred_data")
    create_table_artifact(
        key="personalized-reachout",
        table=[{"customer_id": "12345", "churn_probability": 0.85}],
        description="# Reach out to these customers today!",
    )


if __name__ == "__main__":
    my_flow()
    for key in ("gtm-report", "irregular-data"):
        artifact = Artifact.get(key)
        print(key, "|", artifact.type, "|", artifact.description, "|", artifact.data)
